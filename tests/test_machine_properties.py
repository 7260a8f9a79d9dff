"""Properties of the rollout state machine, alone and driven by the engine.

* no sequence of verdicts advances a paused or rolled-back module;
* the machine advances exactly when a reference model of the plan says so (healthy for the
  stage's hold, unbroken) and rolls back exactly when the failure limits are reached;
* driven by :class:`Engine` with a real journal on a SQLite file, every advance or
  promotion the engine acts on is already in the journal when it is acted on, whatever
  the verdicts, the time steps, operator actions, restarts and journal failures.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from watchdog.config.loader import load_texts
from watchdog.engine import Engine
from watchdog.errors import JournalError
from watchdog.journal.store import Journal
from watchdog.model import Action, Decision, Verdict, VerdictKind
from watchdog.rollout import machine
from watchdog.rollout.state import Checkpoint, Phase

KINDS = list(VerdictKind)
MODULE = "checkout"

ticks = st.lists(st.tuples(st.integers(min_value=1, max_value=90),  # seconds to the next tick
                           st.sampled_from(KINDS),
                           st.booleans() | st.just(False)),  # kill switch (mostly off)
                 max_size=60)

plans = st.builds(
    dict,
    stages=st.sampled_from([(100,), (10, 100), (5, 25, 50, 100), (1, 2, 3, 4, 5, 100)]),
    hold=st.sampled_from([10.0, 30.0, 60.0, 120.0]),
    limits=st.sampled_from([(1, 1), (1, 3), (2, 3), (3, 5)]),
    max_inconclusive=st.sampled_from([20.0, 60.0, 900.0]),
)


def build_plan(kit: Any, spec: dict[str, Any]) -> Any:
    consecutive, cumulative = spec["limits"]
    return kit.plan(stages=spec["stages"], hold=spec["hold"], consecutive=consecutive,
                    cumulative=cumulative, max_inconclusive=spec["max_inconclusive"])


def verdict(kind: VerdictKind, now: float, rule: str = "r") -> Verdict:
    if kind is VerdictKind.HEALTHY:
        return Verdict(MODULE, now, kind, ())
    firing = (rule,) if kind in (VerdictKind.WARNING, VerdictKind.CRITICAL) else ()
    return Verdict(MODULE, now, kind, (), firing, (f"{rule}: {kind.value}",))


# -- the machine alone -------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=plans, warmup=st.integers(min_value=0, max_value=40), stop=st.sampled_from(
    ["pause", "pause-kill", "rollback", "critical"]), events=ticks)
def test_no_verdicts_advance_a_paused_or_rolled_back_module(
        kit: Any, spec: dict[str, Any], warmup: int, stop: str,
        events: list[tuple[int, VerdictKind, bool]]) -> None:
    plan = build_plan(kit, spec)
    cp, _ = machine.start(MODULE, plan, 0.0)
    now = 0.0
    for _ in range(warmup):  # healthy for a while: somewhere along the plan
        now += 10.0
        nxt, _ = machine.on_verdict(cp, verdict(VerdictKind.HEALTHY, now), plan, now)
        if nxt.phase is not Phase.PROGRESSING:
            break
        cp = nxt
    if stop == "pause":
        cp, _ = machine.pause(cp, now, "alice", "look")
    elif stop == "pause-kill":
        cp, _ = machine.pause(cp, now, "ops", "kill switch", kill_switch=True)
    elif stop == "rollback":
        cp, _ = machine.rollback(cp, now, "alice", "bad")
    else:
        while cp.phase is Phase.PROGRESSING:
            now += 10.0
            cp, _ = machine.on_verdict(cp, verdict(VerdictKind.CRITICAL, now), plan, now)
    assert cp.phase in (Phase.PAUSED, Phase.ROLLED_BACK)
    frozen = cp
    for dt, kind, kill in events:
        now += dt
        cp, decisions = machine.on_verdict(cp, verdict(kind, now), plan, now, kill_switch=kill)
        assert decisions == []
        assert replace(cp, last_tick_at=None) == replace(frozen, last_tick_at=None)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=plans, events=ticks)
def test_machine_follows_the_plan_model(kit: Any, spec: dict[str, Any],
                                        events: list[tuple[int, VerdictKind, bool]]) -> None:
    """A reference model: advance after ``hold`` seconds of healthy verdicts at a stage
    (warnings, failures and the kill switch restart the count; missing data pauses it);
    roll back when failures reach a limit; hold otherwise; traffic only ever grows by an
    advance or a promotion."""
    plan = build_plan(kit, spec)
    consecutive_limit, cumulative_limit = spec["limits"]
    cp, first = machine.start(MODULE, plan, 0.0)
    assert first.action is Action.ADVANCE and first.traffic_percent == spec["stages"][0]
    stage, healthy_since, banked = 0, 0.0, 0.0
    consecutive = cumulative = 0
    previous = 0.0
    done = False
    now = 0.0
    for dt, kind, kill in events:
        now += dt
        before = cp
        cp, decisions = machine.on_verdict(cp, verdict(kind, now), plan, now, kill_switch=kill)
        actions = [d.action for d in decisions]
        if done:
            assert decisions == []
            continue
        last_tick, previous = previous, now
        if kill:
            healthy_since, banked = None, 0.0
            assert actions in ([], [Action.HOLD])
        elif kind is VerdictKind.HEALTHY:
            consecutive = 0
            healthy_since = now if healthy_since is None else healthy_since
            if banked + now - healthy_since >= spec["hold"] - 1e-6:
                last = stage + 1 >= len(spec["stages"])
                assert actions == [Action.PROMOTE if last else Action.ADVANCE]
                if last:
                    done = True
                else:
                    stage += 1
                    healthy_since, banked = now, 0.0
                    assert decisions[0].traffic_percent == spec["stages"][stage]
            else:
                assert actions == []
        else:
            if kind is VerdictKind.INCONCLUSIVE:
                if healthy_since is not None:
                    banked += last_tick - healthy_since
            else:
                banked = 0.0
            healthy_since = None
            if kind is VerdictKind.CRITICAL:
                consecutive += 1
                cumulative += 1
            if consecutive >= consecutive_limit or cumulative >= cumulative_limit:
                assert actions == [Action.ROLLBACK]
                assert decisions[0].traffic_percent == 0.0
                done = True
            else:
                assert actions in ([], [Action.HOLD])
        assert cp.stage == stage
        if Action.ADVANCE not in actions and Action.PROMOTE not in actions:
            assert cp.traffic_percent <= before.traffic_percent
        for d in decisions:
            if d.action is Action.HOLD:
                assert d.traffic_percent == before.traffic_percent


@settings(max_examples=100, deadline=None)
@given(spec=plans, events=ticks)
def test_a_hold_is_journaled_when_its_cause_changes_and_only_then(
        kit: Any, spec: dict[str, Any], events: list[tuple[int, VerdictKind, bool]]) -> None:
    plan = build_plan(kit, spec)
    cp, _ = machine.start(MODULE, plan, 0.0)
    now = 0.0
    previous_cause: str | None = None
    for dt, kind, kill in events:
        now += dt
        cp, decisions = machine.on_verdict(cp, verdict(kind, now), plan, now, kill_switch=kill)
        if any(d.action is not Action.HOLD for d in decisions):
            break  # promoted or rolled back (an advance needs a healthy verdict: no cause)
        cause = "kill" if kill else None if kind is VerdictKind.HEALTHY else kind.value
        if cause is None:
            assert decisions == []
        elif cause != previous_cause:
            assert len(decisions) == 1
        else:  # the same cause as on the previous tick: only the insufficient-data alert
            assert all(any("insufficient" in r for r in d.reasons) for d in decisions)
        previous_cause = cause


# -- the engine with a real journal ------------------------------------------------------


class FlakyJournal(Journal):
    """A real journal whose writes of decisions and checkpoints fail while ``failing``."""

    failing = False

    def record(self, decisions: list[Decision], checkpoint: Checkpoint | None,
               journaled_at: float, *args: Any, **kwargs: Any) -> list[int]:
        if self.failing:
            raise JournalError(f"journal {self.path}: disk I/O error (injected)")
        return super().record(decisions, checkpoint, journaled_at, *args, **kwargs)


ops = st.lists(st.tuples(
    st.integers(min_value=5, max_value=120),  # seconds to the next tick (rules look back 5s)
    st.sampled_from([VerdictKind.HEALTHY] * 3 + KINDS),
    st.sampled_from(["tick"] * 6 + ["pause", "resume", "restart", "journal-down",
                                    "journal-up", "kill-on", "kill-off"]),
), min_size=1, max_size=40)


@pytest.mark.slow
@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(steps=ops)
# ticks 5 s apart at a 10 s interval: a 5s window holds only the newest sample (a window
# widened to 10 s once read the warning at 1010 together with the healthy 1005)
@example(steps=[(5, VerdictKind.HEALTHY, "tick"), (5, VerdictKind.WARNING, "tick")])
def test_engine_never_acts_on_an_advance_that_is_not_journaled(
        kit: Any, steps: list[tuple[int, VerdictKind, str]]) -> None:
    rules = kit.engine_rules()
    plan = rules.for_module("svc").plan
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.db"
        journal = FlakyJournal(path)
        reader = Journal(path)  # a second connection, as another process would see it
        source = kit.ScriptedSource()
        acted: list[Decision] = []

        def actuate(d: Decision) -> None:
            if d.action in (Action.ADVANCE, Action.PROMOTE):
                journaled = [j.decision for j in reader.decisions(module=d.module)]
                assert d in journaled, f"{d.action} at {d.at} acted on before it was journaled"
                cp = reader.checkpoint(d.module)
                assert cp is not None and cp.traffic_percent == d.traffic_percent
            acted.append(d)

        def new_engine() -> Engine:
            return Engine(rules, journal, source, actuate=actuate)

        try:
            engine = new_engine()
            now = 1000.0
            engine.start("svc", now)
            for dt, kind, op in steps:
                now += dt
                cp = engine.checkpoint("svc")
                assert cp is not None
                if op == "journal-down":
                    journal.failing = True
                elif op == "journal-up":
                    journal.failing = False
                elif op in ("kill-on", "kill-off") and not journal.failing:
                    journal.set_setting("kill_switch", op == "kill-on")
                elif op == "restart" and not journal.failing:
                    engine = new_engine()  # a new daemon on the same journal
                elif op in ("pause", "resume") and not journal.failing and cp.phase in (
                        (Phase.PROGRESSING,) if op == "pause"
                        else (Phase.PAUSED, Phase.ROLLED_BACK)):
                    # the operator acts through the journal; the daemon restarts to see it
                    if op == "pause":
                        new_cp, d = machine.pause(cp, now, "alice", "look")
                    else:
                        new_cp, d = machine.resume(cp, plan, now, "alice", "go on")
                    journal.record([d], new_cp, now, None, cp.alerts)
                    engine = new_engine()
                source.feed(now, kit.VALUE_FOR[kind])
                before = engine.checkpoint("svc")
                assert before is not None
                try:
                    result = engine.tick("svc", now)
                except JournalError:
                    assert journal.failing
                    event("a tick failed to journal")
                    continue
                kill = bool(reader.setting("kill_switch", False))
                if before.phase is not Phase.PROGRESSING or kill:
                    assert not [d for d in result.decisions
                                if d.action in (Action.ADVANCE, Action.PROMOTE)]
                if result.verdict is not None and kind is not VerdictKind.INCONCLUSIVE:
                    # (missing data changes no alert, so it may leave one firing)
                    assert result.verdict.kind is kind
            journal.failing = False
            for d in acted:
                event(f"acted on {d.action.value}")
            # every advance, promotion and resume in the journal was acted on
            journaled = [j.decision for j in reader.decisions(module="svc")
                         if j.decision.action in (Action.ADVANCE, Action.PROMOTE)
                         and j.decision.actor == "watchdog"]
            assert journaled == [d for d in acted
                                 if d.action in (Action.ADVANCE, Action.PROMOTE)]
            # and nothing the engine acted on is unapplied, except what the operator wrote
            unapplied = [j.decision for j in reader.decisions(unapplied_only=True)]
            assert all(d.actor == "alice" for d in unapplied)
        finally:
            reader.close()
            journal.close()


# -- the engine when the journal is down: rolling back never waits on it ----------------

FOR_RULES = """
modules:
  - name: svc
    interval: 10s
    metrics:
      m: {direction: higher_is_worse}
    rules:
      - {name: m_critical, kind: absolute, metric: m, above: 150, window: 5s, for: 20s,
         min_samples: 1, severity: critical, action: rollback}
    plan:
      stages: [10, 100]
      hold: 60s
      failure_limits: {consecutive: 1, cumulative: 3}
