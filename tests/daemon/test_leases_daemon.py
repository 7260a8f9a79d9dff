"""Several daemon processes on one journal (watchdog.daemon.leases): one guards each
module, the others stand by and say so; a SIGKILLed guard is replaced within about two
lease times, a SIGSTOPped one finds its lease gone when it wakes and writes nothing.

Real parts: the daemons are processes, the journal a real PostgreSQL (tests/journal's
server) or a real SQLite file, the flags flipped by the command actuator of conftest.
Bounds are generous (a loaded 2-core machine); the timing figures are bench/failover.py's.
"""

from __future__ import annotations

import json
import signal
import socket
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

LEASE = "lease: {ttl: 1s}\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup(dkit: SimpleNamespace, tmp_path: Path, url: str | None) -> Any:
    s = dkit.make_setup(tmp_path / "s", pace="100ms", extra=LEASE)
    if url is not None:
        s.use_journal(url)
    return s


def holder(s: Any, module: str = "checkout") -> tuple[str, int] | None:
    j = s.journal()
    try:
        found = [(lease.holder, lease.epoch) for lease in j.leases() if lease.module == module]
    finally:
        j.close()
    return found[0] if found else None


def actions(s: Any) -> list[tuple[int, str, int | None]]:
    j = s.journal()
    try:
        return [(jd.id, jd.decision.action.value, jd.decision.to_stage) for jd in j.decisions()]
    finally:
        j.close()


def test_postgresql_standby_takes_over_a_sigkilled_guard(
        dkit: SimpleNamespace, spawn: Any, pg: Any, tmp_path: Path) -> None:
    s = setup(dkit, tmp_path, pg.new_schema())
    a = spawn(s, env={"WATCHDOG_INSTANCE": "a"})
    a.wait_for("module checkout: guarded by this instance (a), lease epoch 1")
    b = spawn(s, env={"WATCHDOG_INSTANCE": "b"})
    b.wait_for("standby for module checkout: guarded by instance a (lease epoch 1)")
    dkit.until(lambda: len(actions(s)) >= 3, what="a few decisions by a")
    a.signal(signal.SIGKILL)
    a.wait()
    before = actions(s)
    b.wait_for("module checkout: guarded by this instance (b), lease epoch 2; taken over "
               "from instance a (epoch 1)", timeout=20)
    assert holder(s) == ("b", 2)
    dkit.until(lambda: len(actions(s)) > len(before) + 2, timeout=20,
               what="decisions by the new guard")
    after = actions(s)
    assert after[:len(before)] == before  # nothing of a's history rewritten
    advances = [stage for _, action, stage in after if action == "advance"]
    assert advances == sorted(set(advances)), after  # no stage decided twice
    # the flags follow the journal's last decision (the outbox of b applies it)
    last = after[-1]
    dkit.until(lambda: (s.flags() or {}).get("decision_id") == str(last[0])
               or len(actions(s)) > len(after), timeout=20, what="flags of the last decision")
    assert "took the lease over" in b.log() or "guard_moved" in b.log()


def test_postgresql_a_paused_guard_loses_its_lease_and_writes_nothing(
        dkit: SimpleNamespace, spawn: Any, pg: Any, tmp_path: Path) -> None:
    s = setup(dkit, tmp_path, pg.new_schema())
    a = spawn(s, env={"WATCHDOG_INSTANCE": "a"})
    a.wait_for("module checkout: guarded by this instance (a), lease epoch 1")
    b = spawn(s, env={"WATCHDOG_INSTANCE": "b"})
    b.wait_for("standby for module checkout")
    dkit.until(lambda: len(actions(s)) >= 3, what="a few decisions by a")
    a.signal(signal.SIGSTOP)
    try:
        b.wait_for("module checkout: guarded by this instance (b), lease epoch 2", timeout=20)
    finally:
        a.signal(signal.SIGCONT)
    a.wait_for("module checkout: lost its lease (epoch 1) to instance b", timeout=20)
    dkit.until(lambda: len(actions(s)) >= 8, timeout=30, what="the rollout going on")
    assert holder(s) == ("b", 2)
    advances = [stage for _, action, stage in actions(s) if action == "advance"]
    assert advances == sorted(set(advances))  # no stage decided twice
    assert "Traceback" not in a.log() + b.log()


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return str(r.read().decode())


def test_sqlite_second_daemon_is_a_standby_and_says_so(
        dkit: SimpleNamespace, spawn: Any, tmp_path: Path) -> None:
    s = dkit.make_setup(tmp_path / "s", pace="100ms", extra=LEASE + "api: {enabled: true}\n")
    ports = [free_port(), free_port()]
    a = spawn(s, env={"WATCHDOG_INSTANCE": "a", "WATCHDOG_API_PORT": str(ports[0])})
    a.wait_for("module checkout: guarded by this instance (a)")
    b = spawn(s, env={"WATCHDOG_INSTANCE": "b", "WATCHDOG_API_PORT": str(ports[1])})
    b.wait_for("instance b: standby: every module is guarded by another instance")
    b.wait_for("standby for module checkout: guarded by instance a")
    b.wait_for("HTTP API listening")
    health = [json.loads(get(p, "/health"))["lease"] for p in ports]
    assert health[0]["role"] == "leader" and health[0]["instance"] == "a"
    assert health[0]["modules"]["checkout"]["epoch"] == 1
    assert health[1]["role"] == "standby"
    assert health[1]["standby_for"] == {"checkout": {"instance": "a", "epoch": 1}}
    metrics = [get(p, "/metrics") for p in ports]
    assert 'watchdog_lease_held{module="checkout"} 1.0' in metrics[0]
    assert 'watchdog_lease_held{module="checkout"} 0.0' in metrics[1]
    assert "watchdog_instance_modules 1.0" in metrics[0]
    assert "watchdog_instance_modules 0.0" in metrics[1]
    status = json.loads(get(ports[1], "/status"))["modules"][0]
    assert status["guard"]["instance"] == "a" and status["guard"]["live"] is True
    dkit.until(lambda: len(actions(s)) >= 2, what="decisions by a")
    a.signal(signal.SIGKILL)
    a.wait()
    b.wait_for("module checkout: guarded by this instance (b)", timeout=20)
    n = len(actions(s))
    dkit.until(lambda: len(actions(s)) > n, timeout=20, what="b ticking")
