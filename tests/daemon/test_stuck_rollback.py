"""A rollback the actuators cannot apply is announced once as stuck (with the actuator's
error), and once more when it is applied (issue 16, item 11). In process, on a real
journal file, with a fake clock; the real daemon with a real flag service that answers
503 is in test_rollback_never_waits.py."""

from __future__ import annotations

from pathlib import Path

from watchdog.actuators import FlagState
from watchdog.clock import FakeClock
from watchdog.daemon.outbox import Outbox
from watchdog.errors import ActuatorError
from watchdog.journal.store import Journal
from watchdog.model import Action, Decision


class Outage:
    """An actuator whose flag service is down while ``down``."""

    name = "flags"

    def __init__(self) -> None:
        self.down = True
        self.state: dict[str, FlagState] = {}

    def apply(self, state: FlagState) -> None:
        if self.down:
            raise ActuatorError("flag service: HTTP 503 (Service Unavailable)")
        self.state[state.module] = state

    def read(self, module: str) -> FlagState | None:
        return self.state.get(module)


def test_a_stuck_rollback_is_announced_once_then_once_applied(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    journal = Journal(db)
    journal.record([Decision("svc", 1.0, Action.ADVANCE, 25, 0, 1, ("advance",),
                             actor="watchdog")], None, 1.0)
    journal.record([Decision("svc", 2.0, Action.ROLLBACK, 0, 1, None, ("latency up",),
                             actor="watchdog")], None, 2.0)
    clock = FakeClock(100.0)
    said: list[tuple[str, str, float, str]] = []
    actuator = Outage()
    outbox = Outbox(str(db), [actuator], clock=clock, backoff=1.0, max_backoff=1.0,
                    stuck_after=5.0,
                    on_stuck=lambda d, key, waited, err: said.append(("stuck", key, waited, err)),
                    on_unstuck=lambda d, key, waited, err: said.append(("applied", key,
                                                                        waited, err)))
    try:
        for _ in range(4):  # 4 s: not stuck yet
            outbox.deliver()
            clock.advance(1.0)
        assert said == []
        for _ in range(4):  # past 5 s: announced, once
            outbox.deliver()
            clock.advance(1.0)
        assert [(s[0], s[1]) for s in said] == [("stuck", "2")]
        assert said[0][2] >= 5.0 and "HTTP 503" in said[0][3]
        actuator.down = False
        outbox.deliver()
        assert [(s[0], s[1]) for s in said] == [("stuck", "2"), ("applied", "2")]
        assert actuator.state["svc"].traffic_percent == 0.0
        assert all(r.applied_at is not None for r in journal.decisions())
        assert outbox.stuck.count == 1
    finally:
        outbox.close()
        journal.close()


def test_an_advance_that_cannot_be_applied_is_not_announced_as_stuck(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    journal = Journal(db)
    journal.record([Decision("svc", 1.0, Action.ADVANCE, 25, 0, 1, ("advance",),
                             actor="watchdog")], None, 1.0)
    clock = FakeClock(100.0)
    said: list[str] = []
    outbox = Outbox(str(db), [Outage()], clock=clock, stuck_after=1.0,
                    on_stuck=lambda d, key, waited, err: said.append(key))
    try:
        for _ in range(5):
            outbox.deliver()
            clock.advance(1.0)
        assert said == [] and outbox.stats.failures >= 1  # failures alert on their own
    finally:
        outbox.close()
        journal.close()
