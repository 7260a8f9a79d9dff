"""Module groups in the daemon (issue 20 item 1): a group of the rules whose members are
all configured modules runs as one job, under one lease (the group's name), through
:class:`~watchdog.groups.engine.GroupEngine`; its members are not ticked on their own.

A job is a *unit*: a configured module outside every group, or such a group. The
group's decisions and each member's flag decisions go through the same journal and
outbox as a module's, so actuators receive each member's flag at the group's percentage
(or 0) and the group's own percentage under the group's name. Each judged member's
rule alerts (kept in the group's checkpoint as ``<member>/<rule>``) are notified as that
member's, naming the group (:func:`member_alert_notifications`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace

from watchdog.config.loader import RuleSet
from watchdog.daemon import ticks
from watchdog.daemon.alerting import alert_notifications
from watchdog.daemon.config import Loaded
from watchdog.engine import Engine, TickResult
from watchdog.groups.engine import GroupEngine
from watchdog.groups.machine import ENABLED
from watchdog.groups.model import Group
from watchdog.judge.alerts import AlertState
from watchdog.model import Verdict, VerdictKind
from watchdog.notifiers import Notification
from watchdog.rollout.state import Checkpoint
from watchdog.statusrows import configured_groups

log = logging.getLogger(__name__)


def daemon_groups(rules: RuleSet, modules: Sequence[str]) -> dict[str, Group]:
    """The groups of the rules whose members are all configured modules. A group with only
    some of them configured is not run (its members run alone); that is logged."""
    out = {name: rules.groups[name] for name in configured_groups(rules, modules)}
    configured = set(modules)
    for name, group in rules.groups.items():
        inside = [m for m in group.names if m in configured]
        if inside and name not in out:
            log.warning("group %s: not run as a group, only %s of its members (%s) are "
                        "configured modules; they are ticked on their own", name,
                        len(inside), ", ".join(group.names))
    return out


def units(modules: Sequence[str], groups: Mapping[str, Group]) -> list[str]:
    """What the scheduler runs and the guard leases: modules outside the groups, then
    the groups."""
    members = {m for g in groups.values() for m in g.names}
    return [m for m in modules if m not in members] + list(groups)


def owner(groups: Mapping[str, Group], module: str) -> str:
    """The unit whose lease covers ``module``'s decisions (a member's: its group's)."""
    for name, group in groups.items():
        if module in group.names:
            return name
    return module


def tick(engine: Engine, group: Group, now: float, before: Mapping[str, AlertState]
         ) -> tuple[TickResult, list[Notification], list[TickResult]]:
    """One evaluation of the group; each judged member's verdict is kept for ``status``.
    ``before``: the group checkpoint's alerts before the tick; the notes are the members'
    alert notifications; the last, each judged member's own result (its verdict, and the
    group's checkpoint with the member's alerts under their own names), for /metrics."""
    result, verdicts = GroupEngine(engine, group).tick(now)
    for member, verdict in verdicts.items():
        ticks.record_verdict(engine.journal,
                             TickResult(member, verdict, (), result.checkpoint))
    if verdicts:  # the group's own line in status and the web view: its members' worst
        ticks.record_verdict(engine.journal, TickResult(
            group.name, combined(group.name, now, verdicts), (), result.checkpoint))
    if result.decisions:
        log.info("group %s: %s; members %s", group.name,
                 ", ".join(f"{d.module} {d.action.value} {d.traffic_percent:g}%"
                           for d in result.decisions), members_line(result.checkpoint))
    members = [TickResult(member, verdict, (), replace(result.checkpoint, alerts={
        k[len(member) + 1:]: s for k, s in result.checkpoint.alerts.items()
        if k.startswith(f"{member}/")})) for member, verdict in verdicts.items()]
    return result, member_alert_notifications(engine, group, before, result, verdicts), \
        members


_WORST = (VerdictKind.HEALTHY, VerdictKind.INCONCLUSIVE, VerdictKind.WARNING,
          VerdictKind.CRITICAL)


def combined(name: str, now: float, verdicts: Mapping[str, Verdict]) -> Verdict:
    """A group's verdict as status shows it: the worst of its judged members', with their
    firing rules and reasons named by member (the group's decisions are made from the
    members' own verdicts, groups/machine.py)."""
    kind = max((v.kind for v in verdicts.values()), key=_WORST.index)
    firing = tuple(f"{m}/{r}" for m, v in verdicts.items() for r in v.firing)
    reasons = tuple(f"{m}: {r}" for m, v in verdicts.items() for r in v.reasons)
    return Verdict(name, now, kind, (), firing, reasons)


def member_alert_notifications(engine: Engine, group: Group,
                               before: Mapping[str, AlertState], result: TickResult,
                               verdicts: Mapping[str, Verdict]) -> list[Notification]:
    """Each judged member's alert notifications, as :func:`alert_notifications` makes a
    module's: its alerts before and after, out of the group's checkpoint."""
    out: list[Notification] = []
    for member, verdict in verdicts.items():
        prefix = f"{member}/"
        old = {k[len(prefix):]: s for k, s in before.items() if k.startswith(prefix)}
        new = {k[len(prefix):]: s for k, s in result.checkpoint.alerts.items()
               if k.startswith(prefix)}
        mine = TickResult(member, verdict, (), replace(result.checkpoint, alerts=new))
        out += alert_notifications(engine.module(member), old, mine, group=group.name)
    return out


def kill_switch(engine: Engine, group: Group) -> bool:
    return GroupEngine(engine, group).kill_switch()


def members_line(cp: Checkpoint) -> str:
    on = sum(1 for state in cp.members.values() if state == ENABLED)
    return f"{on} of {len(cp.members)} on (" + ", ".join(
        f"{m} {state}" for m, state in cp.members.items()) + ")"


def interval(loaded: Loaded, unit: str) -> float:
    """Seconds between evaluations of ``unit``: a group's is its quickest member's."""
    group = loaded.rules.groups.get(unit)
    if group is not None and unit not in loaded.module_names:
        return min(loaded.interval_of(m) for m in group.names)
    return loaded.interval_of(unit)
