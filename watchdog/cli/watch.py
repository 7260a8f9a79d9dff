"""``status --watch``'s view: per module its phase, stage, time in stage, verdict, each
rule's observed value against its limit (from the last evaluation the journal holds
evidence of), and what happens next."""

from __future__ import annotations

from typing import Any

from watchdog.api.live import module_live
from watchdog.cli.control import age, when
from watchdog.cli.readonly import View
from watchdog.config.schema import Plan
from watchdog.journal.store import SqliteJournal
from watchdog.rollout.state import Checkpoint, Phase


def render(journal: SqliteJournal, where: View, rows: list[dict[str, Any]],
           now: float) -> str:
    kill = bool(journal.setting("kill_switch", False))
    lines = [f"{when(now)}  kill switch: {'ON (V1 everywhere)' if kill else 'off'}"]
    if not rows:
        lines.append("no modules: none configured and none in the journal")
    for r in rows:
        name = r["module"]
        cp = journal.checkpoint(name)
        plan = where.rules.for_module(name).plan if name in where.rules.modules \
            or "*" in where.rules.modules else None
        stage = f"stage {r['stage']}/{r['stages'] or '?'}" if r["stage"] else "-"
        in_stage = "" if cp is None else f"  in stage {age(max(0.0, now - cp.stage_started_at))}"
        lines.append("")
        lines.append(f"{name}  {r['phase'].upper()}  {stage}  {r['traffic_percent']:g}%"
                     f"{in_stage}")
        v = r["last_verdict"]
        if v is not None:
            firing = f" ({', '.join(v['firing'])})" if v["firing"] else ""
            lines.append(f"  verdict: {v['kind']}{firing} since {when(v['since'])}")
        lines.append(f"  next: {next_step(cp, plan, now)}")
        live = module_live(journal, name, None)
        if live.rules:
            lines.append(f"  {'rule':<32} {'state':<13} {'observed':>12} {'limit':>12}"
                         f"   (at {when(live.evaluated_at)})")
            for rule in live.rules:
                lines.append(f"  {rule.rule:<32} {rule.state:<13} {_num(rule.observed):>12} "
                             f"{_num(rule.limit):>12}")
        last = r["last_decision"]
        if last is not None:
            lines.append(f"  last decision #{last['id']} {last['action']} "
                         f"{when(last['at'])} by {last['actor']}: "
                         f"{'; '.join(last['reasons'])}")
    return "\n".join(lines)


def next_step(cp: Checkpoint | None, plan: Plan | None, now: float) -> str:
    if cp is None:
        return "not started: rollout-watchdog start MODULE --reason ..."
    if cp.phase is Phase.PROMOTED:
        return "none: promoted (V2 at 100%)"
    if cp.phase is Phase.ABORTED:
        return "none: aborted (V1, terminal)"
    if cp.phase is Phase.ROLLED_BACK:
        return "rolled back to V1: resume restarts at stage 1, abort ends the rollout"
    if cp.phase is Phase.PAUSED:
        why = "the kill switch" if cp.paused_by_kill_switch else "an operator"
        return f"paused by {why}: resume (or kill-switch off) to go on"
    if plan is None:
        return f"{cp.phase.value} (the plan is unknown: no rules loaded)"
    hold = plan.hold_of(cp.stage)
    last = cp.stage + 1 >= len(plan.stages)
    target = "promote to 100%" if last else \
        f"advance to stage {cp.stage + 2} at {plan.stages[cp.stage + 1].traffic:g}%"
    if cp.healthy_since is None:
        return f"{target} after {age(max(0.0, hold - cp.healthy_banked))} healthy " \
               "(not healthy now)"
    if cp.phase is Phase.AWAITING_APPROVAL:
        # ready for a stage that needs a person: it never advances on its own (still
        # judged: a failure rolls it back)
        return (f"{target} once approved: rollout-watchdog approve {cp.module} "
                f"--reason ...")
    left = max(0.0, hold - cp.healthy_banked - (now - cp.healthy_since))
    return f"{target} in {age(left)} if it stays healthy"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
