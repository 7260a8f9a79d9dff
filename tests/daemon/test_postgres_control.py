"""The control CLI and status on a PostgreSQL journal, beside a running daemon process:
a pause from the CLI is journaled there and holds the daemon's rollout; status shows
which instance guards the module (real PostgreSQL, real processes)."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return str(r.read().decode())


def post(port: int, path: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST",
                                     data=b'{"reason": "x"}',
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def cli(dkit: SimpleNamespace, s: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(dkit.EXE), *args, "--config", str(s.config)], cwd=s.root,
                          capture_output=True, text=True, timeout=60, check=False)


def test_pause_and_status_from_the_cli_on_postgresql(
        dkit: SimpleNamespace, spawn: Any, pg: Any, tmp_path: Path) -> None:
    s = dkit.make_setup(tmp_path / "s", pace="100ms",
                        extra="lease: {ttl: 1s}\napi: {enabled: true}\n")
    s.use_journal(pg.new_schema())
    port = free_port()
    daemon = spawn(s, env={"WATCHDOG_INSTANCE": "host-a", "WATCHDOG_API_PORT": str(port),
                           "WATCHDOG_API_TOKEN": "t0ken-for-the-test-only"})
    daemon.wait_for("module checkout: first tick under lease epoch 1")
    daemon.wait_for("HTTP API listening")
    health = json.loads(get(port, "/health"))
    assert health["lease"]["role"] == "leader" and health["lease"]["instance"] == "host-a"
    # refused control requests are audited in the PostgreSQL journal, aggregated
    for _ in range(2):
        assert post(port, "/api/modules/checkout/pause") == 401
    j = s.journal()
    try:
        rows = [r for r in j.api_audit() if r["outcome"] != "ok"]
    finally:
        j.close()
    assert len(rows) == 1 and rows[0]["count"] == 2, rows

    def decisions() -> list[str]:
        j = s.journal()
        try:
            return [jd.decision.action.value for jd in j.decisions()]
        finally:
            j.close()

    dkit.until(lambda: len(decisions()) >= 2, what="the rollout going")
    done = cli(dkit, s, "pause", "checkout", "--reason", "looking at it")
    assert done.returncode == 0, done.stderr
    assert "pause" in decisions()
    n = len(decisions())
    status = cli(dkit, s, "status", "--json")
    assert status.returncode in (0, 3), status.stderr  # 3: a module paused
    row = json.loads(status.stdout)["modules"][0]
    assert row["phase"] == "paused"
    assert row["guard"]["instance"] == "host-a" and row["guard"]["epoch"] == 1
    text = cli(dkit, s, "status")
    assert "guarded by host-a (lease epoch 1)" in text.stdout, text.stdout
    daemon.wait_for("paused", timeout=10)
    import time

    time.sleep(1.0)  # ten ticks: a paused rollout does not move
    assert len(decisions()) == n
    assert not list(s.root.glob("postgresql*"))  # no file named after the URL
