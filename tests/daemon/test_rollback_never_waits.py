"""A rollback never waits: not on a locked journal, not on a hanging actuator; and a
rollback the actuators cannot apply is announced (issue 16, items 1, 2 and 11).

Real processes on loopback: the demo's simulated V1 and V2 services (500 requests/s each,
``POST /regress`` triples V2's latency), a real ``rollout-watchdog run`` daemon (system
clock, 1 s interval, scrape source, the ``webhook`` actuator, the ``log`` notifier), and
the webhook's endpoint: a real HTTP server in this process that records every POST and can
hang (never answer) or answer 503. The plan is 5 % (3 s hold), then 50 % (held an hour);
once the rule has been healthy for 2 s at 50 %, V2 regresses: onset-to-flag is from that
switch to the webhook's POST of V1 / 0 %. Each fault run is compared with a run without
the fault; the bound (one interval plus a generous margin for a loaded 2-core machine) is
far below what each fault cost before the fix (30 s for the lock, ~24 s per tick for the
hanging actuator).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from watchdog.actuators.file import FileActuator
from watchdog.actuators.webhook import WebhookActuator
from watchdog.daemon.outbox import Outbox
from watchdog.demo.processes import Children, http_json, service_argv, wait_for_port
from watchdog.journal.store import Journal
from watchdog.model import Action, Decision

INTERVAL = 1.0
MARGIN = 6.0  # seconds on top of one interval: a loaded machine, not the design
SECRET = "hook-secret-never-shown-4711"

RULES = """\
modules:
  - name: checkout
    interval: 1s
    metrics:
      latency_p95_ms:
        direction: higher_is_worse
        unit: ms
        scrape:
          {name: http_request_duration_seconds, type: histogram, quantile: 0.95, scale: 1000}
    rules:
      - {name: latency_p95_regression, kind: relative, metric: latency_p95_ms,
         against: live, max_increase: 20%, window: 3s, min_samples: 2, for: 2s,
         severity: critical, action: rollback}
    plan:
      stages: [5, {traffic: 50, hold: 1h}, 100]
      hold: 3s
"""

CONFIG = """\
db: journal.db
rules: [rules.yaml]
source:
  plugin: scrape
  options: {{timeout: 1.0, endpoints: {{checkout: {{v1: "{v1}", v2: "{v2}"}}}}}}
actuators:
  - plugin: webhook
    options: {{url: "{hook}/flags/{{module}}", secret: {{from_env: HOOK_SECRET}},
               timeout: 5, max_attempts: {attempts}, backoff_initial: 0.2}}
notifiers: [{{plugin: log}}]
modules: [{{name: checkout, auto_start: true}}]
outbox: {{poll_interval: 100ms, backoff: 200ms, max_backoff: 1s, deadline: 10s,
          stuck_after: 2s}}
