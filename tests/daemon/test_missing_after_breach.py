"""A regression that takes V2's metrics endpoint down with it is still rolled back
(issue 16, item 4).

The real daemon (system clock, 500 ms interval) scrapes two real test apps (V1 and V2,
``tests/sources/testapp.py``, each its own process on a loopback port). V2's error rate
goes up; once the rule's alert is pending in the journal, V2's process is killed (its
endpoint: connection refused). The rule (``for: 8s``) keeps counting on the breach it saw:
the module is rolled back, with a reason that says the data went missing. Before the fix
the alert stayed pending, the module held, and no rollback ever came.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from watchdog.journal.store import Journal
from watchdog.judge.alerts import AlertPhase
from watchdog.model import Action

TESTAPP = Path(__file__).resolve().parents[1] / "sources" / "testapp.py"

RULES = """\
modules:
  - name: checkout
    interval: 500ms
    metrics:
      error_rate:
        direction: higher_is_worse
        scrape: {name: http_requests_failed_total, type: counter,
                 denominator: http_requests_total}
    rules:
      - {name: errors_high, kind: absolute, metric: error_rate, above: 0.2, window: 2s,
         min_samples: 2, for: 8s, severity: critical, action: rollback}
    plan: {stages: [50, 100], hold: 1h}
"""


class App:
    """One test app process: the version's /metrics endpoint, driven through stdin."""

    def __init__(self, version: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(TESTAPP), "--module", "checkout", "--version", version],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.port = int(self._line().split()[1])

    def _line(self) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15.0)
        assert ready, "the test app did not answer"
        return self.proc.stdout.readline().strip()

    def steady(self, failed: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": "steady", "requests": 20, "failed": failed,
                                          "every": 0.05}) + "\n")
        self.proc.stdin.flush()
        assert self._line() == "ok"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


def journal_view(db: Path) -> tuple[Any, list[Any]]:
    journal = Journal(db)
    try:
        return journal.checkpoint("checkout"), journal.decisions(module="checkout")
    finally:
        journal.close()


def test_a_regression_that_takes_the_v2_endpoint_down_while_pending_is_rolled_back(
        dkit: Any, spawn: Any, tmp_path: Path) -> None:
    v1, v2 = App("v1"), App("v2")
    try:
        v1.steady(failed=0)
        v2.steady(failed=0)
        setup = dkit.make_setup(tmp_path, actuator="file")
        setup.rules.write_text(RULES)
        setup.config.write_text(
            "db: journal.db\nrules: [rules.yaml]\n"
            "source: {plugin: scrape, options: {endpoints: {checkout: "
            f"{{v1: 'http://127.0.0.1:{v1.port}/metrics', "
            f"v2: 'http://127.0.0.1:{v2.port}/metrics'}}}}, timeout: 1.0}}}}\n"
            "actuators: [{plugin: file, options: {path: '{state_dir}/{module}.json'}}]\n"
            "notifiers: [{plugin: log}]\n"
            "modules: [{name: checkout, auto_start: true}]\n"
            "outbox: {poll_interval: 100ms, backoff: 50ms, max_backoff: 200ms}\n")
        proc = spawn(setup)
        proc.wait_for("daemon ready", timeout=60)
        dkit.until(lambda: journal_view(setup.db)[0] is not None, 60, "the rollout started")

        v2.steady(failed=10)  # half of V2's requests fail: far above the 20 % limit

        def pending() -> bool:
            cp = journal_view(setup.db)[0]
            alert = cp.alerts.get("errors_high")
            return alert is not None and alert.phase is AlertPhase.PENDING

        dkit.until(pending, 60, "the alert pending")
        cp, _ = journal_view(setup.db)
        assert cp.alerts["errors_high"].phase is AlertPhase.PENDING  # not firing yet
        v2.kill()  # the regression takes V2's metrics endpoint down with it
        down_at = time.time()

        def rolled_back() -> bool:
            return any(jd.decision.action is Action.ROLLBACK
                       for jd in journal_view(setup.db)[1])

        dkit.until(rolled_back, 90, "the rollback")
        cp, decisions = journal_view(setup.db)
        (rollback,) = [jd.decision for jd in decisions
                       if jd.decision.action is Action.ROLLBACK]
        assert cp.phase.value == "rolled_back"
        # decided while V2's endpoint was down, on the breach seen before it went down
        assert rollback.at > down_at
        assert "errors_high: data missing for" in rollback.reasons[0], rollback.reasons
        assert "last seen breached: error_rate mean" in rollback.reasons[0]

        def applied() -> bool:  # the outbox applied it and read the flags back
            return any(jd.decision.action is Action.ROLLBACK and jd.applied_at is not None
                       for jd in journal_view(setup.db)[1])

        dkit.until(applied, 30, "the rollback applied")
    finally:
        v1.kill()
        v2.kill()
