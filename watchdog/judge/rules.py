"""Evaluate one rule at one instant: breached, not breached, or inconclusive, with evidence."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from watchdog.config.schema import (
    AbsoluteRule,
    BurstsRule,
    GrowthRule,
    IncreaseRule,
    RelativeRule,
    Rule,
)
from watchdog.judge import stats
from watchdog.judge.bursts import evaluate_bursts
from watchdog.judge.context import EPS, EvalContext, inconclusive, span, too_few, warm_from, young
from watchdog.judge.growthref import LeakCheck, leak_check
from watchdog.judge.pairedgrowth import paired_growth
from watchdog.judge.relative import evaluate_relative
from watchdog.model import RuleOutcome, RuleResult, Version

__all__ = ["EvalContext", "evaluate"]


def evaluate(rule: Rule, ctx: EvalContext) -> RuleResult:
    if isinstance(rule, RelativeRule):
        return evaluate_relative(rule, ctx)
    if isinstance(rule, AbsoluteRule):
        return _absolute(rule, ctx)
    if isinstance(rule, GrowthRule):
        return _growth(rule, ctx)
    if isinstance(rule, BurstsRule):
        return evaluate_bursts(rule, ctx)
    return _increase(rule, ctx)


def _canary_window(rule: Rule, ctx: EvalContext) -> tuple[list[float], np.ndarray, float]:
    start = max(ctx.now - span(rule, ctx), warm_from(rule, ctx) - EPS)
    times, values = ctx.series.get(Version.V2, rule.metric).window(start, ctx.now)
    return times, values, start


def _absolute(rule: AbsoluteRule, ctx: EvalContext) -> RuleResult:
    _, v2, _ = _canary_window(rule, ctx)
    if len(v2) < rule.min_samples:
        return too_few(rule, ctx, len(v2))
    observed = stats.aggregate(v2, rule.aggregate)
    high = rule.above is not None and observed > rule.above
    low = rule.below is not None and observed < rule.below
    limits = []
    if rule.above is not None:
        limits.append(f"above {rule.above:g}")
    if rule.below is not None:
        limits.append(f"below {rule.below:g}")
    summary = (f"{rule.metric} {rule.aggregate} {observed:.4g} over {len(v2)} samples "
               f"(breached when {' or '.join(limits)})")
    evidence = {"observed": observed, "above": rule.above, "below": rule.below,
                "aggregate": rule.aggregate, "n_v2": len(v2)}
    return RuleResult(rule.name, rule.metric, bool(high or low), summary, evidence)


def _growth(rule: GrowthRule, ctx: EvalContext) -> RuleResult:
    times, v2, start = _canary_window(rule, ctx)
    if len(v2) < rule.min_samples:
        return too_few(rule, ctx, len(v2))
    found = stats.growth_per_hour(times, v2, rule.envelope, start, ctx.now,
                                  rule.max_growth_per_hour)
    fast = paired_growth(rule, ctx, start)  # V2 - V1 at the same instants, while V1 serves
    if found is None or (rule.test == "sequential" and found.z is None):
        why = f"fewer than 4 {rule.envelope:g}s blocks of V2 data after warm-up"
        if fast is None or not fast.breached:
            return young(rule, ctx, why, n_v2=len(v2)) or inconclusive(rule, why, n_v2=len(v2))
        found = None  # the paired test alone breaches
    breached, how, check = _envelope(rule, ctx, found, start, len(v2))
    waits = check.not_a_leak if check is not None else None
    if fast is not None and fast.breached and not breached:
        # the paired test decides: say what the envelope test waits for, then why it
        # does not wait (a reason that read "not a leak" before a rollback misled)
        breached = True
        if waits is not None:
            joint = f"; the envelope test alone waits: {waits}; the paired test does not: "
        else:
            joint = "; but " if how else "; "
        how += joint + fast.describe()
    elif waits is not None:
        how += f"; not a leak: {waits}"
    summary = (f"{rule.metric}: {fast.describe() if fast else ''}; limit "
               f"{rule.max_growth_per_hour:.0%}/h") if found is None else (
        f"{rule.metric} grows {found.per_hour:+.1%}/h (lower envelope over "
        f"{len(found.minima)} blocks of {rule.envelope:g}s; limit "
        f"{rule.max_growth_per_hour:.0%}/h{how})")
    evidence: dict[str, Any] = {"limit": rule.max_growth_per_hour, "n_v2": len(v2)}
    if found is None and fast is not None:  # the paired test alone: its growth
        evidence["growth_per_hour"] = round(fast.per_hour, 5)
    if found is not None:
        evidence.update({
            "growth_per_hour": round(found.per_hour, 5),
            "minima": [float(f"{m:.6g}") for m in found.minima],
            "monotone": all(b > a for a, b in itertools.pairwise(found.minima)),
            "z": None if found.z is None else round(found.z, 3)})
        if found.recent_per_hour is not None:
            evidence["recent_growth_per_hour"] = round(found.recent_per_hour, 5)
    if check is not None:
        evidence.update(check.as_dict())
    if fast is not None:
        evidence.update(fast.as_dict())
    if not breached and check is not None and check.pending:  # too young to tell (growthpersist)
        return RuleResult(rule.name, rule.metric, RuleOutcome.WARMING, summary,
                          {"inconclusive": check.not_a_leak, "warming": True, **evidence})
    return RuleResult(rule.name, rule.metric, bool(breached), summary, evidence)


def _envelope(rule: GrowthRule, ctx: EvalContext, found: stats.Growth | None, start: float,
              n_v2: int) -> tuple[bool, str, LeakCheck | None]:
    """The lower-envelope test: (breached, how, leak check), at 4+ blocks."""
    if found is None:
        return False, "", None
    over = found.per_hour > rule.max_growth_per_hour
    if rule.test == "none" or found.z is None:
        breached, how = over, ""
    else:
        z_crit = stats.z_critical(rule.alpha)
        breached, how = found.z > z_crit, f", z={found.z:.2f} vs {z_crit:.2f}"
        recent = found.recent_per_hour
        if breached and recent is not None and recent <= rule.max_growth_per_hour:
            # growth that has levelled off (a warm-up longer than ``warmup`` filling its
            # caches, then flat) is not a leak: a leak keeps the newest blocks rising too
            breached = False
            how += f"; levelled off: {recent:+.1%}/h over the newest {len(found.minima) - 1}"
    check = leak_check(rule, ctx, found, start, n_v2) if breached else None
    if check is not None and check.not_a_leak is not None:
        breached = False  # why: check.not_a_leak (the caller words it)
    return breached, how, check


def _increase(rule: IncreaseRule, ctx: EvalContext) -> RuleResult:
    v2 = ctx.series.get(Version.V2, rule.metric).values(ctx.now - rule.window, ctx.now)
    if len(v2) < rule.min_samples:
        return too_few(rule, ctx, len(v2))
    increase = stats.counter_increase(v2)
    summary = (f"{rule.metric} increased by {increase:g} in {rule.window:g}s "
               f"(limit {rule.above:g})")
    evidence = {"increase": increase, "above": rule.above, "n_v2": len(v2)}
    return RuleResult(rule.name, rule.metric, increase > rule.above, summary, evidence)
