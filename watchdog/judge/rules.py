"""Evaluate one rule at one instant: breached, not breached, or inconclusive, with evidence."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchdog.baseline import Baseline
from watchdog.config.schema import (
    AbsoluteRule,
    GrowthRule,
    IncreaseRule,
    Module,
    RelativeRule,
    Rule,
)
from watchdog.judge import stats
from watchdog.judge.series import SeriesStore
from watchdog.model import Direction, RuleResult, Version

EPS = 1e-9


@dataclass(frozen=True)
class EvalContext:
    module: Module
    now: float
    started_at: float
    series: SeriesStore
    baselines: Mapping[str, Baseline]
    noise_window: float = 300.0
    drift_lookback: float = 1800.0


def evaluate(rule: Rule, ctx: EvalContext) -> RuleResult:
    if isinstance(rule, RelativeRule):
        return _relative(rule, ctx)
    if isinstance(rule, AbsoluteRule):
        return _absolute(rule, ctx)
    if isinstance(rule, GrowthRule):
        return _growth(rule, ctx)
    return _increase(rule, ctx)


def _inconclusive(rule: Rule, why: str, **evidence: Any) -> RuleResult:
    return RuleResult(rule.name, rule.metric, None, f"{rule.metric}: {why}",
                      {"inconclusive": why, **evidence})


def _young(rule: Rule, ctx: EvalContext, why: str, **evidence: Any) -> RuleResult | None:
    """Inconclusive only because V2 has not run long enough yet for this rule ("warming").

    That is not missing data: it does not hold the rollout (the stage hold still has to
    pass). Missing data, once there has been time for it, does.
    """
    warm_from = _warm_from(rule, ctx)
    if isinstance(rule, GrowthRule):
        needed = 3 * rule.envelope
    else:
        needed = (rule.min_samples + 1) * ctx.module.interval
    needed = min(needed, rule.window)
    if ctx.now - warm_from >= needed:
        return None
    return _inconclusive(rule, why, warming=True, **evidence)


def _warm_from(rule: Rule, ctx: EvalContext) -> float:
    return ctx.started_at + ctx.module.warmup_of(rule.metric)


def _canary_window(rule: Rule, ctx: EvalContext) -> tuple[list[float], np.ndarray, float]:
    start = max(ctx.now - rule.window, _warm_from(rule, ctx) - EPS)
    times, values = ctx.series.get(Version.V2, rule.metric).window(start, ctx.now)
    return times, values, start


def _relative(rule: RelativeRule, ctx: EvalContext) -> RuleResult:
    spec = ctx.module.metrics[rule.metric]
    higher_is_worse = spec.direction is not Direction.LOWER_IS_WORSE
    tolerance = rule.max_increase if rule.max_increase is not None else rule.max_decrease
    assert tolerance is not None
    _, v2, start = _canary_window(rule, ctx)
    if len(v2) < rule.min_samples:
        return _too_few(rule, ctx, len(v2))
    _, v1 = ctx.series.get(Version.V1, rule.metric).window(start, ctx.now)
    use_live = rule.against != "baseline" and len(v1) >= rule.min_samples
    baseline = ctx.baselines.get(rule.metric)
    if not use_live:
        if rule.against == "live":
            return _inconclusive(rule, f"{len(v1)} live V1 samples in window, "
                                       f"need {rule.min_samples}", n_v1=len(v1))
        if baseline is None:
            return _inconclusive(rule, "no stored V1 baseline")
        if baseline.expired(ctx.now):
            return _inconclusive(rule, f"stored baseline {baseline.id} has expired")
        drift = _drift(rule, ctx, baseline)
        if drift is not None:
            return drift
    ref_kind = "live_v1" if use_live else "baseline"
    if rule.test == "none":
        observed = stats.aggregate(v2, rule.aggregate)
        if use_live:
            reference, n_ref = stats.aggregate(v1, rule.aggregate), len(v1)
        else:
            assert baseline is not None
            reference, n_ref = baseline.stat(rule.aggregate), baseline.count
        comp = stats.compare(observed, 0.0, len(v2), reference, 0.0, n_ref, tolerance,
                             rule.min_effect, higher_is_worse)
        breached = comp.z > 0
    else:
        floor = spec.noise_floor
        noise_from = max(ctx.now - ctx.noise_window, _warm_from(rule, ctx) - EPS)
        sd2 = _sd(ctx.series.get(Version.V2, rule.metric).window(noise_from, ctx.now)[1], v2,
                  floor)
        canary = stats.trimmed_mean(v2)
        se2 = stats.standard_error(sd2, len(v2))
        if use_live:
            sd1 = _sd(ctx.series.get(Version.V1, rule.metric).window(
                ctx.now - ctx.noise_window, ctx.now)[1], v1, floor)
            reference, se1, n_ref = stats.trimmed_mean(v1), stats.standard_error(sd1, len(v1)), \
                len(v1)
        else:
            assert baseline is not None
            values = baseline.values()
            reference = stats.trimmed_mean(values) if len(values) else baseline.mean
            se1 = baseline.stddev / math.sqrt(max(baseline.count, 1))
            n_ref = baseline.count
        comp = stats.compare(canary, se2, len(v2), reference, se1, n_ref, tolerance,
                             rule.min_effect, higher_is_worse)
        breached = comp.z > stats.z_critical(rule.alpha)
    evidence: dict[str, Any] = {"against": ref_kind, "tolerance": tolerance,
                                "test": rule.test, **comp.as_dict()}
    if rule.test == "sequential":
        evidence["alpha"] = rule.alpha
    if baseline is not None:
        evidence["baseline_id"] = baseline.id
    sign = "+" if comp.effect >= 0 else ""
    against = "live V1" if use_live else "baseline"
    summary = (f"{rule.metric} {comp.observed:.4g} vs {against} {comp.reference:.4g} "
               f"({sign}{comp.effect:.1%}; limit {comp.limit:.4g}")
    if rule.test == "sequential":
        summary += f", z={comp.z:.2f}, p={comp.p_value:.2g}"
    summary += f", n={comp.n_canary}/{comp.n_reference})"
    return RuleResult(rule.name, rule.metric, bool(breached), summary, evidence)


def _sd(recent: np.ndarray, window: np.ndarray, floor: float) -> float:
    sd = stats.noise_sd(recent if len(recent) >= len(window) else window)
    if math.isnan(sd):
        sd = float(np.std(window, ddof=1)) if len(window) > 1 else 0.0
    return max(sd, floor)


def _too_few(rule: Rule, ctx: EvalContext, n: int) -> RuleResult:
    if ctx.now < _warm_from(rule, ctx):
        return _inconclusive(rule, "V2 is warming up", warming=True, n_v2=n)
    why = f"{n} V2 samples in window, need {rule.min_samples}"
    return _young(rule, ctx, why, n_v2=n) or _inconclusive(rule, why, n_v2=n)


def _drift(rule: RelativeRule, ctx: EvalContext, baseline: Baseline) -> RuleResult | None:
    """Inconclusive when the last live V1 level has moved too far from the stored baseline."""
    if rule.drift_guard is None:
        return None
    v1 = ctx.series.get(Version.V1, rule.metric)
    last = v1.last_time(ctx.now)
    if last is None or ctx.now - last > ctx.drift_lookback:
        return None
    recent = v1.since(last - ctx.noise_window, last)
    if len(recent) < rule.min_samples or baseline.mean == 0:
        return None
    level = stats.trimmed_mean(recent)
    drift = level / baseline.mean - 1
    if abs(drift) <= rule.drift_guard:
        return None
    return _inconclusive(rule, f"V1 drifted {drift:+.1%} from its stored baseline "
                               f"({level:.4g} vs {baseline.mean:.4g}); baseline not trusted",
                         drift=round(drift, 4))


def _absolute(rule: AbsoluteRule, ctx: EvalContext) -> RuleResult:
    _, v2, _ = _canary_window(rule, ctx)
    if len(v2) < rule.min_samples:
        return _too_few(rule, ctx, len(v2))
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
        return _too_few(rule, ctx, len(v2))
    found = stats.growth_per_hour(times, v2, rule.envelope, start, ctx.now)
    if found is None:
        why = f"fewer than 3 {rule.envelope:g}s blocks of V2 data after warm-up"
        return _young(rule, ctx, why, n_v2=len(v2)) or _inconclusive(rule, why, n_v2=len(v2))
    growth, minima = found
    rising = all(b > a for a, b in itertools.pairwise(minima))
    breached = growth > rule.max_growth_per_hour and (rule.test == "none" or rising)
    summary = (f"{rule.metric} grows {growth:+.1%}/h (lower envelope over {len(minima)} blocks; "
               f"limit {rule.max_growth_per_hour:.0%}/h{'' if rising else ', not monotone'})")
    evidence = {"growth_per_hour": round(growth, 5), "limit": rule.max_growth_per_hour,
                "minima": [float(f"{m:.6g}") for m in minima], "monotone": rising,
                "n_v2": len(v2)}
    return RuleResult(rule.name, rule.metric, bool(breached), summary, evidence)


def _increase(rule: IncreaseRule, ctx: EvalContext) -> RuleResult:
    _, v2 = ctx.series.get(Version.V2, rule.metric).window(ctx.now - rule.window, ctx.now)
    if len(v2) < rule.min_samples:
        return _inconclusive(rule, f"{len(v2)} V2 samples in window, need {rule.min_samples}",
                             n_v2=len(v2))
    increase = stats.counter_increase(v2)
    summary = (f"{rule.metric} increased by {increase:g} in {rule.window:g}s "
               f"(limit {rule.above:g})")
    evidence = {"increase": increase, "above": rule.above, "n_v2": len(v2)}
    return RuleResult(rule.name, rule.metric, increase > rule.above, summary, evidence)
