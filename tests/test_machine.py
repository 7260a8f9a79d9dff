"""The rollout state machine: every transition, and every illegal one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from watchdog.config.schema import Stage
from watchdog.errors import IllegalTransition
from watchdog.judge.alerts import AlertPhase, AlertState
from watchdog.model import (
    Action,
    Decision,
    RuleOutcome,
    RuleResult,
    Verdict,
    VerdictKind,
    Version,
)
from watchdog.rollout import machine
from watchdog.rollout.state import TERMINAL, Checkpoint, Phase

H, INC, W, C = (VerdictKind.HEALTHY, VerdictKind.INCONCLUSIVE, VerdictKind.WARNING,
              VerdictKind.CRITICAL)
MODULE = "checkout"


@pytest.fixture
def plan(kit: Any) -> Any:
    # stages 10 -> 50 -> 100, hold 60s, rollback after 2 failures in a row or 3 in all,
    # alert after 120s of insufficient evidence
    return kit.plan()


@pytest.fixture
def feed(kit: Any, plan: Any) -> Any:
    """Feed ``[(now, kind), ...]`` to on_verdict; the final checkpoint and every decision."""

    def run(cp: Checkpoint, events: list[tuple[float, VerdictKind]], the_plan: Any = None,
            kill_switch: bool = False, rules: tuple[str, ...] = ("latency",)
            ) -> tuple[Checkpoint, list[Decision]]:
        decisions: list[Decision] = []
        for now, kind in events:
            cp, new = machine.on_verdict(cp, kit.verdict(kind, now, rules=rules),
                                         the_plan or plan, now, kill_switch=kill_switch)
            assert all(d.at == now and d.module == cp.module for d in new)
            decisions.extend(new)
        return cp, decisions

    return run


def H_at(now: float) -> Verdict:
    return Verdict(MODULE, now, H, ())


def started(plan: Any, now: float = 0.0) -> Checkpoint:
    cp, _ = machine.start(MODULE, plan, now)
    return cp


def every(step: float, start: float, end: float, kind: VerdictKind
          ) -> list[tuple[float, VerdictKind]]:
    n = round((end - start) / step)
    return [(start + i * step, kind) for i in range(n + 1)]


# -- start -------------------------------------------------------------------------------


def test_start_enters_the_first_stage_and_decides_to_advance_to_it(plan: Any) -> None:
    cp, d = machine.start(MODULE, plan, 1000.0, actor="alice")
    assert (cp.phase, cp.stage, cp.traffic_percent) == (Phase.PROGRESSING, 0, 10.0)
    assert cp.started_at == cp.stage_started_at == 1000.0
    assert (cp.consecutive_failures, cp.cumulative_failures) == (0, 0)
    assert (d.action, d.traffic_percent, d.from_stage, d.to_stage) == (Action.ADVANCE, 10.0,
                                                                       None, 0)
    assert d.at == 1000.0 and d.actor == "alice" and d.module == MODULE
    assert "stage 1 of 3" in d.reasons[0]
    assert cp.last_action is Action.ADVANCE and cp.last_decision_at == 1000.0
    assert d.version is Version.V2


# -- healthy -----------------------------------------------------------------------------


def test_healthy_before_the_hold_has_passed_decides_nothing(plan: Any, feed: Any) -> None:
    cp, decisions = feed(started(plan), every(10, 10, 50, H))
    assert decisions == []
    assert (cp.stage, cp.traffic_percent, cp.last_tick_at) == (0, 10.0, 50.0)


def test_healthy_for_the_hold_advances_exactly_at_the_hold(plan: Any, feed: Any) -> None:
    cp, decisions = feed(started(plan, 100.0), every(10, 110, 160, H))
    assert len(decisions) == 1
    (d,) = decisions
    assert (d.action, d.at, d.traffic_percent, d.from_stage, d.to_stage) == (
        Action.ADVANCE, 160.0, 50.0, 0, 1)
    assert "healthy for 60s at 10%" in d.reasons[0]
    assert (cp.stage, cp.traffic_percent, cp.stage_started_at) == (1, 50.0, 160.0)


def test_healthy_all_the_way_advances_through_every_stage_then_promotes(plan: Any,
                                                                        feed: Any) -> None:
    cp, decisions = feed(started(plan), every(10, 10, 400, H))
    assert [(d.action, d.at, d.traffic_percent) for d in decisions] == [
        (Action.ADVANCE, 60.0, 50.0), (Action.ADVANCE, 120.0, 100.0),
        (Action.PROMOTE, 180.0, 100.0)]
    assert cp.phase is Phase.PROMOTED
    assert cp.phase in TERMINAL


def test_a_stage_with_its_own_hold_uses_it(kit: Any, feed: Any) -> None:
    plan = kit.plan().model_copy(update={"stages": [Stage(traffic=10, hold=30),
                                                    Stage(traffic=100)]})
    _cp, decisions = feed(started(plan), every(10, 10, 200, H), the_plan=plan)
    assert [(d.action, d.at) for d in decisions] == [(Action.ADVANCE, 30.0),
                                                    (Action.PROMOTE, 90.0)]


def test_a_single_stage_plan_promotes_after_its_hold(kit: Any, feed: Any) -> None:
    plan = kit.plan(stages=(100,))
    cp, decisions = feed(started(plan), every(10, 10, 60, H), the_plan=plan)
    assert [d.action for d in decisions] == [Action.PROMOTE]
    assert cp.traffic_percent == 100.0


@pytest.mark.parametrize("kind", [W, C])
def test_a_warning_or_failure_restarts_the_hold(plan: Any, feed: Any,
                                                kind: VerdictKind) -> None:
    # 50s healthy, one bad tick, then healthy again: the stage needs another full 60s
    events = [*every(10, 10, 50, H), (55.0, kind), *every(10, 60, 200, H)]
    _cp, decisions = feed(started(plan), events)
    advances = [d for d in decisions if d.action is Action.ADVANCE]
    assert advances[0].at == 120.0  # 60s after the first healthy tick at 60
    assert "healthy for 60s" in advances[0].reasons[0]


def test_missing_data_stops_the_hold_clock_without_restarting_it(plan: Any, feed: Any) -> None:
    # 50s healthy (0..50), a spell of missing data (55..85), healthy again from 90: the
    # 50s already seen count, the gap does not, so the hold of 60s is reached at 100
    events = [*every(10, 10, 50, H), (55.0, INC), (65.0, INC), (85.0, INC),
              *every(10, 90, 200, H)]
    _cp, decisions = feed(started(plan), events)
    advances = [d for d in decisions if d.action is Action.ADVANCE]
    assert advances[0].at == 100.0
    assert "healthy for 60s" in advances[0].reasons[0]


def test_healthy_resets_the_consecutive_failures_but_not_the_cumulative(plan: Any,
                                                                       feed: Any) -> None:
    cp, _ = feed(started(plan), [(10.0, C), (20.0, H)])
    assert (cp.consecutive_failures, cp.cumulative_failures) == (0, 1)


# -- inconclusive ------------------------------------------------------------------------


def test_inconclusive_holds_once_and_never_advances(plan: Any, feed: Any) -> None:
    cp, decisions = feed(started(plan, 0.0), every(10, 10, 100, INC),
                         the_plan=plan.model_copy(update={"max_inconclusive": 10_000.0}))
    assert [(d.action, d.at, d.traffic_percent) for d in decisions] == [
        (Action.HOLD, 10.0, 10.0)]
    assert (cp.stage, cp.traffic_percent, cp.inconclusive_since) == (0, 10.0, 10.0)
    assert decisions[0].from_stage == decisions[0].to_stage == 0


def test_inconclusive_alerts_once_after_max_inconclusive(plan: Any, feed: Any) -> None:
    cp, decisions = feed(started(plan), every(10, 10, 400, INC))
    assert [d.at for d in decisions] == [10.0, 130.0]  # the hold, then the alert at 120s
    alert = decisions[1]
    assert alert.action is Action.HOLD
    assert "insufficient for 120s" in alert.reasons[0]
    assert cp.inconclusive_alerted
    assert cp.stage == 0


def test_alert_at_the_first_inconclusive_verdict_is_not_followed_by_a_duplicate(
        kit: Any, feed: Any) -> None:
    plan = kit.plan(max_inconclusive=10)
    _cp, decisions = feed(started(plan), every(10, 10, 60, INC), the_plan=plan)
    assert [d.at for d in decisions] == [10.0, 20.0]
    assert "insufficient" in decisions[1].reasons[0]


def test_healthy_clears_the_inconclusive_clock_and_a_new_period_alerts_again(
        plan: Any, feed: Any) -> None:
    events = [*every(10, 10, 140, INC), (150.0, H), *every(10, 160, 300, INC)]
    _cp, decisions = feed(started(plan), events)
    alerts = [d for d in decisions if any("insufficient" in r for r in d.reasons)]
    assert [d.at for d in alerts] == [130.0, 280.0]


@pytest.mark.parametrize("kind", [W, C])
def test_a_warning_or_failure_restarts_the_inconclusive_clock(kit: Any, feed: Any,
                                                              kind: VerdictKind) -> None:
    plan = kit.plan(consecutive=3, cumulative=5)
    events = [*every(10, 10, 140, INC), (150.0, kind), *every(10, 160, 300, INC)]
    _cp, decisions = feed(started(plan), events, the_plan=plan)
    alerts = [d for d in decisions if any("insufficient" in r for r in d.reasons)]
    assert [d.at for d in alerts] == [130.0, 280.0]


def test_a_change_in_which_rules_lack_evidence_is_a_new_hold(plan: Any, feed: Any) -> None:
    cp, first = feed(started(plan), every(10, 10, 30, INC), rules=("latency",))
    cp, second = feed(cp, every(10, 40, 60, INC), rules=("latency", "errors"))
    assert [d.at for d in first] == [10.0]
    assert [d.at for d in second] == [40.0]


# -- warning -----------------------------------------------------------------------------


def test_warning_holds_without_counting_a_failure(plan: Any, feed: Any) -> None:
    cp, decisions = feed(started(plan), every(10, 10, 200, W))
    assert [(d.action, d.at) for d in decisions] == [(Action.HOLD, 10.0)]
    assert "latency" in decisions[0].reasons[0]
    assert (cp.consecutive_failures, cp.cumulative_failures, cp.stage) == (0, 0, 0)


def test_hold_is_journaled_again_when_its_cause_changes_or_returns(plan: Any,
                                                                   feed: Any) -> None:
    cp, a = feed(started(plan), [(10.0, W), (20.0, W)], rules=("latency",))
    cp, b = feed(cp, [(30.0, W), (40.0, W)], rules=("errors",))
    cp, c = feed(cp, [(50.0, H), (60.0, W)], rules=("errors",))
    cp, d = feed(cp, [(70.0, INC), (80.0, W)], rules=("errors",))
    assert [x.at for x in a + b + c + d] == [10.0, 30.0, 60.0, 70.0, 80.0]
    assert all(x.action is Action.HOLD for x in a + b + c + d)


# -- critical and failure limits ---------------------------------------------------------


def test_critical_below_the_limit_holds_and_says_how_many_remain(plan: Any,
                                                                 feed: Any) -> None:
    cp, decisions = feed(started(plan), [(10.0, C)])
    (d,) = decisions
    assert d.action is Action.HOLD and d.traffic_percent == 10.0
    assert "failure 1 of 2 before rollback" in d.reasons
    assert (cp.consecutive_failures, cp.cumulative_failures, cp.phase) == (1, 1,
                                                                           Phase.PROGRESSING)


def test_consecutive_failure_limit_rolls_back(plan: Any, feed: Any) -> None:
    cp, decisions = feed(started(plan), [(10.0, C), (20.0, C)])
    assert [d.action for d in decisions] == [Action.HOLD, Action.ROLLBACK]
    rb = decisions[-1]
    assert (rb.traffic_percent, rb.from_stage, rb.to_stage, rb.actor) == (0.0, 0, None,
                                                                          "watchdog")
    assert rb.version is Version.V1
    assert any("2 in a row (limit 2)" in r for r in rb.reasons)
    assert (cp.phase, cp.traffic_percent) == (Phase.ROLLED_BACK, 0.0)


def test_cumulative_failure_limit_rolls_back(plan: Any, feed: Any) -> None:
    cp, decisions = feed(started(plan), [(10.0, C), (20.0, H), (30.0, C), (40.0, H),
                                         (50.0, C)])
    assert [d.action for d in decisions] == [Action.HOLD, Action.HOLD, Action.ROLLBACK]
    assert any("3 in all (limit 3)" in r for r in decisions[-1].reasons)
    assert cp.phase is Phase.ROLLED_BACK


def test_missing_data_between_failures_does_not_excuse_them(plan: Any, feed: Any) -> None:
    _cp, decisions = feed(started(plan), [(10.0, C), (20.0, INC), (30.0, C)])
    assert decisions[-1].action is Action.ROLLBACK


def test_default_limits_roll_back_on_the_first_failure(kit: Any, feed: Any) -> None:
    plan = kit.plan(consecutive=1, cumulative=3)
    _cp, decisions = feed(started(plan), [(10.0, H), (20.0, C)], the_plan=plan)
    assert [d.action for d in decisions] == [Action.ROLLBACK]


def test_rollback_evidence_comes_from_the_verdict(kit: Any, plan: Any) -> None:
    result = RuleResult("latency", "latency_p95_ms", True, "p95 up 30%", {"observed": 230.0})
    verdict = Verdict(MODULE, 10.0, C, (result,), ("latency",), ("latency: p95 up 30%",))
    _cp, decisions = machine.on_verdict(started(kit.plan(consecutive=1)), verdict,
                                       kit.plan(consecutive=1), 10.0)
    (d,) = decisions
    assert d.evidence == ({"rule": "latency", "metric": "latency_p95_ms", "breached": True,
                           "outcome": "breached", "summary": "p95 up 30%",
                           "observed": 230.0},)
    assert d.reasons[0] == "latency: p95 up 30%"


def test_the_journaled_evidence_names_each_rules_outcome(kit: Any) -> None:
    """``breached`` is None for every outcome but breached and clear: the evidence says
    which one it was (a rule the always-valid test has not confirmed yet, one still
    warming up), so a reader of the journal need not guess from flags."""
    results = (RuleResult("latency", "latency_p95_ms", True, "p95 up 30%", {}),
               RuleResult("errors", "error_rate", RuleOutcome.UNCONFIRMED, "not yet", {}),
               RuleResult("memory", "memory_rss_bytes", RuleOutcome.WARMING, "warming", {}))
    verdict = Verdict(MODULE, 10.0, C, results, ("latency",), ("latency: p95 up 30%",))
    _cp, (d,) = machine.on_verdict(started(kit.plan(consecutive=1)), verdict,
                                   kit.plan(consecutive=1), 10.0)
    assert [(e["rule"], e["breached"], e["outcome"]) for e in d.evidence] == [
        ("latency", True, "breached"), ("errors", None, "unconfirmed"),
        ("memory", None, "warming")]


# -- verdicts in phases other than progressing ------------------------------------------


def in_phase(plan: Any, phase: Phase, now: float = 0.0) -> Checkpoint:
    cp = started(plan, now)
    if phase is Phase.PAUSED:
        cp, _ = machine.pause(cp, now, "alice", "looking")
    elif phase is Phase.ROLLED_BACK:
        cp, _ = machine.rollback(cp, now, "alice", "bad")
    elif phase is Phase.PROMOTED:
        cp, _ = machine.promote(cp, plan, now, "alice", "good")
    elif phase is Phase.ABORTED:
        cp, _ = machine.abort(cp, now, "alice", "stop")
    elif phase is Phase.AWAITING_APPROVAL:
        cp = replace(cp, phase=phase, waiting_since=now)
    assert cp.phase is phase
    return cp


@pytest.mark.parametrize("phase", [p for p in Phase if p not in (Phase.PROGRESSING,
                                                           Phase.AWAITING_APPROVAL)])
@pytest.mark.parametrize("kind", list(VerdictKind))
def test_other_phases_ignore_verdicts(plan: Any, feed: Any, phase: Phase,
                                      kind: VerdictKind) -> None:
    before = in_phase(plan, phase)
    after, decisions = feed(before, every(10, 10, 1000, kind))
    assert decisions == []
    assert replace(after, last_tick_at=None) == replace(before, last_tick_at=None)
    assert after.last_tick_at == 1000.0


# -- kill switch -------------------------------------------------------------------------


def test_kill_switch_holds_once_and_never_advances(plan: Any, feed: Any) -> None:
    cp, decisions = feed(started(plan), every(10, 10, 300, H), kill_switch=True)
    assert [(d.action, d.at) for d in decisions] == [(Action.HOLD, 10.0)]
    assert "kill switch" in decisions[0].reasons[0]
    assert cp.stage == 0


def test_after_the_kill_switch_the_stage_needs_a_full_healthy_hold(plan: Any,
                                                                   feed: Any) -> None:
    cp, _ = feed(started(plan), every(10, 10, 100, H), kill_switch=True)
    cp, decisions = feed(cp, every(10, 110, 200, H))
    assert [(d.action, d.at) for d in decisions] == [(Action.ADVANCE, 170.0)]


def test_kill_switch_outranks_a_critical_verdict(plan: Any, feed: Any) -> None:
    cp, decisions = feed(started(plan), every(10, 10, 50, C), kill_switch=True)
    assert [d.action for d in decisions] == [Action.HOLD]
    assert cp.consecutive_failures == 0


# -- operator actions --------------------------------------------------------------------


def test_pause_keeps_the_stage_and_traffic(plan: Any, feed: Any) -> None:
    cp, _ = feed(started(plan), every(10, 10, 60, H))  # now at stage 2
    paused, d = machine.pause(cp, 70.0, "alice", "investigating")
    assert (paused.phase, paused.stage, paused.traffic_percent) == (Phase.PAUSED, 1, 50.0)
    assert (d.action, d.traffic_percent, d.actor, d.reasons, d.kill_switch) == (
        Action.PAUSE, 50.0, "alice", ("investigating",), False)
    assert (d.from_stage, d.to_stage) == (1, 1)
    assert not paused.paused_by_kill_switch


def test_pause_by_kill_switch_sends_everything_to_v1(plan: Any) -> None:
    paused, d = machine.pause(started(plan), 5.0, "ops", "kill switch", kill_switch=True)
    assert (d.traffic_percent, d.kill_switch, d.version) == (0.0, True, Version.V1)
    assert paused.paused_by_kill_switch


def test_resume_from_pause_continues_the_stage_with_a_fresh_hold(plan: Any,
                                                                 feed: Any) -> None:
    cp, _ = feed(started(plan), [(10.0, C)])
    cp = replace(cp, alerts={"latency": AlertState(AlertPhase.FIRING, 10.0, 10.0, 10.0)})
    paused, _ = machine.pause(cp, 20.0, "alice", "look", kill_switch=True)
    resumed, d = machine.resume(paused, plan, 500.0, "bob", "fine")
    assert (resumed.phase, resumed.stage, resumed.traffic_percent) == (Phase.PROGRESSING, 0,
                                                                       10.0)
    assert resumed.stage_started_at == 500.0
    assert (resumed.consecutive_failures, resumed.cumulative_failures) == (0, 1)
    assert resumed.alerts == {}
    assert not resumed.paused_by_kill_switch
    assert (d.action, d.traffic_percent, d.from_stage, d.to_stage, d.actor) == (
        Action.RESUME, 10.0, 0, 0, "bob")
    # the paused time does not count towards the hold
    _, decisions = machine.on_verdict(resumed, H_at(510.0), plan, 510.0)
    assert decisions == []


def test_resume_after_rollback_starts_again_at_stage_one(plan: Any, feed: Any) -> None:
    cp, _ = feed(started(plan), [*every(10, 10, 60, H), (70.0, C), (80.0, C)])
    assert (cp.phase, cp.stage) == (Phase.ROLLED_BACK, 1)
    resumed, d = machine.resume(cp, plan, 100.0, "alice", "fixed")
    assert (resumed.phase, resumed.stage, resumed.traffic_percent) == (Phase.PROGRESSING, 0,
                                                                       10.0)
    assert (d.from_stage, d.to_stage, d.traffic_percent) == (1, 0, 10.0)
    resumed, decisions = feed(resumed, every(10, 110, 160, H))
    assert [(x.action, x.at) for x in decisions] == [(Action.ADVANCE, 160.0)]


@pytest.mark.parametrize("phase", [Phase.PROGRESSING, Phase.PAUSED])
def test_manual_promote(plan: Any, phase: Phase) -> None:
    cp = in_phase(plan, phase)
    promoted, d = machine.promote(cp, plan, 30.0, "alice", "ship it")
    assert (promoted.phase, promoted.traffic_percent) == (Phase.PROMOTED, 100.0)
    assert (d.action, d.traffic_percent, d.actor, d.reasons) == (Action.PROMOTE, 100.0,
                                                                 "alice", ("ship it",))


@pytest.mark.parametrize("phase", [Phase.PROGRESSING, Phase.PAUSED])
def test_manual_rollback(plan: Any, phase: Phase) -> None:
    cp = in_phase(plan, phase)
    ev = ({"note": "dashboards"},)
    rolled, d = machine.rollback(cp, 30.0, "alice", "looks bad", ev)
    assert (rolled.phase, rolled.traffic_percent) == (Phase.ROLLED_BACK, 0.0)
    assert (d.action, d.traffic_percent, d.actor, d.evidence) == (Action.ROLLBACK, 0.0,
                                                                  "alice", ev)


@pytest.mark.parametrize("phase", [Phase.PROGRESSING, Phase.PAUSED, Phase.ROLLED_BACK])
def test_abort(plan: Any, phase: Phase) -> None:
    cp = in_phase(plan, phase)
    aborted, d = machine.abort(cp, 30.0, "alice", "cancelled")
    assert (aborted.phase, aborted.traffic_percent) == (Phase.ABORTED, 0.0)
    assert (d.action, d.traffic_percent, d.to_stage) == (Action.ABORT, 0.0, None)
    assert aborted.phase in TERMINAL


# -- illegal transitions -----------------------------------------------------------------

AWAIT = Phase.AWAITING_APPROVAL  # issue 20: judged and controlled as progressing
ALLOWED = {
    "pause": {Phase.PROGRESSING, AWAIT},
    "resume": {Phase.PAUSED, Phase.ROLLED_BACK},
    "promote": {Phase.PROGRESSING, Phase.PAUSED, AWAIT},
    "roll back": {Phase.PROGRESSING, Phase.PAUSED, AWAIT},
    "abort": {Phase.PROGRESSING, Phase.PAUSED, Phase.ROLLED_BACK, AWAIT},
}


def act(name: str, cp: Checkpoint, plan: Any) -> tuple[Checkpoint, Decision]:
    if name == "pause":
        return machine.pause(cp, 50.0, "alice", "why")
    if name == "resume":
        return machine.resume(cp, plan, 50.0, "alice", "why")
    if name == "promote":
        return machine.promote(cp, plan, 50.0, "alice", "why")
    if name == "roll back":
        return machine.rollback(cp, 50.0, "alice", "why")
    return machine.abort(cp, 50.0, "alice", "why")


@pytest.mark.parametrize("name", list(ALLOWED))
@pytest.mark.parametrize("phase", list(Phase))
def test_every_operator_action_in_every_phase(plan: Any, name: str, phase: Phase) -> None:
    cp = in_phase(plan, phase)
    if phase in ALLOWED[name]:
        after, d = act(name, cp, plan)
        assert d.actor == "alice" and d.reasons == ("why",) and d.at == 50.0
        assert after.last_action is d.action
        return
    with pytest.raises(IllegalTransition) as info:
        act(name, cp, plan)
    message = str(info.value)
    assert f"cannot {name}" in message
    assert MODULE in message
    assert f"it is {phase.value}" in message
    assert ("terminal" in message) == (phase in TERMINAL)


# -- checkpoint serialisation ------------------------------------------------------------


def test_checkpoint_round_trips_through_a_dict(plan: Any, feed: Any) -> None:
    cp, _ = feed(started(plan), [(10.0, C), (20.0, INC), (30.0, W)])
    cp = replace(cp, alerts={"a": AlertState(AlertPhase.PENDING, 25.0, None, 30.0),
                             "b": AlertState(resolved_at=12.0)})
    assert Checkpoint.from_dict(cp.to_dict()) == cp
    assert Checkpoint.from_dict(cp.to_dict()).to_dict() == cp.to_dict()


def test_a_checkpoint_written_before_healthy_since_existed_counts_from_the_stage_start(
        plan: Any) -> None:
    data = started(plan, 100.0).to_dict()
    del data["healthy_since"]
    cp = Checkpoint.from_dict(data)
    _, decisions = machine.on_verdict(cp, H_at(160.0), plan, 160.0)
    assert [d.action for d in decisions] == [Action.ADVANCE]