"""


def drive(kit: Any, tmp_path: Path, rules: Any, values: list[tuple[float, float]],
          down: tuple[float, float]) -> tuple[FlakyJournal, list[Decision]]:
    """Start at t=0, then feed ``(t, value)`` ticks with the journal down in ``down``."""
    journal = FlakyJournal(tmp_path / "journal.db")
    source = kit.ScriptedSource()
    acted: list[Decision] = []
    engine = Engine(rules, journal, source, actuate=acted.append)
    engine.start("svc", 0.0)
    for now, value in values:
        journal.failing = down[0] <= now < down[1]
        source.feed(now, value)
        try:
            engine.tick("svc", now)
        except JournalError:
            assert journal.failing
    journal.failing = False
    return journal, acted


@pytest.mark.parametrize("rules_text", ["consecutive", "for"])
def test_a_regression_rolls_back_while_the_journal_is_down(kit: Any, tmp_path: Path,
                                                           rules_text: str) -> None:
    # two failures in a row needed (the engine rules), or a rule with a 20s `for`: either
    # way the state that leads to the rollback must build up while nothing can be written
    rules = kit.engine_rules() if rules_text == "consecutive" else load_texts(
        [("<for rules>", FOR_RULES)])
    ticks = [(t, 200.0) for t in range(10, 100, 10)] + [(t, 50.0) for t in range(100, 130, 10)]
    journal, acted = drive(kit, tmp_path, rules, [(float(t), v) for t, v in ticks],
                           down=(0.0, 100.0))
    try:
        rollbacks = [d for d in acted if d.action is Action.ROLLBACK]
        assert [d.at for d in rollbacks] == [20.0 if rules_text == "consecutive" else 30.0]
        # once the journal is back, what happened is written down, in order, as applied
        rows = journal.decisions(module="svc")
        assert [r.decision.action for r in rows][-1] is Action.ROLLBACK
        assert rows[-1].decision == rollbacks[0]
        assert rows[-1].applied_at is not None
        assert [r.decision.at for r in rows] == sorted(r.decision.at for r in rows)
        cp = journal.checkpoint("svc")
        assert cp is not None and cp.phase is Phase.ROLLED_BACK
    finally:
        journal.close()


def test_an_advance_waits_for_the_journal(kit: Any, tmp_path: Path) -> None:
    # healthy throughout; the stage's 60s hold is over at t=60 but the journal is down
    ticks = [(float(t), 50.0) for t in range(10, 130, 10)]
    journal, acted = drive(kit, tmp_path, kit.engine_rules(), ticks, down=(50.0, 100.0))
    try:
        advances = [d for d in acted if d.action is Action.ADVANCE]
        assert [d.at for d in advances] == [0.0, 100.0]  # start, then only once written
        rows = [r.decision for r in journal.decisions(module="svc")]
        assert rows == advances
    finally:
        journal.close()
