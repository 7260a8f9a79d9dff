"""What a running ``rollout-watchdog run`` with a SQLite journal has imported.

The daemon's resident memory (bench/footprint.py, target under 80 MB) is mostly the
libraries it imports, so libraries it never uses stay out of its process: the PostgreSQL
driver (psycopg) and sqlite-utils (the journal speaks sqlite3 directly; the command-line
tools still use sqlite-utils), scipy, and what httpx and httpcore import only when they
are installed beside them and never use in a synchronous client: httpx's command-line
client (rich, pygments) and trio.

A real daemon process scrapes a real HTTP server on 127.0.0.1 (so httpx is imported and
a client is made) and ticks; on SIGTERM it writes its ``sys.modules`` at exit.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

EXPOSITION = b"# TYPE up_ratio gauge\nup_ratio 1\n"
NEVER = ("psycopg", "sqlite_utils", "scipy", "rich", "pygments", "trio")
# runs rollout-watchdog's console entry point and writes sys.modules at exit
DUMPER = """\
import atexit, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv[0] = "rollout-watchdog"
from rollout_watchdog.launcher import main
main()
"""


class Exposition(BaseHTTPRequestHandler):
    hits = 0

    def do_GET(self) -> None:  # the http.server API
        type(self).hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(EXPOSITION)))
        self.end_headers()
        self.wfile.write(EXPOSITION)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def metrics_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Exposition)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()


def test_sqlite_daemon_imports_no_unused_library(tmp_path: Path, metrics_url: str,
                                                  dkit: SimpleNamespace) -> None:
    installed = [name for name in NEVER if importlib.util.find_spec(name) is not None]
    assert "psycopg" in installed and "sqlite_utils" in installed  # product dependencies
    (tmp_path / "rules.yaml").write_text(
        "modules:\n"
        "  - name: shop\n"
        "    interval: 200ms\n"
        "    metrics:\n"
        "      up: {direction: lower_is_worse, scrape: {name: up_ratio, type: gauge}}\n"
        "    rules:\n"
        "      - {name: down, kind: absolute, metric: up, below: 0.5}\n"
        "    plan: {stages: [5, 100], hold: 1d}\n")
    (tmp_path / "watchdog.yaml").write_text(
        "db: journal.db\nrules: [rules.yaml]\n"
        "source: {plugin: scrape, options: {endpoints: "
        f'{{shop: {{v1: "{metrics_url}", v2: "{metrics_url}"}}}}}}}}\n'
        'actuators: [{plugin: file, options: {path: "{state_dir}/{module}.json"}}]\n'
        "notifiers: [{plugin: log}]\n"
        "modules: [{name: shop, auto_start: true}]\n")
    out = tmp_path / "modules.txt"
    Exposition.hits = 0
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", DUMPER, str(out), "run", "--config",
         str(tmp_path / "watchdog.yaml")],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        # both versions scraped on several ticks, and the rollout journaled
        dkit.until(lambda: Exposition.hits >= 6 or proc.poll() is not None, 60,
                   "the daemon's scrapes")
        flags = tmp_path / "journal.state" / "shop.json"
        dkit.until(lambda: flags.exists() or proc.poll() is not None, 60, "the first flags")
        assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / "daemon.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
    modules = set(out.read_text().split())
    assert "httpx" in modules and "watchdog.journal.store" in modules
    loaded = sorted(m for m in modules if m.split(".")[0] in installed)
    assert loaded == [], f"the SQLite daemon imported {loaded}"
