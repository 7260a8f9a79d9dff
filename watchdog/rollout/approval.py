"""Approvals before a step (issue 20 item 5). Pure: ``now`` is passed in.

A stage with ``approval: true`` is stepped to only after a person approved it (CLI
``approve``, ``POST /api/modules/{m}/approve``, the web view's button). When the rollout is
otherwise ready for it (healthy for the hold, gates met, checks passed) it waits in phase
``awaiting_approval``: still judged, so a failure still rolls it back, but never advanced.
The wait is journaled as a hold when it begins and again every ``approval_reminder``
(the reminder that reaches Slack through the notification queue), not on every tick.
An approval may also be given ahead, while the rollout is progressing toward that stage;
it is used by the step it approves (and dropped by any other change of stage).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from watchdog.config.schema import Plan
from watchdog.errors import IllegalTransition
from watchdog.model import Action, Decision
from watchdog.rollout.state import Checkpoint, Phase

APPROVAL_WAIT = "waiting for a person's approval"  # how a wait's reason begins (or follows
# "reminder N: "): the notifiers tell an approval wait from another hold by it


def is_approval_wait(action: str, reasons: Iterable[str]) -> bool:
    """A hold journaled because the rollout waits for a person's approval (the daemon's
    notification links to the Approve button, Slack says who must act)."""
    return action == Action.HOLD.value and any(APPROVAL_WAIT in r for r in reasons)


APPROVABLE = frozenset({Phase.PROGRESSING, Phase.AWAITING_APPROVAL, Phase.PAUSED})


def needs_approval(cp: Checkpoint, plan: Plan, nxt: int) -> bool:
    return plan.stages[nxt].approval and cp.approved_stage != nxt


def waiting(cp: Checkpoint, plan: Plan, nxt: int, now: float
            ) -> tuple[Checkpoint, str, tuple[str, ...]]:
    """The checkpoint waiting for the approval of stage ``nxt``, its hold key (new at
    each reminder) and reasons."""
    since = cp.waiting_since if cp.waiting_since is not None else now
    every = plan.approval_reminder
    reminder = int((now - since) // every)
    traffic = plan.stages[nxt].traffic
    ask = (f"{APPROVAL_WAIT} to advance to stage {nxt + 1} of "
           f"{len(plan.stages)} at {traffic:g}% (rollout-watchdog approve {cp.module}, "
           f"or the web view)")
    reasons = (ask,) if reminder == 0 else (
        f"reminder {reminder}: {ask}; waiting for {now - since:g}s", )
    cp = replace(cp, phase=Phase.AWAITING_APPROVAL, waiting_since=since)
    return cp, f"approval:{nxt}:{reminder}", reasons


def approve(cp: Checkpoint, plan: Plan, now: float, actor: str, reason: str
            ) -> tuple[Checkpoint, Decision]:
    """A person approves the step to the next stage; the next healthy evaluation takes
    it (the hold, gates and checks still apply)."""
    if cp.phase not in APPROVABLE:
        names = ", ".join(sorted(p.value for p in APPROVABLE))
        raise IllegalTransition(f"cannot approve module {cp.module!r}: it is "
                                f"{cp.phase.value}; approve is allowed only when {names}")
    nxt = cp.stage + 1
    if nxt >= len(plan.stages) or not plan.stages[nxt].approval:
        what = "no next stage" if nxt >= len(plan.stages) else (
            f"stage {nxt + 1} ({plan.stages[nxt].traffic:g}%) needs no approval")
        raise IllegalTransition(f"nothing to approve for module {cp.module!r}: {what}")
    if cp.approved_stage == nxt:
        raise IllegalTransition(f"module {cp.module!r}: stage {nxt + 1} is approved already")
    traffic = plan.stages[nxt].traffic
    decision = Decision(cp.module, now, Action.APPROVE, cp.traffic_percent, cp.stage, nxt,
                        (f"{reason}: approved the step to stage {nxt + 1} of "
                         f"{len(plan.stages)} at {traffic:g}%",), actor=actor)
    phase = Phase.PROGRESSING if cp.phase is Phase.AWAITING_APPROVAL else cp.phase
    cp = replace(cp, phase=phase, approved_stage=nxt, waiting_since=None,
                 last_action=Action.APPROVE, last_decision_at=now, hold_key="")
    return cp, decision
