"""What ``status``, ``/status`` and the web view show of each module (and module group),
read from the journal and the rules (split out of :mod:`watchdog.control`, which acts)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from watchdog.config.loader import RuleSet
from watchdog.config.schema import Plan
from watchdog.errors import JournalError
from watchdog.groups import machine as group_machine
from watchdog.journal import base
from watchdog.rollout import approval
from watchdog.rollout.state import Checkpoint, Phase


def status(journal: base.Journal, rules: RuleSet, modules: Sequence[str], now: float
           ) -> list[dict[str, Any]]:
    """Per module: phase, stage, traffic, last verdict, last decision and why, baselines."""
    kill = bool(journal.setting("kill_switch", False))
    names = sorted({*modules, *configured_groups(rules, modules),
                    *(c.module for c in journal.checkpoints())})
    pending = {jd.id for jd in journal.decisions(unapplied_only=True)}
    try:
        leases = {lease.module: lease for lease in journal.leases()}
    except JournalError:  # a read-only look at a journal older than the lease table
        leases = {}
    wall = time.time()  # leases run on the hosts' clocks (``now`` may be a replay's)
    owners = _running_groups(journal, rules)
    out = []
    for name in names:
        cp = journal.checkpoint(name)
        last = journal.last_decision(name)
        plan = plan_of(rules, name)
        active = journal.active_baselines(name, now)
        oldest = min((b.captured_at for b in active.values()), default=None)
        row = {
            "module": name, "phase": cp.phase.value if cp else "not started",
            "stage": cp.stage + 1 if cp else None,
            # a module group: each member's state (waiting, enabled, rolled_back)
            "members": dict(cp.members) if cp and cp.members else None,
            "stages": len(plan.stages) if plan is not None else None,
            "approval_needed": approval_needed(cp, plan),
            "traffic_percent": cp.traffic_percent if cp else 0.0, "kill_switch": kill,
            "last_verdict": journal.setting(f"verdict:{name}"),
            "source": journal.setting(f"source:{name}"),  # watchdog.sourcestate
            "firing": sorted(r for r, s in (cp.alerts if cp else {}).items()
                             if s.phase.value == "firing"),
            "last_decision": None if last is None else {
                **last.to_dict(), "pending": last.id in pending},
            "pending_decisions": sum(1 for jd in journal.decisions(module=name,
                                                                   unapplied_only=True)),
            "baselines": len(active),
            "baseline_age_s": None if oldest is None else max(0.0, now - oldest),
            "updated_at": journal.checkpoint_updated_at(name),
            "guard": None if name not in leases else {  # watchdog.daemon.leases
                "instance": leases[name].holder or None, "epoch": leases[name].epoch,
                "live": leases[name].held(wall)}}
        if cp is None and name in owners:
            # a member of a running group has no rollout of its own: its phase is the
            # group's (rolled_back where it was switched off alone), its traffic its flag
            group, gcp = owners[name]
            state = gcp.members.get(name, group_machine.WAITING)
            row.update(group=group, member=state, stage=gcp.stage + 1,
                       stages=len(rules.groups[group].plan.stages),
                       phase=Phase.ROLLED_BACK.value if state == group_machine.ROLLED_BACK
                       else gcp.phase.value, traffic_percent=group_machine.flag(gcp, name))
        out.append(row)
    return out


def _running_groups(journal: base.Journal, rules: RuleSet
                    ) -> dict[str, tuple[str, Checkpoint]]:
    """Each member of a group that has a rollout: (the group, its checkpoint)."""
    found: dict[str, tuple[str, Checkpoint]] = {}
    for name, group in rules.groups.items():
        gcp = journal.checkpoint(name)
        if gcp is not None:
            found.update({m: (name, gcp) for m in group.names})
    return found


def configured_groups(rules: RuleSet, modules: Sequence[str]) -> list[str]:
    """The groups a daemon configured with ``modules`` runs: those whose members are all
    among them (daemon/groupjobs.py), so they can be started and shown before they run."""
    configured = set(modules)
    return [name for name, g in rules.groups.items() if configured.issuperset(g.names)]


def _known(rules: RuleSet, name: str) -> bool:
    return name in rules.modules or "*" in rules.modules


def plan_of(rules: RuleSet, name: str) -> Plan | None:
    """The plan of module (or module group) ``name``; None when the rules do not know it."""
    if name in rules.groups:
        plan: Plan = rules.groups[name].plan
        return plan
    return rules.for_module(name).plan if _known(rules, name) else None


def approval_needed(cp: Checkpoint | None, plan: Plan | None) -> bool:
    """The next stage needs a person's approval, not given yet, and approving is possible
    now (also ahead of the wait, while progressing or paused)."""
    if cp is None or plan is None or cp.phase not in approval.APPROVABLE:
        return False
    nxt = cp.stage + 1
    return nxt < len(plan.stages) and approval.needs_approval(cp, plan, nxt)
