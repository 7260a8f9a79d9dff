"""Transitions of a module's rollout. Pure: no I/O, no clock; ``now`` is passed in.

    progressing --critical (failure limits reached)--> rolled_back (paused until resumed)
                                    (or a lower stage, by the plan's on_failure: stepback.py)
    progressing --healthy for the stage's hold--> next stage ... --> promoted
    (the hold counts healthy time at the stage: a warning, a failure or the kill switch
    starts it again; missing data only stops the clock while it lasts, and so does time
    in which no evaluation ran: the daemon down, ticks missed; see ``max_gap``)
    progressing <--pause / resume--> paused
    any non-terminal --abort--> aborted;  progressing/paused --promote--> promoted

Every transition returns the new checkpoint and the decisions to journal (before acting).
Illegal transitions raise :class:`IllegalTransition` naming the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from watchdog.config.schema import Plan
from watchdog.errors import IllegalTransition
from watchdog.judge.gates import GateResult
from watchdog.model import Action, Decision, Verdict, VerdictKind
from watchdog.rollout import promotion, stepback
from watchdog.rollout.promotion import CheckResult
from watchdog.rollout.state import ACTIVE, TERMINAL, Checkpoint, Phase

EPS = 1e-6
GAP_INTERVALS = 2.0  # evaluations further apart than this many intervals (+ slack) ...
GAP_SLACK = 1.0      # ... are a gap: the time between them does not count toward a hold


def gap_limit(interval: float) -> float:
    """The longest time between two evaluations that still counts toward a hold."""
    return GAP_INTERVALS * interval + GAP_SLACK


def start(module: str, plan: Plan, now: float, actor: str = "watchdog",
          reason: str = "rollout started") -> tuple[Checkpoint, Decision]:
    traffic = plan.stages[0].traffic
    cp = Checkpoint(module=module, phase=Phase.PROGRESSING, stage=0, traffic_percent=traffic,
                    started_at=now, stage_started_at=now, healthy_since=now)
    decision = Decision(module, now, Action.ADVANCE, traffic, None, 0,
                        (f"{reason}: stage 1 of {len(plan.stages)} at {traffic:g}%",),
                        actor=actor)
    return _record(cp, decision), decision


def on_verdict(cp: Checkpoint, verdict: Verdict, plan: Plan, now: float,
               kill_switch: bool = False, max_gap: float | None = None,
               gates: Sequence[GateResult] = (), check: CheckResult | None = None,
               pre_approved: bool = False) -> tuple[Checkpoint, list[Decision]]:
    """One evaluation's effect on a progressing module; other phases ignore verdicts.

    ``max_gap``: when more than that has passed since the last evaluation (or since the
    healthy run began, if later: the stage's start, a resume), no evaluation saw the time
    in between, so it does not count: the healthy run is banked up to the last evaluation
    and starts again now. None (callers that pass nothing) counts any gap, as before.

    ``gates``: the results of the promotion gates before the next stage
    (judge/gates.py); a step is taken only when each of them is met (rollout/promotion.py),
    the next stage's ``check`` has passed and, where it needs one, a person approved it
    (``pre_approved``: a backtest's ``--approve``). Waiting for the approval is the phase
    ``awaiting_approval``, judged like progressing.
    """
    previous_tick = cp.last_tick_at
    cp = replace(cp, last_tick_at=now)
    if cp.phase not in ACTIVE:
        return cp, []
    if max_gap is not None and cp.healthy_since is not None:
        seen = max(cp.healthy_since, previous_tick if previous_tick is not None
                   else cp.healthy_since)
        if now - seen > max_gap:
            cp = replace(cp, healthy_since=None,
                         healthy_banked=cp.healthy_banked + (seen - cp.healthy_since))
    if kill_switch or verdict.kind in (VerdictKind.WARNING, VerdictKind.CRITICAL):
        cp = replace(cp, healthy_since=None, healthy_banked=0.0)
    elif verdict.kind is VerdictKind.INCONCLUSIVE and cp.healthy_since is not None:
        # bank the healthy run up to the last healthy tick; the gap itself does not count
        end = previous_tick if previous_tick is not None else cp.healthy_since
        cp = replace(cp, healthy_since=None,
                     healthy_banked=cp.healthy_banked + max(0.0, end - cp.healthy_since))
    if kill_switch:
        return _hold(cp, now, "kill", ("kill switch is on: V1 everywhere",), ())
    evidence = _evidence(verdict)
    if verdict.kind is VerdictKind.CRITICAL:
        cp = replace(cp, consecutive_failures=cp.consecutive_failures + 1,
                     cumulative_failures=cp.cumulative_failures + 1, inconclusive_since=None,
                     inconclusive_alerted=False)
        limits = plan.failure_limits
        if (cp.consecutive_failures >= limits.consecutive
                or cp.cumulative_failures >= limits.cumulative):
            tally = (f"failures: {cp.consecutive_failures} in a row "
                     f"(limit {limits.consecutive}), {cp.cumulative_failures} in all "
                     f"(limit {limits.cumulative})")
            target = stepback.failure_target(cp, plan)
            if target is not None:
                cp, step = stepback.on_failure(cp, plan, target, now,
                                               (*verdict.reasons, tally), evidence)
                return cp, [step]
            return _rollback(cp, now, (*verdict.reasons, tally), evidence, "watchdog")
        return _hold(cp, now, "critical:" + ",".join(verdict.firing),
                     (*verdict.reasons, f"failure {cp.consecutive_failures} of "
                                        f"{limits.consecutive} before rollback"), evidence)
    if verdict.kind is VerdictKind.WARNING:
        cp = replace(cp, inconclusive_since=None, inconclusive_alerted=False)
        return _hold(cp, now, "warning:" + ",".join(verdict.firing), verdict.reasons, evidence)
    if verdict.kind is VerdictKind.INCONCLUSIVE:
        since = cp.inconclusive_since if cp.inconclusive_since is not None else now
        cp = replace(cp, inconclusive_since=since)
        key = "inconclusive:" + ",".join(sorted(r.split(":")[0] for r in verdict.reasons))
        if now - since >= plan.max_inconclusive and not cp.inconclusive_alerted:
            cp = replace(cp, inconclusive_alerted=True, hold_key="")
            reasons = (f"evidence has been insufficient for {now - since:g}s "
                       f"(limit {plan.max_inconclusive:g}s)", *verdict.reasons)
            cp, alert = _hold(cp, now, "inconclusive-alert", reasons, evidence)
            # the alert is this cause's hold: the next tick with the same cause is not new
            return replace(cp, hold_key=key), alert
        return _hold(cp, now, key, verdict.reasons, evidence)
    since = cp.healthy_since if cp.healthy_since is not None else now
    prior_key = cp.hold_key
    cp = replace(cp, consecutive_failures=0, inconclusive_since=None,
                 inconclusive_alerted=False, hold_key="", healthy_since=since)
    held = cp.healthy_banked + now - since
    need = plan.hold_of(cp.stage)
    if held + EPS < need:
        return cp, []
    reason = f"healthy for {held:g}s at {cp.traffic_percent:g}% (hold {need:g}s)"
    if cp.stage + 1 >= len(plan.stages):
        return _promote(cp, now, (reason,), evidence, "watchdog")
    nxt = cp.stage + 1
    block = promotion.blocker(cp, plan, nxt, gates, check, pre_approved, now)
    if block is not None:  # a gate, check or approval still due: hold (journaled once)
        cp = replace(block.checkpoint or cp, hold_key=prior_key)
        if block.rollback:
            return _rollback(cp, now, block.reasons, (*evidence, *block.evidence),
                             "watchdog")
        return _hold(cp, now, block.key, (reason, *block.reasons),
                     (*evidence, *block.evidence))
    evidence = (*evidence, *promotion.passed(plan, nxt, gates))
    traffic = plan.stages[nxt].traffic
    decision = Decision(cp.module, now, Action.ADVANCE, traffic, cp.stage, nxt,
                        (f"{reason}: advance to stage {nxt + 1} of {len(plan.stages)} "
                         f"at {traffic:g}%",), evidence)
    cp = replace(cp, phase=Phase.PROGRESSING, stage=nxt, traffic_percent=traffic,
                 stage_started_at=now, healthy_since=now, healthy_banked=0.0,
                 approved_stage=None, waiting_since=None)
    return _record(cp, decision), [decision]


def pause(cp: Checkpoint, now: float, actor: str, reason: str,
          kill_switch: bool = False) -> tuple[Checkpoint, Decision]:
    _require(cp, "pause", set(ACTIVE))
    decision = Decision(cp.module, now, Action.PAUSE, 0.0 if kill_switch else cp.traffic_percent,
                        cp.stage, cp.stage, (reason,), actor=actor, kill_switch=kill_switch)
    cp = replace(cp, phase=Phase.PAUSED, paused_by_kill_switch=kill_switch)
    return _record(cp, decision), decision


def resume(cp: Checkpoint, plan: Plan, now: float, actor: str,
           reason: str) -> tuple[Checkpoint, Decision]:
    """Paused: carry on at the same stage (its hold starts again). Rolled back: stage 1."""
    _require(cp, "resume", {Phase.PAUSED, Phase.ROLLED_BACK})
    stage = 0 if cp.phase is Phase.ROLLED_BACK else cp.stage
    # a new attempt after a full rollback has its step-backs again
    step_backs = 0 if cp.phase is Phase.ROLLED_BACK else cp.step_backs
    traffic = plan.stages[stage].traffic
    decision = Decision(cp.module, now, Action.RESUME, traffic, cp.stage, stage, (reason,),
                        actor=actor)
    cp = replace(cp, phase=Phase.PROGRESSING, stage=stage, traffic_percent=traffic,
                 stage_started_at=now, healthy_since=now, healthy_banked=0.0,
                 consecutive_failures=0,
                 inconclusive_since=None,
                 inconclusive_alerted=False, paused_by_kill_switch=False, alerts={},
                 step_backs=step_backs, waiting_since=None,
                 approved_stage=None if cp.phase is Phase.ROLLED_BACK else cp.approved_stage)
    return _record(cp, decision), decision


def promote(cp: Checkpoint, plan: Plan, now: float, actor: str,
            reason: str) -> tuple[Checkpoint, Decision]:
    _require(cp, "promote", {*ACTIVE, Phase.PAUSED})
    cp, decisions = _promote(cp, now, (reason,), (), actor)
    return cp, decisions[0]


def rollback(cp: Checkpoint, now: float, actor: str, reason: str,
             evidence: tuple[dict[str, Any], ...] = ()) -> tuple[Checkpoint, Decision]:
    _require(cp, "roll back", {*ACTIVE, Phase.PAUSED})
    cp, decisions = _rollback(cp, now, (reason,), evidence, actor)
    return cp, decisions[0]


def abort(cp: Checkpoint, now: float, actor: str, reason: str) -> tuple[Checkpoint, Decision]:
    _require(cp, "abort", {*ACTIVE, Phase.PAUSED, Phase.ROLLED_BACK})
    decision = Decision(cp.module, now, Action.ABORT, 0.0, cp.stage, None, (reason,),
                        actor=actor)
    cp = replace(cp, phase=Phase.ABORTED, traffic_percent=0.0)
    return _record(cp, decision), decision


def _require(cp: Checkpoint, what: str, allowed: set[Phase]) -> None:
    if cp.phase not in allowed:
        names = ", ".join(sorted(p.value for p in allowed))
        terminal = " (a terminal state)" if cp.phase in TERMINAL else ""
        raise IllegalTransition(f"cannot {what} module {cp.module!r}: it is {cp.phase.value}"
                                f"{terminal}; {what} is allowed only when {names}")


def _rollback(cp: Checkpoint, now: float, reasons: tuple[str, ...],
              evidence: tuple[dict[str, Any], ...], actor: str
              ) -> tuple[Checkpoint, list[Decision]]:
    decision = Decision(cp.module, now, Action.ROLLBACK, 0.0, cp.stage, None, reasons,
                        evidence, actor=actor)
    cp = replace(cp, phase=Phase.ROLLED_BACK, traffic_percent=0.0)
    return _record(cp, decision), [decision]


def _promote(cp: Checkpoint, now: float, reasons: tuple[str, ...],
             evidence: tuple[dict[str, Any], ...], actor: str
             ) -> tuple[Checkpoint, list[Decision]]:
    decision = Decision(cp.module, now, Action.PROMOTE, 100.0, cp.stage, None, reasons,
                        evidence, actor=actor)
    cp = replace(cp, phase=Phase.PROMOTED, traffic_percent=100.0)
    return _record(cp, decision), [decision]


def _hold(cp: Checkpoint, now: float, key: str, reasons: tuple[str, ...],
          evidence: tuple[dict[str, Any], ...]) -> tuple[Checkpoint, list[Decision]]:
    """A hold is journaled when its cause changes, not on every tick it persists."""
    if key == cp.hold_key and cp.last_action is Action.HOLD:
        return cp, []
    decision = Decision(cp.module, now, Action.HOLD, cp.traffic_percent, cp.stage, cp.stage,
                        reasons, evidence)
    cp = replace(cp, hold_key=key)
    return _record(cp, decision), [decision]


def _record(cp: Checkpoint, decision: Decision) -> Checkpoint:
    key = cp.hold_key if decision.action is Action.HOLD else ""
    return replace(cp, last_action=decision.action, last_decision_at=decision.at, hold_key=key)


def _evidence(verdict: Verdict) -> tuple[dict[str, Any], ...]:
    # ``outcome`` (RuleOutcome) says what ``breached`` alone cannot: clear, warming,
    # unconfirmed, disputed, missing, inapplicable
    return tuple({"rule": r.rule, "metric": r.metric, "breached": r.breached,
                  "outcome": r.outcome.value, "summary": r.summary, **r.evidence}
                 for r in verdict.results)
