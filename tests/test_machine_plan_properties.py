"""Properties of the rollout state machine with the plan features of issue 20, under any
sequence of verdicts and manual actions (hypothesis):

* no verdict moves a module that is paused, rolled back or terminal (its traffic and
  stage stay; only a person's action moves it);
* an automatic step back always lowers the traffic, and never happens more than the
  policy's ``max_step_backs`` times between two starts of the rollout;
* traffic is always a stage of the plan, or 0 after a rollback or abort.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchdog.config.schema import FailurePolicy, Plan
from watchdog.errors import IllegalTransition
from watchdog.model import Action, Decision, VerdictKind
from watchdog.rollout import machine, stepback
from watchdog.rollout.state import Checkpoint, Phase

MODULE = "m"
STAGES = (10.0, 25.0, 50.0, 100.0)
MANUAL = ["pause", "resume", "rollback", "step-back", "set-stage", "abort"]

events = st.lists(st.one_of(
    st.tuples(st.just("verdict"), st.sampled_from(list(VerdictKind)), st.just(0.0)),
    st.tuples(st.just("manual"), st.sampled_from(MANUAL), st.sampled_from(STAGES)),
), max_size=80)
policies = st.sampled_from([FailurePolicy(),
                            FailurePolicy(action="step_back", max_step_backs=1),
                            FailurePolicy(action="step_back", max_step_backs=3),
                            FailurePolicy(action="step_back", to=10, max_step_backs=2)])


def manual(cp: Checkpoint, plan: Plan, what: str, stage: float, now: float
           ) -> tuple[Checkpoint, Decision]:
    if what == "pause":
        return machine.pause(cp, now, "op", "r")
    if what == "resume":
        return machine.resume(cp, plan, now, "op", "r")
    if what == "rollback":
        return machine.rollback(cp, now, "op", "r")
    if what == "abort":
        return machine.abort(cp, now, "op", "r")
    if what == "step-back":
        return stepback.step_back(cp, plan, now, "op", "r")
    return stepback.set_stage(cp, plan, stage, now, "op", "r")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy=policies, seq=events, consecutive=st.sampled_from([1, 2]))
def test_verdicts_never_move_a_stopped_module_and_step_backs_are_bounded(
        kit: Any, policy: FailurePolicy, seq: list[tuple[str, Any, float]],
        consecutive: int) -> None:
    plan = kit.plan(stages=STAGES, hold=30.0, consecutive=consecutive, cumulative=3)
    plan = plan.model_copy(update={"on_failure": policy})
    cp, _ = machine.start(MODULE, plan, 0.0)
    now = 0.0
    automatic = 0
    for kind, what, stage in seq:
        now += 20.0
        before = cp
        if kind == "manual":
            try:
                cp, d = manual(cp, plan, what, stage, now)
            except IllegalTransition:
                assert cp == before
                continue
            assert d.actor == "op" and d.reasons
            if what in ("resume", "set-stage") and before.phase is Phase.ROLLED_BACK:
                automatic = 0  # a new attempt
            continue
        cp, decisions = machine.on_verdict(cp, kit.verdict(what, now, MODULE), plan, now)
        if before.phase is not Phase.PROGRESSING:
            assert (cp.phase, cp.stage, cp.traffic_percent) == (
                before.phase, before.stage, before.traffic_percent)
            assert decisions == []
        for d in decisions:
            if d.action is Action.STEP_BACK:
                automatic += 1
                assert d.traffic_percent < before.traffic_percent
                assert what is VerdictKind.CRITICAL
        assert automatic <= policy.max_step_backs or policy.action == "rollback"
        assert cp.traffic_percent in (*STAGES, 0.0)
        if cp.phase in (Phase.ROLLED_BACK, Phase.ABORTED):
            assert cp.traffic_percent == 0.0


gate_ticks = st.lists(st.tuples(st.sampled_from(list(VerdictKind)),
                                st.sampled_from(["met", "pending", "failed", "missing"])),
                      max_size=60)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=gate_ticks, on_fail=st.sampled_from(["hold", "rollback"]),
       before=st.sampled_from([25.0, 100.0]))
def test_no_step_past_a_gate_that_is_not_met(kit: Any, seq: list[tuple[VerdictKind, str]],
                                             on_fail: str, before: float) -> None:
    from watchdog.config.planparts import Gate
    from watchdog.judge.gates import GateResult

    plan = kit.plan(stages=STAGES, hold=30.0, consecutive=2, cumulative=4)
    gate = Gate(name="g", metric="m", at_most=1.0, before=before, on_fail=on_fail)
    plan = plan.model_copy(update={"gates": [gate]})
    cp, _ = machine.start(MODULE, plan, 0.0)
    now = 0.0
    for kind, state in seq:
        now += 20.0
        results = [] if state == "missing" else [GateResult("g", "m", before, state, "s")]
        before_cp = cp
        cp, decisions = machine.on_verdict(cp, kit.verdict(kind, now, MODULE), plan, now,
                                           gates=results)
        for d in decisions:
            if d.action is Action.ADVANCE and d.traffic_percent == before:
                assert state == "met" and kind is VerdictKind.HEALTHY
            if d.action is Action.ROLLBACK and kind is not VerdictKind.CRITICAL:
                # only a failed gate that says so rolls back without a critical verdict
                assert (state, on_fail) == ("failed", "rollback")
                assert plan.stages[before_cp.stage + 1].traffic == before


APPROVAL_MANUAL = ["approve", "pause", "resume", "step-back", "set-stage", "rollback"]
approval_events = st.lists(st.one_of(
    st.tuples(st.just("verdict"), st.sampled_from(list(VerdictKind)), st.just(0.0)),
    st.tuples(st.just("manual"), st.sampled_from(APPROVAL_MANUAL), st.sampled_from(STAGES)),
), max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=approval_events, asking=st.sampled_from([(1,), (2,), (1, 3), (1, 2, 3)]))
def test_no_verdict_advances_a_module_waiting_for_approval_paused_or_rolled_back(
        kit: Any, seq: list[tuple[str, Any, float]], asking: tuple[int, ...]) -> None:
    from watchdog.config.schema import Stage
    from watchdog.rollout import approval

    plan = Plan(stages=[Stage(traffic=t, approval=i in asking) for i, t in enumerate(STAGES)],
                hold=30.0, approval_reminder=100.0)
    cp, _ = machine.start(MODULE, plan, 0.0)
    now = 0.0
    for kind, what, stage in seq:
        now += 20.0
        before = cp
        if kind == "manual":
            try:
                if what == "approve":
                    cp, _ = approval.approve(cp, plan, now, "op", "r")
                else:
                    cp, _ = manual(cp, plan, what, stage, now)
            except IllegalTransition:
                assert cp == before
            continue
        cp, decisions = machine.on_verdict(cp, kit.verdict(what, now, MODULE), plan, now)
        moved_up = cp.traffic_percent > before.traffic_percent
        if moved_up:
            # only a healthy verdict of a progressing module, approved where it must be
            assert before.phase is Phase.PROGRESSING and what is VerdictKind.HEALTHY
            assert not plan.stages[cp.stage].approval or before.approved_stage == cp.stage
        if before.phase in (Phase.PAUSED, Phase.ROLLED_BACK, Phase.AWAITING_APPROVAL):
            assert not moved_up and not any(d.action is Action.ADVANCE for d in decisions)
        if cp.phase is Phase.AWAITING_APPROVAL:
            assert plan.stages[cp.stage + 1].approval and cp.approved_stage != cp.stage + 1


GROUP_RULES = """
modules:
  - {name: g.a, metrics: {m: {direction: higher_is_worse}}, plan: &p {stages: [10, 25, 50, 100]},
     rules: [{name: r, kind: absolute, metric: m, above: 1}]}
  - {name: g.b, metrics: {m: {direction: higher_is_worse}}, plan: *p,
     rules: [{name: r, kind: absolute, metric: m, above: 1}]}
  - {name: g.c, metrics: {m: {direction: higher_is_worse}}, plan: *p,
     rules: [{name: r, kind: absolute, metric: m, above: 1}]}
