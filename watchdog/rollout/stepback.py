"""Step back instead of all the way back (issue 20 item 2). Pure: ``now`` is passed in.

A plan's ``on_failure: {action: step_back}`` makes reaching the failure limits return the
module to the previous stage (``to``: a named stage) rather than to 0 %, at most
``max_step_backs`` times in a rollout; after that, and from the first stage, it rolls
back. A step back starts the lower stage afresh: its hold, its failure counts and its
alert states (a rule must breach for its ``for`` again at the lower traffic).

An operator may also move a rollout by hand: :func:`step_back` (one stage down) and
:func:`set_stage` (any stage; upward is an advance by that person). Both are journaled
with actor and reason and do not count toward ``max_step_backs``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from watchdog.config.schema import Plan
from watchdog.errors import IllegalTransition
from watchdog.model import Action, Decision
from watchdog.rollout.state import Checkpoint, Phase

MANUAL = frozenset({Phase.PROGRESSING, Phase.AWAITING_APPROVAL, Phase.PAUSED,
                    Phase.ROLLED_BACK})


def failure_target(cp: Checkpoint, plan: Plan) -> int | None:
    """The stage the failure policy steps back to now, or None: roll back to 0 %."""
    policy = plan.on_failure
    if policy.action != "step_back" or cp.step_backs >= policy.max_step_backs:
        return None
    named = None if policy.to is None else plan.index_of(policy.to)
    if named is not None and named < cp.stage:
        return named
    return cp.stage - 1 if cp.stage > 0 else None


def on_failure(cp: Checkpoint, plan: Plan, target: int, now: float,
               reasons: tuple[str, ...], evidence: tuple[dict[str, Any], ...]
               ) -> tuple[Checkpoint, Decision]:
    """The failure limits were reached and the policy steps back to ``target``."""
    left = plan.on_failure.max_step_backs - cp.step_backs - 1
    why = (*reasons, f"step back {cp.step_backs + 1} of {plan.on_failure.max_step_backs} "
                     f"(then a failure rolls back to 0%)" if left == 0 else
           f"step back {cp.step_backs + 1} of {plan.on_failure.max_step_backs}")
    cp, decision = _move(cp, plan, target, now, "watchdog", why, evidence)
    return replace(cp, step_backs=cp.step_backs + 1), decision


def step_back(cp: Checkpoint, plan: Plan, now: float, actor: str, reason: str
              ) -> tuple[Checkpoint, Decision]:
    """An operator moves the rollout one stage down (its phase stays)."""
    _require(cp, "step back", set(MANUAL - {Phase.ROLLED_BACK}))
    if cp.stage == 0:
        raise IllegalTransition(f"cannot step back module {cp.module!r}: it is at its first "
                                f"stage ({cp.traffic_percent:g}%); roll back to go to 0%")
    return _move(cp, plan, cp.stage - 1, now, actor, (reason,), ())


def set_stage(cp: Checkpoint, plan: Plan, traffic: float, now: float, actor: str,
              reason: str) -> tuple[Checkpoint, Decision]:
    """An operator puts the rollout at the stage of ``traffic`` percent. A rolled-back
    module progresses again from there; a paused one stays paused."""
    _require(cp, "set the stage of", set(MANUAL))
    index = plan.index_of(traffic)
    if index is None:
        stages = ", ".join(f"{s.traffic:g}" for s in plan.stages)
        raise IllegalTransition(f"{traffic:g}% is not a stage of module {cp.module!r}'s "
                                f"plan (stages: {stages})")
    if index == cp.stage and cp.phase is not Phase.ROLLED_BACK:
        raise IllegalTransition(f"module {cp.module!r} is at {traffic:g}% already")
    return _move(cp, plan, index, now, actor, (reason,), ())


def _move(cp: Checkpoint, plan: Plan, index: int, now: float, actor: str,
          reasons: tuple[str, ...], evidence: tuple[dict[str, Any], ...]
          ) -> tuple[Checkpoint, Decision]:
    traffic = plan.stages[index].traffic
    up = index > cp.stage and cp.phase is not Phase.ROLLED_BACK
    action = Action.ADVANCE if up or cp.phase is Phase.ROLLED_BACK else Action.STEP_BACK
    where = f"stage {index + 1} of {len(plan.stages)} at {traffic:g}%"
    decision = Decision(cp.module, now, action, traffic, cp.stage, index,
                        (*reasons[:-1], f"{reasons[-1]}: to {where}"), evidence, actor=actor)
    phase = Phase.PAUSED if cp.phase is Phase.PAUSED else Phase.PROGRESSING
    cp = replace(cp, phase=phase, stage=index, traffic_percent=traffic, stage_started_at=now,
                 healthy_since=now, healthy_banked=0.0, consecutive_failures=0,
                 cumulative_failures=0, inconclusive_since=None, inconclusive_alerted=False,
                 alerts={}, last_action=action, last_decision_at=now, hold_key="",
                 step_backs=0 if cp.phase is Phase.ROLLED_BACK else cp.step_backs,
                 approved_stage=None, waiting_since=None)
    return cp, decision


def _require(cp: Checkpoint, what: str, allowed: set[Phase]) -> None:
    if cp.phase not in allowed:
        names = ", ".join(sorted(p.value for p in allowed))
        raise IllegalTransition(f"cannot {what} module {cp.module!r}: it is "
                                f"{cp.phase.value}; allowed only when {names}")
