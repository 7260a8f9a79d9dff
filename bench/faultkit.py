"""Faults for bench/rollback_under_faults.py: real servers on 127.0.0.1 and a real process.

* :class:`StandInPrometheus`: enough of Prometheus's HTTP API (``/api/v1/query_range`` and
  ``/api/v1/query``, GET or POST, the JSON shapes watchdog/sources/prometheus.py decodes)
  serving synthetic V1/V2 series of the five standard metrics, recognised by the metric
  names in the queries of watchdog/defaults/default.yaml. V2's p95 latency is x3 at every
  point at or after ``onset``. Faults, switchable while it runs: ``delay`` (each answer
  after that many seconds), ``hang`` (queries of these metrics never answer), ``down``
  (the listening socket is closed: connections are refused).
* :class:`FlagServer`: the receiving end of the ``webhook`` actuator; records every state
  POSTed (with its arrival time) and can hang (never answer) on chosen states.
* :func:`start_locker`: another process holding ``BEGIN IMMEDIATE`` on a SQLite file.

Every hanging handler waits on an event with a time limit, so :meth:`stop` ends them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from watchdog.demo.processes import Child, Children

# metric -> (substring of its PromQL in default.yaml, V1 level, relative noise); first match wins
METRICS: tuple[tuple[str, str, float, float], ...] = (
    ("error_rate", "http_requests_failed_total", 0.005, 0.10),
    ("parse_rate", "messages_parsed_total", 0.98, 0.002),
    ("memory_rss_bytes", "process_resident_memory_bytes", 420e6, 0.005),
    ("latency_p95_ms", "http_request_duration_seconds_bucket", 180.0, 0.03),
    ("throughput_rps", "http_requests_total", 50.0, 0.03),
)
VERSION = re.compile(r'version="(v[12])"')
LATENCY_FACTOR = 3.0


def _noise(*key: object) -> float:
    """A deterministic value in [-1, 1): the same point always has the same value."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2 ** 63 - 1.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up
            super().handle_error(request, client_address)


class _Base:
    """A threaded HTTP server on 127.0.0.1 at a free port, stopped by :meth:`stop`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], hang_limit: float) -> None:
        self.hang_limit = hang_limit
        self.release = threading.Event()  # set: every hanging handler returns
        self._closed = False
        self._lock = threading.Lock()
        self._http = _Server(("127.0.0.1", 0), handler)
        self._http.owner = self  # type: ignore[attr-defined]
        self.port: int = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def hang(self) -> None:
        """Never answer (until stopped or ``hang_limit``): the client times out."""
        self.release.wait(self.hang_limit)

    def close_listener(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._http.shutdown()
        self._http.server_close()

    def stop(self) -> None:
        self.release.set()
        self.close_listener()
        self._thread.join(5)


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def owner(self) -> Any:
        return self.server.owner  # type: ignore[attr-defined]

    def answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def form(self) -> dict[str, str]:
        parts = urlsplit(self.path)
        text = parts.query
        if self.command == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            text = self.rfile.read(length).decode("utf-8", "replace")
        return {k: v[-1] for k, v in parse_qs(text).items()}


class _PromHandler(_Quiet):
    def do_GET(self) -> None:
        self.owner().handle(self)

    do_POST = do_GET


@dataclass
class PromFaults:
    delay: float = 0.0
    hang: frozenset[str] = frozenset()
    down: bool = False


class StandInPrometheus(_Base):
    def __init__(self, hang_limit: float) -> None:
        self.onset = math.inf
        self.faults = PromFaults()
        super().__init__(_PromHandler, hang_limit)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def go_down(self) -> None:
        """Refuse connections from now on (in-flight requests get no answer)."""
        self.faults.down = True
        threading.Thread(target=self.close_listener, daemon=True).start()

    def value(self, metric: str, version: str, t: float) -> float:
        level, noise = next((lv, nz) for m, _, lv, nz in METRICS if m == metric)
        v = level * (1.0 + noise * _noise(metric, version, round(t, 3)))
        if metric == "latency_p95_ms" and version == "v2" and t >= self.onset:
            v *= LATENCY_FACTOR
        return v

    def handle(self, h: _PromHandler) -> None:
        path = urlsplit(h.path).path
        form = h.form()
        query = form.get("query", "")
        metric = next((m for m, needle, _, _ in METRICS if needle in query), None)
        found = VERSION.search(query)
        faults = self.faults
        if faults.down:
            return  # the connection closes unanswered
        if metric in faults.hang:
            self.hang()
            return
        if faults.delay > 0 and self.release.wait(faults.delay):
            return
        if metric is None or found is None:
            h.answer(400, {"status": "error", "errorType": "bad_data",
                           "error": f"stand-in knows no metric in {query!r}"})
            return
        labels = {"module": "checkout", "version": found.group(1)}
        try:
            if path == "/api/v1/query_range":
                start, end, step = (float(form[k]) for k in ("start", "end", "step"))
                n = math.floor((end - start) / step + 1e-9) + 1
                points = [start + i * step for i in range(max(n, 0))]
                values = [[t, repr(self.value(metric, found.group(1), t))] for t in points]
                data: dict[str, Any] = {"resultType": "matrix",
                                        "result": [{"metric": labels, "values": values}]}
            elif path == "/api/v1/query":
                t = float(form.get("time", time.time()))
                data = {"resultType": "vector", "result": [
                    {"metric": labels, "value": [t, repr(self.value(metric, labels["version"],
                                                                    t))]}]}
            else:
                h.answer(404, {"status": "error", "errorType": "not_found", "error": path})
                return
        except (KeyError, ValueError) as err:
            h.answer(400, {"status": "error", "errorType": "bad_data", "error": str(err)})
            return
        h.answer(200, {"status": "success", "data": data})


@dataclass(frozen=True)
class Received:
    at: float
    state: dict[str, Any]


class _FlagHandler(_Quiet):
    def do_POST(self) -> None:
        self.owner().handle(self)


class FlagServer(_Base):
    """Where the ``webhook`` actuator POSTs; ``hang_on(state)`` true: that call hangs."""

    def __init__(self, hang_limit: float,
                 hang_on: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.hang_on = hang_on or (lambda state: False)
        self.received: list[Received] = []
        self.hung: list[Received] = []
        super().__init__(_FlagHandler, hang_limit)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/flags/{{module}}"

    def handle(self, h: _FlagHandler) -> None:
        at = time.time()
        length = int(h.headers.get("Content-Length") or 0)
        try:
            state = json.loads(h.rfile.read(length))
        except ValueError:
            h.answer(400, {"error": "not JSON"})
            return
        if self.hang_on(state):
            self.hung.append(Received(at, state))
            self.hang()
            return
        self.received.append(Received(at, state))
        h.answer(200, {"ok": True})

    def first(self, wanted: Callable[[dict[str, Any]], bool]) -> Received | None:
        return next((r for r in list(self.received) if wanted(r.state)), None)


LOCKER = """\
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", time.time(), flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
print("released", time.time(), flush=True)
"""


def start_locker(children: Children, db: Path, hold: float, log: Path,
                 timeout: float = 15.0) -> tuple[Child, float]:
    """A process holding ``BEGIN IMMEDIATE`` on ``db`` for ``hold`` seconds; returns it and
    the time it got the lock."""
    child = children.start("locker", [sys.executable, "-c", LOCKER, str(db), repr(hold)], log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text("utf-8", "replace").splitlines():
            if line.startswith("locked "):
                return child, float(line.split()[1])
        if not child.alive():
            break
        time.sleep(0.01)
    raise RuntimeError(f"the journal locker did not get the lock: {child.tail()}")
