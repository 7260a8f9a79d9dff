"""Shared fixtures for the source tests: real processes on loopback, always stopped.

- ``start_app(module, version)``: the test app (testapp.py) in its own process;
- ``stub``: a tiny HTTP server answering with canned statuses, bodies and delays;
- ``prometheus_bin``: Debian's ``prometheus`` binary, or a skip (a failure when
  WATCHDOG_REQUIRE_REAL_SERVICES=1, as in CI);
- ``start_prometheus(targets)``: a real Prometheus scraping the given apps every second.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

TESTAPP = Path(__file__).with_name("testapp.py")
REQUIRE_ENV = "WATCHDOG_REQUIRE_REAL_SERVICES"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing(reason: str) -> None:
    """Skip, or fail when the environment requires the real services."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1; run scripts/ensure-prometheus.sh as root)")
    pytest.skip(f"{reason} (run scripts/ensure-prometheus.sh as root to install it)")


# -- the test app ------------------------------------------------------------------------

class AppProcess:
    """One testapp.py process; ``stop`` takes its endpoint down, ``restart`` brings it back
    on the same port with fresh counters."""

    def __init__(self, module: str, version: str, port: int = 0, wait: bool = True) -> None:
        self.module, self.version, self.port = module, version, port
        self.proc: subprocess.Popen[str] | None = None
        self.start(wait)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTAPP), "--module", self.module, "--version", self.version,
             "--port", str(self.port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        if wait:
            self.wait()

    def wait(self) -> None:
        """Until the app serves (it prints its port)."""
        line = self._line(10.0)
        if not line.startswith("ready "):
            self.stop()
            raise RuntimeError(f"testapp did not start: {line!r}")
        self.port = int(line.split()[1])

    def _line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"testapp {self.version} did not answer within {timeout}s")
        return self.proc.stdout.readline().strip()

    def send(self, cmd: str, **fields: Any) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.proc.stdin.flush()
        answer = self._line(10.0)
        assert answer == "ok", answer

    def traffic(self, requests: int, failed: int = 0, latency: float = 0.03) -> None:
        self.send("traffic", requests=requests, failed=failed, latency=latency)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class Apps:
    """Starts test apps (``apps("checkout", "v1")``, or a v1/v2 pair started side by side
    with ``apps.pair("checkout")``) and stops them all at the end."""

    def __init__(self) -> None:
        self.started: list[AppProcess] = []

    def __call__(self, module: str = "checkout", version: str = "v1") -> AppProcess:
        app = AppProcess(module, version)
        self.started.append(app)
        return app

    def pair(self, module: str = "checkout") -> tuple[AppProcess, AppProcess]:
        v1, v2 = AppProcess(module, "v1", wait=False), AppProcess(module, "v2", wait=False)
        self.started += [v1, v2]
        v1.wait()
        v2.wait()
        return v1, v2

    def stop(self) -> None:
        for app in self.started:
            app.stop()


def _app_factory() -> Iterator[Apps]:
    apps = Apps()
    yield apps
    apps.stop()


start_app = pytest.fixture(_app_factory, name="start_app")
start_module_app = pytest.fixture(_app_factory, name="start_module_app", scope="module")


# -- a stub HTTP server ------------------------------------------------------------------

@dataclass
class Reply:
    status: int = 200
    body: str = ""
    delay: float = 0.0
    content_type: str = "text/plain; version=0.0.4"


@dataclass
class Stub:
    """Answers every request with the next of ``replies`` (the last one repeats) and keeps
    what it was sent in ``requests``."""

    server: ThreadingHTTPServer
    replies: list[Reply] = field(default_factory=lambda: [Reply()])
    requests: list[dict[str, Any]] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, *replies: dict[str, Any]) -> None:
        """Answer the next requests with these (``Reply`` fields); the last repeats."""
        self.replies = [Reply(**r) for r in replies]

    def next_reply(self) -> Reply:
        return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


def _handler(stub_of: Callable[[], Stub]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            stub = stub_of()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            stub.requests.append({"method": self.command, "path": self.path,
                                  "headers": dict(self.headers), "body": body})
            reply = stub.next_reply()
            if reply.delay and stub.closing.wait(reply.delay):
                return
            data = reply.body.encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (timeout): nothing to do
                pass

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def stub() -> Iterator[Stub]:
    holder: list[Stub] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(lambda: holder[0]))
    server.daemon_threads = True
    holder.append(Stub(server))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield holder[0]
    holder[0].closing.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


# -- Prometheus --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    found = shutil.which("prometheus")
    if found is None:
        missing("the prometheus binary is not on PATH")
    assert found is not None
    return found


class PrometheusProcess:
    """A real Prometheus on a free loopback port, storage in ``folder``, scraping
    ``targets`` (app processes) every second with their module/version as target labels."""

    def __init__(self, binary: str, folder: Path, targets: list[AppProcess]) -> None:
        self.binary, self.folder, self.targets = binary, folder, targets
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = folder / "prometheus.log"
        configs = [{"targets": [t.address], "labels": {"module": t.module,
                                                        "version": t.version}}
                   for t in targets]
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "scrape_configs": [{"job_name": "testapp", "honor_labels": True,
                                      "scrape_interval": "1s", "scrape_timeout": "1s",
                                      "static_configs": configs}]}
        self.config = folder / "prometheus.yml"
        self.config.write_text(json.dumps(config))  # JSON is YAML
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, f"--config.file={self.config}",
                 f"--storage.tsdb.path={self.folder / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus not ready in 20s: {self.log.read_text()[-2000:]}")

    def instant(self, query: str) -> list[Any]:
        """A direct API call (not through the code under test), for waiting on data."""
        data = urllib.parse.urlencode({"query": query}).encode()
        with urllib.request.urlopen(self.url + "/api/v1/query", data=data, timeout=5) as r:
            return list(json.load(r)["data"]["result"])

    def wait_for(self, query: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.instant(query):
                return
            time.sleep(0.2)
        raise RuntimeError(f"prometheus has no result for {query!r} after {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@pytest.fixture(scope="module")
def start_prometheus(prometheus_bin: str, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[Callable[[list[AppProcess]], PrometheusProcess]]:
    started: list[PrometheusProcess] = []

    def start(targets: list[AppProcess]) -> PrometheusProcess:
        server = PrometheusProcess(prometheus_bin, tmp_path_factory.mktemp("prometheus"),
                                   targets)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass
class PrometheusSetup:
    prometheus: PrometheusProcess
    v1: AppProcess
    v2: AppProcess
    started: float


@pytest.fixture(scope="module")
def prometheus_setup(start_prometheus: Callable[[list[AppProcess]], PrometheusProcess],
                     start_module_app: Apps) -> PrometheusSetup:
    """Prometheus scraping checkout v1 and v2 under steady traffic, with a few seconds of
    data. v1: 20 requests per 50 ms, 1 failed (5 %), all at 30 ms; 100 MB resident.
    v2: 20 per 50 ms, 2 failed (10 %), all at 70 ms; 150 MB resident."""
    v1, v2 = start_module_app.pair("checkout")
    v1.send("steady", requests=20, failed=1, latency=0.03, every=0.05)
    v2.send("steady", requests=20, failed=2, latency=0.07, every=0.05)
    v2.send("memory", value=150e6)
    started = time.time()
    prometheus = start_prometheus([v1, v2])
    # three scrapes of each version: enough for rate() and histogram_quantile()
    prometheus.wait_for("count(count_over_time(http_requests_total[1m]) >= 3) == 2")
    return PrometheusSetup(prometheus, v1, v2, started)
