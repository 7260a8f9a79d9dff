"""A module group's rollout (issue 20 item 1). Pure: no I/O; ``now`` is passed in.

The group has one checkpoint (its name is the module name in the journal) driven by the
ordinary state machine on the group's plan, with each member's state in it:

    waiting      not joined yet (its stage is ahead): flag off
    enabled      joined: flag on, at the group's percentage; its verdict counts
    rolled_back  switched off alone by its failures (policy ``member``); stays off

The group's verdict is the worst of its enabled members' verdicts, except that a critical
verdict of a member whose policy is ``member`` counts for the member alone: it holds the
group (as a warning) and, at the plan's consecutive failure limit, rolls back that member
only. A critical verdict of a ``group`` member is the group's: at the limits the whole
group rolls back (every flag off). Every change of a member's flag is a decision of its
own (module = the member), so actuators get each member's enabled flag and percentage;
the group's own decisions carry the group's percentage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from watchdog.groups.model import Group
from watchdog.judge.gates import GateResult
from watchdog.model import Action, Decision, RuleOutcome, RuleResult, Verdict, VerdictKind
from watchdog.rollout import machine
from watchdog.rollout.promotion import CheckResult
from watchdog.rollout.state import ACTIVE, Checkpoint, Phase

WAITING, ENABLED, ROLLED_BACK = "waiting", "enabled", "rolled_back"
ORDER = [VerdictKind.HEALTHY, VerdictKind.INCONCLUSIVE, VerdictKind.WARNING,
         VerdictKind.CRITICAL]


def start(group: Group, now: float, actor: str = "watchdog",
          reason: str = "rollout started") -> tuple[Checkpoint, list[Decision]]:
    cp, decision = machine.start(group.name, group.plan, now, actor, reason)
    cp = replace(cp, members=_joined(group, cp.traffic_percent, {}))
    return cp, [decision, *member_decisions(group, None, cp, now, actor, (reason,))]


def flag(cp: Checkpoint | None, member: str, kill_switch: bool = False) -> float:
    """The member's share of traffic on V2 as the group checkpoint says (0: flag off)."""
    if cp is None or kill_switch or cp.paused_by_kill_switch \
            or cp.phase in (Phase.ROLLED_BACK, Phase.ABORTED):
        return 0.0
    return cp.traffic_percent if cp.members.get(member) == ENABLED else 0.0


def on_verdicts(cp: Checkpoint, group: Group, verdicts: Mapping[str, Verdict], now: float,
                kill_switch: bool = False, max_gap: float | None = None,
                gates: Sequence[GateResult] = (), check: CheckResult | None = None,
                pre_approved: bool = False) -> tuple[Checkpoint, list[Decision]]:
    """One evaluation of the group: ``verdicts`` of its enabled members (gates, check and
    approval as for a module: rollout/promotion.py)."""
    before = cp
    if cp.phase not in ACTIVE:
        return machine.on_verdict(cp, _combined(group, {}, now, cp), group.plan, now)
    failures = dict(cp.member_failures)
    alone: list[str] = []
    for name, verdict in verdicts.items():
        if cp.members.get(name) != ENABLED or group.policy(name) != "member":
            continue
        failures[name] = failures.get(name, 0) + 1 \
            if verdict.kind is VerdictKind.CRITICAL else 0
        if failures[name] >= group.plan.failure_limits.consecutive:
            alone.append(name)
    members = {**cp.members, **dict.fromkeys(alone, ROLLED_BACK)}
    failures = {k: (0 if k in alone else v) for k, v in failures.items()}
    cp = replace(cp, members=members, member_failures=failures)
    judged = {k: v for k, v in verdicts.items() if members.get(k) == ENABLED}
    cp, decisions = machine.on_verdict(cp, _combined(group, judged, now, cp), group.plan,
                                       now, kill_switch=kill_switch, max_gap=max_gap,
                                       gates=gates, check=check, pre_approved=pre_approved)
    for name in alone:
        why = (f"{name} rolled back alone (group {group.name}'s policy for it: member): "
               f"{failures.get(name, 0) or group.plan.failure_limits.consecutive} "
               f"failure(s) in a row", *verdicts[name].reasons)
        decisions.append(Decision(group.name, now, Action.HOLD, cp.traffic_percent,
                                  cp.stage, cp.stage, why, _evidence(name, verdicts[name])))
    if cp.stage != before.stage and cp.phase in ACTIVE:
        cp = replace(cp, members=_joined(group, cp.traffic_percent, cp.members))
    return cp, decisions + member_decisions(group, before, cp, now, "watchdog",
                                            _why(decisions))


