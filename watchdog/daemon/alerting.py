"""Notifications of rule alerts that no decision carries.

A rule with ``action: hold`` or ``rollback`` tells people through the decision it causes.
A ``notify`` rule, and any ``dry_run`` rule, has no decision: its alert is the message.
After each tick the alert states before and after are compared:

* firing: one notification per evaluation while it fires, each with its own key; the
  queue's repeat interval decides which are sent (Alertmanager's ``repeat_interval``);
* resolved: once, with the rule's current value and how long it fired.

A member of a module group (issue 20 item 1) is judged inside its group's tick; its
notes name the member as their module and the group in the title and the evidence
(``group``): see :func:`watchdog.daemon.groupjobs.member_alert_notifications`.
"""

from __future__ import annotations

from collections.abc import Mapping

from watchdog.config.schema import Module
from watchdog.engine import TickResult
from watchdog.judge.alerts import AlertPhase, AlertState
from watchdog.model import RuleAction
from watchdog.notifiers import Notification


def alert_notifications(module: Module, before: Mapping[str, AlertState],
                        result: TickResult, group: str | None = None
                        ) -> list[Notification]:
    if result.verdict is None:
        return []
    now = result.verdict.at
    cp = result.checkpoint
    results = {r.rule: r for r in result.verdict.results}
    out: list[Notification] = []
    named = module.name if group is None else f"{module.name} (group {group})"
    for rule in module.rules:
        if rule.action is not RuleAction.NOTIFY and not rule.dry_run:
            continue
        old = before.get(rule.name, AlertState())
        new = cp.alerts.get(rule.name, AlertState())
        judged = results.get(rule.name)
        summary = judged.summary if judged is not None else ""
        evidence = {"rule": rule.name, "metric": rule.metric, "summary": summary,
                    **(judged.evidence if judged is not None else {})}
        if group is not None:
            evidence["group"] = group
        links = {"runbook_url": rule.annotations["runbook_url"]} \
            if "runbook_url" in rule.annotations else {}
        title = rule.annotations.get("summary", rule.name)
        if new.phase is AlertPhase.FIRING:
            since = new.fired_at if new.fired_at is not None else now
            evidence["active_at"] = new.active_at
            evidence["held_for"] = now - since
            out.append(Notification(
                key=f"alert:{module.name}:{rule.name}:{new.active_at}:{now}",
                module=module.name, kind="alert_firing", action=None,
                severity=rule.severity.value,
                title=f"{named}: {title}{' (dry run)' if rule.dry_run else ''}",
                stage=cp.stage + 1, traffic_percent=cp.traffic_percent, reasons=(summary,),
                evidence=(evidence,), at=now, links=links))
        elif old.phase is AlertPhase.FIRING:
            fired = old.fired_at if old.fired_at is not None else now
            evidence["held_for"] = now - fired
            out.append(Notification(
                key=f"resolved:{module.name}:{rule.name}:{old.active_at}",
                module=module.name, kind="alert_resolved", action=None,
                severity=rule.severity.value, title=f"{named}: resolved: {title}",
                stage=cp.stage + 1, traffic_percent=cp.traffic_percent,
                reasons=(f"resolved after firing for {now - fired:g}s; now: {summary}",),
                evidence=(evidence,), at=now, links=links))
    return out