groups:
  - name: g
    plan:
      stages: [10, 25, {traffic: 50, approval: true}, 100]
      hold: 30s
      failure_limits: {consecutive: 2, cumulative: 4}
      on_failure: {action: step_back, max_step_backs: 1}
    rollback: member
    members:
      - {module: g.a}
      - {module: g.b, joins_at: 25}
      - {module: g.c, joins_at: 50, rollback: group}
"""
GROUP_MANUAL = ["pause", "resume", "step-back", "set-stage", "approve", "rollback",
                "kill-on", "kill-off"]
member_kinds = st.fixed_dictionaries({m: st.sampled_from(list(VerdictKind))
                                      for m in ("g.a", "g.b", "g.c")})
group_events = st.lists(st.one_of(
    st.tuples(st.just("verdict"), member_kinds, st.just(0.0)),
    st.tuples(st.just("manual"), st.sampled_from(GROUP_MANUAL), st.sampled_from(STAGES)),
), max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=group_events)
def test_no_verdict_or_action_advances_a_disabled_rolled_back_or_waiting_member(
        seq: list[tuple[str, Any, float]]) -> None:
    """The done-when of issue 20: no sequence of verdicts and manual actions advances a
    member that is disabled (not joined), rolled back, or waiting for approval."""
    from watchdog.config.loader import load_texts
    from watchdog.groups import machine as gm
    from watchdog.model import Verdict
    from watchdog.rollout import approval

    group = load_texts([("g.yaml", GROUP_RULES)]).groups["g"]
    plan = group.plan
    cp, _ = gm.start(group, 0.0)
    now = 0.0
    for kind, what, stage in seq:
        now += 20.0
        before = cp
        if kind == "verdict":
            verdicts = {m: Verdict(m, now, k, (), ("r",) if k is VerdictKind.CRITICAL
                                   else (), ("r: x",)) for m, k in what.items()
                        if cp.members.get(m) == gm.ENABLED}
            cp, decisions = gm.on_verdicts(cp, group, verdicts, now)
        else:
            try:
                if what == "approve":
                    cp, d = approval.approve(cp, plan, now, "op", "r")
                elif what == "kill-on":
                    cp, d = machine.pause(cp, now, "op", "r", kill_switch=True)
                elif what == "kill-off":
                    if not cp.paused_by_kill_switch:
                        continue
                    cp, d = machine.resume(cp, plan, now, "op", "r")
                else:
                    cp, d = manual(cp, plan, what, stage, now)
            except IllegalTransition:
                assert cp == before
                continue
            cp = gm.settle(group, before, cp)  # as watchdog.control records it
            decisions = [d, *gm.member_decisions(group, before, cp, now, "op", ("r",))]
        for name in group.names:
            was, now_at = gm.flag(before, name), gm.flag(cp, name)
            if before.members.get(name) == gm.ROLLED_BACK:
                assert now_at == 0.0, name  # a member rolled back alone stays off
            if now_at > was:
                assert cp.members[name] == gm.ENABLED
                if kind == "verdict":
                    assert before.phase is Phase.PROGRESSING
                    assert not plan.stages[cp.stage].approval or \
                        before.approved_stage == cp.stage or before.stage == cp.stage
            if kind == "verdict" and before.phase in (Phase.PAUSED, Phase.ROLLED_BACK,
                                                      Phase.AWAITING_APPROVAL):
                assert now_at <= was
        for d in decisions:
            if d.module != group.name and d.traffic_percent > 0:
                assert cp.members[d.module] == gm.ENABLED