"""

LOCKER = """\
import select, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
select.select([sys.stdin], [], [], 30.0)  # held 30 s, or until the test says
conn.execute("COMMIT")
print("released", flush=True)
"""


class FlagServer:
    """The webhook's endpoint: records each POST (arrival time, body); never answers a
    POST of the traffic share ``hang_at`` (until closed); answers 503 while ``down``."""

    def __init__(self) -> None:
        self.posts: list[tuple[float, dict[str, Any]]] = []
        self.hang_at: float | None = None
        self.down = False
        self.hung = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                at = time.time()
                if server.hang_at is not None and body["traffic_percent"] == server.hang_at:
                    server.hung.set()
                    server.release.wait(120)
                    return
                status = 503 if server.down else 200
                if not server.down:
                    server.posts.append((at, body))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}"

    def flipped_at(self) -> float | None:
        return next((at for at, b in self.posts
                     if b["traffic_percent"] == 0 and b["version"] == "v1"), None)

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("services")
    with Children() as children:
        procs = {v: children.start(v, service_argv(v, 0, base / f"{v}.port",
                                                   regression="latency" if v == "v2"
                                                   else "none", factor=3.0 if v == "v2"
                                                   else None), base / f"{v}.log")
                 for v in ("v1", "v2")}
        ports = {v: wait_for_port(c, base / f"{v}.port") for v, c in procs.items()}
        yield {"urls": {v: f"http://127.0.0.1:{p}/metrics" for v, p in ports.items()},
               "regress": f"http://127.0.0.1:{ports['v2']}/regress"}


@pytest.fixture
def hook() -> Iterator[FlagServer]:
    server = FlagServer()
    yield server
    server.close()


def start(spawn: Any, root: Path, services: dict[str, Any], hook: FlagServer,
          attempts: int = 4) -> Any:
    root.mkdir(parents=True, exist_ok=True)
    (root / "rules.yaml").write_text(RULES)
    (root / "watchdog.yaml").write_text(CONFIG.format(
        v1=services["urls"]["v1"], v2=services["urls"]["v2"], hook=hook.url,
        attempts=attempts))
    setup = SimpleNamespace(root=root, config=root / "watchdog.yaml", db=root / "journal.db")
    proc = spawn(setup, env={"HOOK_SECRET": SECRET})
    proc.db = setup.db
    return proc


def view(db: Path) -> tuple[Any, dict[str, Any], list[Any]]:
    journal = Journal(db)
    try:
        return (journal.checkpoint("checkout"), journal.setting("verdict:checkout") or {},
                journal.decisions(module="checkout"))
    finally:
        journal.close()


def healthy_at_50(proc: Any, dkit: Any) -> None:
    def ready() -> bool:
        if proc.popen.poll() is not None:
            raise AssertionError(proc.log()[-3000:])
        cp, verdict, _ = view(proc.db)
        return cp is not None and cp.traffic_percent == 50 and \
            verdict.get("kind") == "healthy" and time.time() - verdict["since"] >= 2.0
    dkit.until(ready, 60, "healthy at 50 %")


def regress(proc: Any, services: dict[str, Any], hook: FlagServer, dkit: Any,
            meanwhile: Callable[[], None] | None = None) -> float:
    """Switch V2's regression on; seconds until the webhook got V1 / 0 %."""
    time.sleep(0.3)  # somewhere between two evaluations
    t0 = float(http_json(services["regress"] + "?on=1", method="POST")["switched_at"])
    try:
        if meanwhile is not None:
            meanwhile()
        dkit.until(lambda: hook.flipped_at() is not None, 60, "the rollback's POST")
        flipped = hook.flipped_at()
        assert flipped is not None
        return flipped - t0
    finally:
        http_json(services["regress"] + "?on=0", method="POST")


def baseline(spawn: Any, tmp_path: Path, services: dict[str, Any], dkit: Any) -> float:
    """Onset to flag without any fault, on a fresh daemon and journal."""
    server = FlagServer()
    try:
        proc = start(spawn, tmp_path / "baseline", services, server)
        healthy_at_50(proc, dkit)
        took = regress(proc, services, server, dkit)
        proc.kill()
        return took
    finally:
        server.close()


