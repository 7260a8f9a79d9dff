"""Journal records turned into the API's bodies (pure functions of what was read)."""

from __future__ import annotations

import time
from typing import Any

from watchdog.api.context import ApiContext
from watchdog.api.models import (
    BaselineView,
    DecisionRow,
    DecisionView,
    ModuleStatus,
    VerdictView,
)
from watchdog.journal.base import Journal, JournaledDecision
from watchdog.judge.alerts import AlertPhase
from watchdog.model import Action, VerdictKind, Version
from watchdog.rollout.state import Checkpoint, Phase
from watchdog.sourcestate import SOURCE_KEY, source_note
from watchdog.statusrows import approval_needed, plan_of

VERDICT_KEY = "verdict:{module}"
"""Where the daemon keeps each module's last verdict (watchdog.daemon.ticks)."""

_VERBS = {Action.ADVANCE: "advanced to {t:g}%", Action.HOLD: "held at {t:g}%",
          Action.ROLLBACK: "rolled back to 0%", Action.PROMOTE: "promoted to 100%",
          Action.PAUSE: "paused at {t:g}%", Action.RESUME: "resumed at {t:g}%",
          Action.ABORT: "aborted (0%)", Action.STEP_BACK: "stepped back to {t:g}%",
          Action.APPROVE: "approved the next step (at {t:g}% now)"}


def traffic(cp: Checkpoint | None, kill_switch: bool) -> float:
    """Percent of the module's traffic on V2 as the journal has it."""
    if cp is None or kill_switch or cp.paused_by_kill_switch:
        return 0.0
    return cp.traffic_percent


def version(cp: Checkpoint | None, kill_switch: bool) -> Version:
    return Version.V2 if traffic(cp, kill_switch) > 0 else Version.V1


def decision_view(jd: JournaledDecision) -> DecisionView:
    d = jd.decision
    return DecisionView(id=jd.id, time=d.at, action=d.action, actor=d.actor,
                        traffic_percent=d.traffic_percent, reasons=list(d.reasons),
                        applied=jd.applied_at is not None)


def decision_row(jd: JournaledDecision, with_evidence: bool = False) -> DecisionRow:
    d = jd.decision
    verb = _VERBS[d.action].format(t=d.traffic_percent)
    by = "" if d.actor == "watchdog" else f" by {d.actor}"
    return DecisionRow(
        id=jd.id, time=d.at, timeEnd=d.at, title=f"{d.module} {verb}{by}",
        text="; ".join(d.reasons), tags=f"rollout-watchdog,{d.module},{d.action.value}",
        module=d.module, action=d.action, actor=d.actor, traffic_percent=d.traffic_percent,
        from_stage=None if d.from_stage is None else d.from_stage + 1,
        to_stage=None if d.to_stage is None else d.to_stage + 1,
        kill_switch=d.kill_switch, applied=jd.applied_at is not None,
        applied_at=jd.applied_at, apply_error=jd.apply_error, reasons=list(d.reasons),
        evidence=[dict(e) for e in d.evidence] if with_evidence else None)


def last_verdict(ctx: ApiContext, journal: Journal, module: str) -> VerdictView | None:
    stored: Any = journal.setting(VERDICT_KEY.format(module=module))
    source: Any = journal.setting(SOURCE_KEY.format(module=module))
    if isinstance(stored, dict) and stored.get("kind") in set(VerdictKind):
        reasons = [str(x) for x in stored.get("reasons") or []]
        note = source_note(source)  # the source down: said instead of "0 samples"
        if note is not None:
            reasons = [note] if source.get("state") == "down" else [note, *reasons]
        return VerdictView(kind=VerdictKind(stored["kind"]), since=_num(stored.get("since")),
                           firing=[str(x) for x in stored.get("firing") or []],
                           reasons=reasons)
    seen = ctx.telemetry.last_verdict(module) if ctx.telemetry is not None else None
    if seen is None:
        return None
    return VerdictView(kind=seen.kind, since=None, firing=list(seen.firing),
                       reasons=list(seen.reasons))


def module_status(ctx: ApiContext, journal: Journal, module: str, now: float,
                  kill_switch: bool) -> ModuleStatus:
    cp = journal.checkpoint(module)
    updated = journal.checkpoint_updated_at(module)
    last = journal.last_decision(module)
    baselines = {
        metric: BaselineView(age_seconds=max(0.0, now - b.captured_at),
                             captured_at=b.captured_at, count=b.count, pinned=b.pinned,
                             source=b.source)
        for metric, b in sorted(journal.active_baselines(module, now).items())}
    oldest = max((b.age_seconds for b in baselines.values()), default=None)
    alerts = {} if cp is None else {
        rule: s.phase.value for rule, s in sorted(cp.alerts.items())
        if s.phase is not AlertPhase.INACTIVE}
    phase: Phase | str = "not_started" if cp is None else cp.phase
    return ModuleStatus.model_validate({
        "module": module, "phase": phase, "stage": None if cp is None else cp.stage + 1,
        "traffic_percent": traffic(cp, kill_switch), "version": version(cp, kill_switch),
        "paused_by_kill_switch": cp is not None and cp.paused_by_kill_switch,
        "started_at": None if cp is None else cp.started_at,
        "stage_started_at": None if cp is None else cp.stage_started_at,
        "last_tick_at": None if cp is None else cp.last_tick_at,
        "checkpoint_age_seconds": None if updated is None else max(0.0, now - updated),
        "consecutive_failures": 0 if cp is None else cp.consecutive_failures,
        "cumulative_failures": 0 if cp is None else cp.cumulative_failures,
        "alerts": alerts, "last_verdict": last_verdict(ctx, journal, module),
        "last_decision": None if last is None else decision_view(last),
        "baselines": baselines, "baseline_age_seconds": oldest,
        "guard": guard_view(journal, module),
        "members": dict(cp.members) if cp is not None and cp.members else None,
        "approval_needed": approval_needed(cp, plan_of(ctx.rules, module))})


def guard_view(journal: Journal, module: str) -> dict[str, object] | None:
    """Who guards ``module``: its lease's holder ("" released) and fencing epoch, and
    whether the lease is live by this host's clock (watchdog.daemon.leases)."""
    lease = next((lease for lease in journal.leases() if lease.module == module), None)
    if lease is None:
        return None
    return {"instance": lease.holder or None, "epoch": lease.epoch,
            "expires_at": lease.expires_at, "live": lease.held(time.time())}


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
