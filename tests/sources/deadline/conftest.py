"""A real slow HTTP server on 127.0.0.1 for the deadline tests (issue 16, item 3), standing
in for Prometheus's query API and for /metrics endpoints that answer slowly or hang, and
``within``: a call that must return in time (a test fails instead of hanging on an old
build)."""

from __future__ import annotations

import json
import math
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest

T = TypeVar("T")
HANG = math.inf


class SlowServer:
    """A real HTTP server on loopback, Prometheus's query API and /metrics endpoints.

    ``delays[name]`` is how long a query of metric ``name`` (the text before ``{``) or a
    GET of ``/name`` waits before answering (``HANG``: until the server closes);
    ``statuses[name]`` answers with that HTTP status instead of data. Range queries answer
    one series with a point per step; /metrics answers a gauge ``memory 1.5e8``. It counts
    the requests in flight at once (``max_inflight``)."""

    def __init__(self) -> None:
        self.delays: dict[str, float] = {}
        self.statuses: dict[str, int] = {}
        self.closing = threading.Event()
        self.lock = threading.Lock()
        self.inflight = self.max_inflight = self.requests = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def answer(self, name: str, form: dict[str, str]) -> tuple[int, str]:
        if name in self.statuses:
            return self.statuses[name], "unavailable"
        if "query" not in form:  # a /metrics endpoint
            return 200, "# TYPE memory gauge\nmemory 1.5e8\n"
        if "start" in form:
            start, end, step = (float(form[k]) for k in ("start", "end", "step"))
            count = round((end - start) / step) + 1
            values = [[start + i * step, "1"] for i in range(count)]
            result: dict[str, Any] = {"metric": {}, "values": values}
            data = {"resultType": "matrix", "result": [result]}
        else:
            data = {"resultType": "vector",
                    "result": [{"metric": {}, "value": [float(form["time"]), "1"]}]}
        return 200, json.dumps({"status": "success", "data": data})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                name = form["query"].split("{")[0] if "query" in form \
                    else self.path.strip("/").split("/")[0]
                with outer.lock:
                    outer.requests += 1
                    outer.inflight += 1
                    outer.max_inflight = max(outer.max_inflight, outer.inflight)
                try:
                    delay = outer.delays.get(name, 0.0)
                    if delay and outer.closing.wait(None if delay == HANG else delay):
                        return
                    status, body = outer.answer(name, form)
                    data = body.encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up
                    pass
                finally:
                    with outer.lock:
                        outer.inflight -= 1

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def server() -> Iterator[SlowServer]:
    slow = SlowServer()
    yield slow
    slow.close()



def _within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``'s result, failing the test if it has not returned after ``seconds``
    (the call is left running in a daemon thread: an old build may take minutes)."""
    out: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as err:  # handed to the test's thread
            failed.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting on the source after {seconds}s"
    if failed:
        raise failed[0]
    return out[0]



@pytest.fixture(name="within")
def within_fixture() -> Callable[[float, Callable[[], Any]], Any]:
    """``within(seconds, call)``: ``call()``'s result, or a failure after ``seconds``."""
    return _within