def test_a_locked_journal_does_not_delay_the_rollback(
        dkit: Any, spawn: Any, tmp_path: Path, services: dict[str, Any],
        hook: FlagServer) -> None:
    without = baseline(spawn, tmp_path, services, dkit)
    proc = start(spawn, tmp_path / "locked", services, hook)
    healthy_at_50(proc, dkit)
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, str(proc.db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout is not None and locker.stdin is not None
        assert locker.stdout.readline().strip() == "locked"
        took = regress(proc, services, hook, dkit)
        print(f"onset to flag: {without:.2f}s without a fault, {took:.2f}s with the journal "
              f"locked by another process")
        assert locker.poll() is None, "the lock was released before the rollback"
        assert took < without + INTERVAL + MARGIN, (took, without)
        log = proc.log()
        assert "journal write failed; rolled back anyway" in log
        assert "ALERT applying an unjournaled rollback of checkout" in log
        _, _, decisions = view(proc.db)
        assert not any(jd.decision.action is Action.ROLLBACK for jd in decisions)
        locker.stdin.write("release\n")
        locker.stdin.flush()
        assert locker.stdout.readline().strip() == "released"
    finally:
        locker.kill()
        locker.wait(10)

    def journaled() -> bool:
        return any(jd.decision.action is Action.ROLLBACK and jd.applied_at is not None
                   for jd in view(proc.db)[2])

    dkit.until(journaled, 30, "the rollback's record, applied")
    time.sleep(3 * INTERVAL)  # a few more ticks: the record is not written again
    cp, _, decisions = view(proc.db)
    assert [jd.decision.action for jd in decisions].count(Action.ROLLBACK) == 1
    assert cp is not None and cp.phase.value == "rolled_back"


def test_a_hanging_actuator_does_not_blind_the_judge_or_delay_the_rollback(
        dkit: Any, spawn: Any, tmp_path: Path, services: dict[str, Any],
        hook: FlagServer) -> None:
    without = baseline(spawn, tmp_path, services, dkit)
    hook.hang_at = 50.0  # the advance to 50 % never gets an answer
    proc = start(spawn, tmp_path / "hanging", services, hook)
    dkit.until(hook.hung.is_set, 60, "the advance to 50 % hanging")
    healthy_at_50(proc, dkit)
    ticks = set()  # the judge is evaluated every interval while the webhook hangs
    for _ in range(16):
        ticks.add(view(proc.db)[0].last_tick_at)
        time.sleep(INTERVAL / 4)
    assert len(ticks) >= 3, f"{len(ticks)} ticks in 4 s while the actuator hangs"

    took = regress(proc, services, hook, dkit)
    print(f"onset to flag: {without:.2f}s without a fault, {took:.2f}s with the webhook "
          f"hanging on the earlier advance")
    assert took < without + INTERVAL + MARGIN, (took, without)
    _, _, decisions = view(proc.db)
    (rollback,) = [jd for jd in decisions if jd.decision.action is Action.ROLLBACK]
    assert "need" not in "; ".join(rollback.decision.reasons)  # judged on enough samples
    dkit.until(lambda: all(jd.applied_at is not None for jd in view(proc.db)[2]), 30,
               "the rollback applied and the advance superseded")
    assert f"superseded by #{rollback.id}" in proc.log()


def test_a_stuck_rollback_is_announced_then_its_application(
        dkit: Any, spawn: Any, tmp_path: Path, services: dict[str, Any],
        hook: FlagServer) -> None:
    proc = start(spawn, tmp_path / "stuck", services, hook, attempts=1)
    healthy_at_50(proc, dkit)
    hook.down = True  # the flag service answers 503 to everything

    def outage() -> None:
        dkit.until(lambda: "kind=actuation_stuck" in proc.log(), 30, "the stuck message")
        assert hook.flipped_at() is None
        hook.down = False

    regress(proc, services, hook, dkit, meanwhile=outage)
    dkit.until(lambda: "kind=actuation_applied" in proc.log(), 30, "the applied message")
    log = proc.log()
    stuck = next(line for line in log.splitlines() if "kind=actuation_stuck" in line)
    assert "action=rollback" in stuck and "severity=critical" in stuck
    assert "NOT APPLIED after" in stuck and "HTTP 503" in stuck  # the actuator's error
    applied = next(line for line in log.splitlines() if "kind=actuation_applied" in line)
    assert log.index(stuck) < log.index(applied)
    assert SECRET not in log


def test_a_hung_call_is_abandoned_at_its_deadline_and_holds_up_no_other_actuator(
        tmp_path: Path, hook: FlagServer) -> None:
    """In process: the real webhook actuator against the hanging endpoint, beside the real
    file actuator, through the outbox (0.5 s deadline)."""
    hook.hang_at = 25.0
    db = tmp_path / "j.db"
    journal = Journal(db)
    journal.record([Decision("a", 1.0, Action.ADVANCE, 25, 0, 1, ("advance",),
                             actor="alice")], None, 1.0)
    webhook = WebhookActuator(hook.url + "/flags/{module}", SECRET, timeout=60,
                              max_attempts=1)
    files = FileActuator(str(tmp_path / "{module}.json"))
    outbox = Outbox(str(db), [webhook, files], deadline=0.5, backoff=0.2, max_backoff=0.5)
    try:
        began = time.monotonic()
        assert outbox.deliver() == 0  # returns after the deadline, not the 60 s timeout
        assert time.monotonic() - began < 5
        got = files.read("a")
        assert got is not None and got.traffic_percent == 25  # not held up by the webhook
        assert outbox.stats.failures == 1
        (row,) = journal.decisions()
        assert row.applied_at is None and "deadline" in (row.apply_error or "")
        # a rollback now: both actuators apply it although the earlier call still hangs
        journal.record([Decision("a", 2.0, Action.ROLLBACK, 0, 1, None, ("rollback",),
                                 actor="alice")], None, 2.0)
        assert outbox.deliver() == 1
        assert hook.flipped_at() is not None
        got = files.read("a")
        assert got is not None and got.traffic_percent == 0
        assert all(r.applied_at is not None for r in journal.decisions())
        assert outbox.stats.superseded == 1
    finally:
        outbox.close()
        webhook.close()
        journal.close()
