"""Combine rule results and alert states into one verdict per module."""

from __future__ import annotations

from collections.abc import Mapping

from watchdog.config.schema import Module
from watchdog.judge.alerts import INACTIVE, AlertPhase, AlertState, step
from watchdog.judge.rules import EvalContext, evaluate
from watchdog.model import RuleAction, RuleResult, Verdict, VerdictKind

JITTER = 0.1  # of the interval: how far off the grid a live tick may wake (see alerts.py)


def judge(ctx: EvalContext, states: Mapping[str, AlertState]
          ) -> tuple[Verdict, dict[str, AlertState]]:
    """Evaluate every rule of the module, step its alert state, and decide the verdict.

    critical     a rule with action rollback is firing
    warning      a rule with action hold is firing
    inconclusive a rule that could hold or roll back lacks the evidence to say (a rule
                 that is only "warming", i.e. V2 has not run long enough yet, does not count)
    healthy      otherwise (notify-only and dry-run rules never change the verdict)
    """
    module: Module = ctx.module
    results: list[RuleResult] = []
    new_states: dict[str, AlertState] = {}
    critical: list[str] = []
    warning: list[str] = []
    unsure: list[str] = []
    firing: list[str] = []
    for rule in module.rules:
        result = evaluate(rule, ctx)
        results.append(result)
        # "warming" is evidence of a settling V2, not of a lasting breach: it clears a
        # pending alert, where missing data (plain inconclusive) leaves it as it was
        breached = False if result.evidence.get("warming") else result.breached
        state = step(states.get(rule.name, INACTIVE), breached, ctx.now,
                     rule.for_, rule.keep_firing_for, JITTER * module.interval)
        new_states[rule.name] = state
        if state.phase is AlertPhase.FIRING:
            firing.append(rule.name)
        if rule.dry_run or rule.action is RuleAction.NOTIFY:
            continue
        if state.phase is AlertPhase.FIRING:
            target = critical if rule.action is RuleAction.ROLLBACK else warning
            target.append(f"{rule.name}: {result.summary}")
        elif result.breached is None and not (result.evidence.get("warming")
                                              or result.evidence.get("inapplicable")):
            unsure.append(f"{rule.name}: {result.summary}")
    if critical:
        kind, reasons = VerdictKind.CRITICAL, critical
    elif warning:
        kind, reasons = VerdictKind.WARNING, warning
    elif unsure:
        kind, reasons = VerdictKind.INCONCLUSIVE, unsure
    else:
        kind, reasons = VerdictKind.HEALTHY, []
    verdict = Verdict(module.name, ctx.now, kind, tuple(results), tuple(firing), tuple(reasons))
    return verdict, new_states
