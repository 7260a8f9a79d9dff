"""What must hold before a step to the next stage, besides a healthy hold (issue 20):
promotion gates (items 4), and approvals and checks (item 5). Pure: results are passed in.

:func:`blocker` says why the step cannot be taken now (a hold, or a rollback when a gate
with ``on_fail: rollback`` has failed), or None. A gate whose result was not passed in
counts as pending: a caller that forgets to evaluate gates never skips them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watchdog.config.schema import Plan
from watchdog.judge.gates import GateResult
from watchdog.rollout import approval
from watchdog.rollout.state import Checkpoint


@dataclass(frozen=True)
class Blocker:
    key: str  # the hold's cause: journaled again only when it changes
    reasons: tuple[str, ...]
    evidence: tuple[dict[str, Any], ...]
    rollback: bool = False
    checkpoint: Checkpoint | None = None  # the state to hold in (awaiting approval)


@dataclass(frozen=True)
class CheckResult:
    """The latest run of a stage's check (watchdog/checks.py runs it)."""

    state: str  # passed | failed | running
    summary: str


def gate_results(plan: Plan, nxt: int, results: Sequence[GateResult]
                 ) -> list[GateResult]:
    """The results of the gates before stage ``nxt``; a missing one is pending."""
    by_name = {r.gate: r for r in results}
    out = []
    for gate in plan.gates_before(nxt):
        found = by_name.get(gate.name)
        out.append(found if found is not None else GateResult(
            gate.name, gate.metric, gate.before, "pending",
            f"gate {gate.name}: not evaluated yet"))
    return out


def blocker(cp: Checkpoint, plan: Plan, nxt: int, results: Sequence[GateResult],
            check: CheckResult | None = None, pre_approved: bool = False,
            now: float = 0.0) -> Blocker | None:
    """Gates first, then the stage's check, then a person's approval: a person is asked
    only once everything automatic has passed."""
    gates = gate_results(plan, nxt, results)
    unmet = [g for g in gates if not g.met]
    if not unmet:
        return _check_or_approval(cp, plan, nxt, check, pre_approved, now)
    evidence = tuple(g.as_evidence() for g in gates)
    traffic = plan.stages[nxt].traffic
    rollback_on = {g.name for g in plan.gates_before(nxt) if g.on_fail == "rollback"}
    failed = [g for g in unmet if g.state == "failed" and g.gate in rollback_on]
    if failed:
        return Blocker("", (*(g.summary for g in failed),
                            f"promotion gate failed before {traffic:g}% (on_fail: rollback)"),
                       evidence, rollback=True)
    key = "gate:" + ",".join(f"{g.gate}={g.state}" for g in unmet)
    return Blocker(key, (f"holding at {cp.traffic_percent:g}%: promotion gate(s) before "
                         f"{traffic:g}% not met", *(g.summary for g in unmet)), evidence)


def passed(plan: Plan, nxt: int, results: Sequence[GateResult]
           ) -> tuple[dict[str, Any], ...]:
    """The evidence of the gates met, for the advance decision."""
    return tuple(g.as_evidence() for g in gate_results(plan, nxt, results))


def _check_or_approval(cp: Checkpoint, plan: Plan, nxt: int, check: CheckResult | None,
                       pre_approved: bool, now: float) -> Blocker | None:
    stage = plan.stages[nxt]
    traffic = stage.traffic
    if stage.check is not None and (check is None or check.state != "passed"):
        state = "running" if check is None else check.state
        said = "not run yet" if check is None else check.summary
        return Blocker(f"check:{nxt}:{state}",
                       (f"holding at {cp.traffic_percent:g}%: the check before {traffic:g}% "
                        f"has not passed ({state})", said),
                       ({"check": nxt, "state": state, "summary": said},))
    if pre_approved or not approval.needs_approval(cp, plan, nxt):
        return None
    waiting, key, reasons = approval.waiting(cp, plan, nxt, now)
    return Blocker(key, reasons, (), checkpoint=waiting)