def settle(group: Group, before: Checkpoint, cp: Checkpoint) -> Checkpoint:
    """After a person's action on the group (set-stage, step-back, resume): the members
    joined at its stage now (a member rolled back alone stays off)."""
    if cp.stage == before.stage and cp.phase is before.phase:
        return cp
    return replace(cp, members=_joined(group, cp.traffic_percent, cp.members))


def with_members(group: Group | None, decision: Decision, before: Checkpoint | None,
                 after: Checkpoint) -> list[Decision]:
    """A unit's ``decision`` (``before`` -> ``after``), and for a module group one more per
    member whose flag it changes (same time, actor and reasons)."""
    if group is None:
        return [decision]
    return [decision, *member_decisions(group, before, after, decision.at, decision.actor,
                                        decision.reasons)]


def member_decisions(group: Group, before: Checkpoint | None, after: Checkpoint,
                     now: float, actor: str, reasons: tuple[str, ...]) -> list[Decision]:
    """A decision for each member whose flag or percentage changed (module = member)."""
    out = []
    for name in group.names:
        was = flag(before, name) if before is not None else 0.0
        now_at = flag(after, name, after.paused_by_kill_switch)
        if abs(now_at - was) < 1e-9 and before is not None:
            continue
        if before is None and now_at == 0.0:
            continue
        state = after.members.get(name, WAITING)
        if now_at > was:
            action = Action.PROMOTE if after.phase is Phase.PROMOTED else Action.ADVANCE
            what = (f"{name} joins group {group.name} at {now_at:g}%" if was == 0
                    else f"{name} follows group {group.name} to {now_at:g}%")
        elif now_at == 0.0:
            # what switched the flag off: a kill switch pauses (the state is kept), a step
            # back below the member's joins_at makes it wait, an abort aborts; a failure
            # (the member's or the group's) rolls back
            action = Action.PAUSE if after.paused_by_kill_switch else (
                Action.STEP_BACK if state == WAITING and after.phase in ACTIVE else (
                    Action.ABORT if after.phase is Phase.ABORTED else Action.ROLLBACK))
            what = (f"{name} switched off ({state}) in group {group.name}"
                    if after.phase in ACTIVE else
                    f"{name} switched off: group {group.name} is {after.phase.value}"
                    + (" (kill switch)" if after.paused_by_kill_switch else ""))
        else:
            action = Action.STEP_BACK
            what = f"{name} follows group {group.name} back to {now_at:g}%"
        out.append(Decision(name, now, action, now_at, after.stage, after.stage,
                            (what, *reasons[:3]), actor=actor,
                            kill_switch=after.paused_by_kill_switch))
    return out


def _joined(group: Group, traffic: float, members: Mapping[str, str]) -> dict[str, str]:
    """Members joined at ``traffic``: those whose stage has come, unless rolled back;
    those whose stage is ahead again (after a step back) wait."""
    out = {}
    for m in group.members:
        if members.get(m.module) == ROLLED_BACK:
            out[m.module] = ROLLED_BACK
        else:
            out[m.module] = ENABLED if group.joins_at(m) <= traffic + 1e-9 else WAITING
    return out


def _combined(group: Group, verdicts: Mapping[str, Verdict], now: float,
              cp: Checkpoint) -> Verdict:
    """The worst verdict of the members judged; a ``member`` member's critical is held
    as a warning (its own rollback is decided above)."""
    kind = VerdictKind.HEALTHY
    results: list[RuleResult] = []
    firing: list[str] = []
    reasons: list[str] = []
    for name, v in sorted(verdicts.items()):
        k = v.kind
        if k is VerdictKind.CRITICAL and group.policy(name) == "member":
            k = VerdictKind.WARNING
        kind = max(kind, k, key=ORDER.index)
        results += [replace(r, rule=f"{name}/{r.rule}") for r in v.results]
        firing += [f"{name}/{f}" for f in v.firing]
        if k is not VerdictKind.HEALTHY:
            reasons += [f"{name}: {r}" for r in v.reasons]
    return Verdict(group.name, now, kind, tuple(results), tuple(firing), tuple(reasons))


def _evidence(name: str, verdict: Verdict) -> tuple[dict[str, object], ...]:
    return tuple({"member": name, "rule": r.rule, "metric": r.metric, "breached": r.breached,
                  "summary": r.summary} for r in verdict.results
                 if r.outcome is RuleOutcome.BREACHED)


def _why(decisions: list[Decision]) -> tuple[str, ...]:
    return decisions[-1].reasons if decisions else ()
