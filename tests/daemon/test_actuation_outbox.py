"""The actuation outbox on a real journal file: order, retries, superseding, kill switch,
and the engine's rollback when the journal cannot take it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from watchdog.actuators import FlagState
from watchdog.clock import FakeClock
from watchdog.daemon.outbox import Outbox
from watchdog.engine import Engine
from watchdog.errors import ActuatorError, JournalError
from watchdog.journal.store import Journal
from watchdog.model import Action, Decision
from watchdog.rollout.state import Checkpoint, Phase


class Flaky:
    """An actuator that fails its next ``failures`` applications, then works."""

    name = "flaky"

    def __init__(self, failures: int = 0, fail_traffic: float | None = None) -> None:
        self.failures = failures
        self.fail_traffic = fail_traffic  # always fail this traffic (a broken target)
        self.applied: list[FlagState] = []
        self.state: dict[str, FlagState] = {}

    def apply(self, state: FlagState) -> None:
        if self.failures > 0 or state.traffic_percent == self.fail_traffic:
            self.failures = max(0, self.failures - 1)
            raise ActuatorError("flag service said 503")
        self.applied.append(state)
        self.state[state.module] = state

    def read(self, module: str) -> FlagState | None:
        return self.state.get(module)


def decision(module: str, action: Action, traffic: float, at: float,
             kill: bool = False) -> Decision:
    return Decision(module, at, action, traffic, 0, 0, (f"{action.value} for a test",),
                    actor="alice", kill_switch=kill)


def journal_with(path: Path, *decisions: Decision) -> Journal:
    journal = Journal(path)
    for d in decisions:
        journal.record([d], None, d.at)
    return journal


def test_a_failing_actuator_leaves_the_decision_pending_with_backoff_then_applied(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "j.db"
    journal = journal_with(db, decision("checkout", Action.ADVANCE, 25, 1.0))
    clock = FakeClock(1000.0)
    actuator = Flaky(failures=3)
    outbox = Outbox(str(db), [actuator], clock=clock, backoff=1.0, max_backoff=3.0)
    try:
        with caplog.at_level(logging.ERROR, "watchdog.daemon.outbox"):
            waits = []
            for _ in range(3):
                assert outbox.deliver() == 0
                (row,) = journal.decisions()
                assert row.applied_at is None and "503" in (row.apply_error or "")
                assert outbox.deliver() == 0  # backing off: not tried again yet
                waits.append(outbox._retry[row.id][1] - clock.monotonic())
                clock.advance(waits[-1])
            assert waits == [1.0, 2.0, 3.0]  # doubling, capped
            assert outbox.deliver() == 1
        (row,) = journal.decisions()
        assert row.applied_at == clock.now() and row.apply_error is None
        assert outbox.stats.failures == 3 and outbox.stats.applied == 1
        assert sum("ALERT actuation failed" in r.message for r in caplog.records) == 3
        assert [s.traffic_percent for s in actuator.applied] == [25.0]
    finally:
        outbox.close()
        journal.close()


def test_the_latest_pending_decision_of_each_module_is_applied_once(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    journal = journal_with(db, decision("a", Action.ADVANCE, 5, 1.0),
                           decision("b", Action.ADVANCE, 5, 2.0),
                           decision("a", Action.ADVANCE, 25, 3.0),
                           decision("a", Action.PAUSE, 25, 4.0))
    actuator = Flaky()
    outbox = Outbox(str(db), [actuator], clock=FakeClock(10.0))
    try:
        assert outbox.deliver() == 2  # a's latest stands for its older ones (superseded)
        assert sorted((s.module, s.decision_id) for s in actuator.applied) == [
            ("a", "4"), ("b", "2")]
        assert outbox.stats.superseded == 2
        assert outbox.deliver() == 0  # nothing applied twice
        assert journal.decisions(unapplied_only=True) == []
    finally:
        outbox.close()
        journal.close()


def test_a_newer_decision_is_not_held_up_by_an_older_failing_one(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    journal = journal_with(db, decision("a", Action.ADVANCE, 25, 1.0),
                           decision("a", Action.ROLLBACK, 0, 2.0))
    actuator = Flaky(fail_traffic=25.0)  # the 25% target is refused; 0% works
    outbox = Outbox(str(db), [actuator], clock=FakeClock(10.0))
    try:
        assert outbox.deliver() == 1
        assert [s.traffic_percent for s in actuator.applied] == [0.0]
        rows = journal.decisions()
        assert all(r.applied_at is not None for r in rows)  # the advance is superseded
        assert outbox.stats.superseded == 1 and outbox.stats.failures == 0  # never tried
    finally:
        outbox.close()
        journal.close()


def test_the_kill_switch_forces_v1_on_every_effect(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    journal = journal_with(db, decision("a", Action.ADVANCE, 50, 1.0))
    journal.set_setting("kill_switch", True)
    actuator = Flaky()
    outbox = Outbox(str(db), [actuator], clock=FakeClock(10.0))
    try:
        outbox.deliver()
        assert actuator.applied == [FlagState("a", "v1", 0.0, True, "1")]
    finally:
        outbox.close()
        journal.close()


def test_the_worker_applies_what_another_process_journals(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    journal = Journal(db)
    actuator = Flaky()
    outbox = Outbox(str(db), [actuator], poll_interval=0.05)
    outbox.start()
    try:
        other = journal_with(db, decision("a", Action.PAUSE, 5, 1.0))
        other.close()
        import time
        deadline = time.monotonic() + 2
        while not actuator.applied and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [s.decision_id for s in actuator.applied] == ["1"]
    finally:
        outbox.close()
        journal.close()


class DownJournal(Journal):
    """A real journal whose decision writes fail while ``down``."""

    down = False

    def record(self, decisions: list[Decision], checkpoint: Checkpoint | None,
               journaled_at: float, *args: Any, **kwargs: Any) -> list[int]:
        if self.down:
            raise JournalError("disk full (injected)")
        return super().record(decisions, checkpoint, journaled_at, *args, **kwargs)


def test_a_rollback_is_handed_over_at_once_even_without_the_journal(
        kit: Any, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    journal = DownJournal(db)
    actuator = Flaky()
    outbox = Outbox(str(db), [actuator], clock=FakeClock(0.0))
    source = kit.ScriptedSource()
    engine = Engine(kit.engine_rules(), journal, source, outbox=outbox)
    try:
        engine.start("svc", 0.0)
        outbox.deliver()  # the tick only hands over; the outbox's round applies
        assert [s.traffic_percent for s in actuator.applied] == [10.0]
        journal.down = True
        for now in (10.0, 20.0):
            source.feed(now, 200.0)  # critical twice: the plan's limit
            try:
                engine.tick("svc", now)
            except JournalError:
                assert now == 10.0  # the first failure is only kept in memory
        outbox.deliver()
        assert actuator.applied[-1].traffic_percent == 0.0  # rolled back, unjournaled
        assert actuator.applied[-1].decision_id.startswith("unjournaled:")
        journal.down = False
        source.feed(30.0, 50.0)
        engine.tick("svc", 30.0)
        outbox.deliver()
        rows = journal.decisions()
        assert [r.decision.action for r in rows] == [Action.ADVANCE, Action.HOLD,
                                                     Action.ROLLBACK]
        assert all(r.applied_at is not None for r in rows)
        # the hold journaled late is not applied over the rollback it preceded
        assert actuator.applied[-1].traffic_percent == 0.0
        cp = journal.checkpoint("svc")
        assert cp is not None and cp.phase is Phase.ROLLED_BACK
    finally:
        outbox.close()
        journal.close()


class Killed(BaseException):
    """The process dies here (SIGKILL between two journal writes)."""


def test_a_crash_between_marks_never_leaves_an_older_decision_pending_behind_a_newer(
        tmp_path: Path) -> None:
    # seen once in CI's SIGKILL test: the newest decision was marked applied, the process
    # died before its older ones were marked superseded, and the next daemon applied the
    # older one over the newer flag state
    db = tmp_path / "j.db"
    journal = journal_with(db, decision("a", Action.ADVANCE, 5, 1.0),
                           decision("a", Action.ADVANCE, 25, 2.0))
    outbox = Outbox(str(db), [Flaky()], clock=FakeClock(10.0))
    mark = outbox.journal.mark_applied
    calls: list[int] = []

    def dies_on_the_second_mark(decision_id: int, *args: Any, **kwargs: Any) -> None:
        calls.append(decision_id)
        if len(calls) == 2:
            raise Killed
        mark(decision_id, *args, **kwargs)

    outbox.journal.mark_applied = dies_on_the_second_mark  # type: ignore[method-assign]
    try:
        with pytest.raises(Killed):
            outbox.deliver()
        pending = [jd.id for jd in journal.decisions(unapplied_only=True)]
        newest = max(jd.id for jd in journal.decisions())
        assert pending == [newest]  # the next daemon applies the newest again, not an older
    finally:
        outbox.close()
        journal.close()
