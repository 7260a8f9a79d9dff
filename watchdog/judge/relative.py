"""Relative rules: V2 against live V1 over the same window, or against the stored baseline.

With ``test: sequential`` the comparison is noise-aware (see stats.py) and runs over the
rule's ``window`` and, if given, ``long_window`` (big shifts show fast in the short one,
small ones need the long one); the alpha is split between them (Bonferroni).

Pipeline. Each tick: the windows (``_plan``: ``warmup`` drops V2's first seconds, and
while V2 may still ``settle`` only the latter half of its life counts), then per window
the **reference** (reference.py), V2's **noise** (``_noise``: noise.py; standard errors
and the long window scale with the wander factor, wander.py) and the **comparison**
(``_compare``, stats.py; the best window decides, and the scan), then the **gates**
(ruling.py), which may rule a breach out: a thin window, V1's own excursions, disputed
references (disagree.py), a stale window, a V2 still settling (its excess still falling,
warmup.py) or still warming up in the metric it settles with.

Reference. Live V1 while it serves. Where it does not (the 100 % stage), the stored
baseline, rebased on V1's last live level when V1 served within ``drift_lookback`` and
was doing worse than its baseline then: load that rose between the baseline window and
now moves V1 too, and must not count against V2. Rebasing only ever relaxes the limit
(a noisy, lucky V1 never makes it stricter). ``drift_guard`` makes drift beyond a limit
inconclusive instead. Either is V1 at another time than V2's window, so its standard
error includes how far V1's own level moves over time (refspread.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from watchdog.config.schema import RelativeRule
from watchdog.judge import alwaysvalid, counts, noise, ruling, scan, stats, wander
from watchdog.judge.context import EPS, EvalContext, inconclusive, span, too_few, warm_from
from watchdog.judge.reference import (
    Reference,
    ReferenceKind,
    reference_for,
)
from watchdog.judge.warmup import warm_until
from watchdog.model import Direction, RuleOutcome, RuleResult, Version


def evaluate_relative(rule: RelativeRule, ctx: EvalContext) -> RuleResult:
    """Windows -> reference -> noise -> comparison -> gates (see the module docstring)."""
    found = find(rule, ctx)
    if isinstance(found, RuleResult):
        return found
    finding, evidence = found
    ruled = ruling.rule_on(finding, (alwaysvalid.crossed, *ruling.GATES))
    if ruled.outcome is RuleOutcome.BREACHED or ruled.outcome is RuleOutcome.CLEAR:
        return RuleResult(rule.name, rule.metric, ruled.outcome, ruled.summary,
                          {**evidence, **ruled.evidence})
    return inconclusive(rule, ruled.summary, ruled.outcome, **{**ruled.evidence, **evidence})


@dataclass(frozen=True)
class _Plan:
    """The windows a relative rule is judged over at this tick."""

    rule: RelativeRule
    ctx: EvalContext
    higher: bool
    tolerance: float
    earliest: float  # V2's samples before this are not judged (warm-up; settling: half)
    long_from: float  # nor, in the long windows, those before a visible settle_with warm-up
    windows: tuple[float, ...]  # the short window, then the long one if any

    def alpha(self, comp: stats.Comparison) -> float:
        # an exact count test's p-value is what it says (the normal z's alpha also absorbs
        # how far a few events a window are from normal), so it may have its own alpha
        rule = self.rule
        return rule.exact_alpha if comp.exact and rule.exact_alpha is not None else rule.alpha

    def critical(self, comp: stats.Comparison) -> float:
        """The critical z: the alpha split between the windows (Bonferroni)."""
        return stats.z_critical(self.alpha(comp) / len(self.windows)) \
            if self.rule.test == "sequential" else 0.0

    def window(self, width: float, start: float
               ) -> tuple[stats.Comparison, Reference, int] | RuleResult | None:
        """Reference, noise and comparison over one window (None: too few V2 samples)."""
        rule, ctx = self.rule, self.ctx
        v2 = ctx.series.get(Version.V2, rule.metric).values(start, ctx.now)
        if len(v2) < rule.min_samples:
            return None
        ref = reference_for(rule, ctx, start, width)
        if isinstance(ref, RuleResult):
            return ref
        if ref.paired is not None:
            v2 = ref.paired
        allowed = self.tolerance
        if ref.kind is not ReferenceKind.LIVE_V1 and rule.baseline_tolerance is not None:
            allowed = rule.baseline_tolerance
        return _compare(rule, ctx, v2, ref, allowed, self.higher), ref, len(v2)

    def rejudge(self, width: float) -> stats.Comparison | None:
        """The comparison over the last ``width`` seconds (from ``long_from`` at most)."""
        found = self.window(width, max(self.ctx.now - width, self.long_from))
        return found[0] if isinstance(found, tuple) else None


def find(rule: RelativeRule, ctx: EvalContext
         ) -> tuple[ruling.Finding, dict[str, Any]] | RuleResult:
    """What the comparison finds before the gates, and its evidence; or the result where
    there is nothing to compare (too few V2 samples, no reference)."""
    plan = _plan(rule, ctx)
    if isinstance(plan, RuleResult):
        return plan
    found = _comparison(plan)
    if isinstance(found, RuleResult):
        return found
    return found[0], _evidence(plan, *found)


def _plan(rule: RelativeRule, ctx: EvalContext) -> _Plan | RuleResult:
    spec = ctx.module.metrics[rule.metric]
    tolerance = rule.max_increase if rule.max_increase is not None else rule.max_decrease
    assert tolerance is not None
    earliest = warm_from(rule, ctx) - EPS
    elapsed = ctx.now - ctx.started_at
    if elapsed < spec.settle:
        # while V2 may still be settling, look only at the latter half of its life
        earliest = max(earliest, ctx.started_at + elapsed / 2 - EPS)
    short = span(rule, ctx)
    v2 = ctx.series.get(Version.V2, rule.metric).values(max(ctx.now - short, earliest),
                                                        ctx.now)
    if len(v2) < rule.min_samples:
        return too_few(rule, ctx, len(v2))
    windows = [short]
    if rule.test == "sequential" and rule.long_window is not None and rule.long_window > short:
        # on a wandering metric the long window is stretched to hold as many effective
        # samples as on white noise (wander.py)
        windows.append(wander.stretched(rule.long_window, wander.factor(ctx, rule.metric)))
    # when V2 visibly warmed up in the metric this one settles with, the long window skips
    # that warm-up (up to the latter half of V2's life): what it left is not judged. A V2
    # that never warmed up is judged over its whole life (no samples thrown away)
    warm_end = warm_until(spec.settle_with, rule, ctx) if spec.settle_with else None
    long_from = earliest if warm_end is None \
        else max(earliest, min(warm_end + EPS, ctx.started_at + elapsed / 2 - EPS))
    return _Plan(rule, ctx, spec.direction is not Direction.LOWER_IS_WORSE, tolerance,
                 earliest, long_from, tuple(windows))


def _comparison(plan: _Plan) -> tuple[ruling.Finding, float | None] | RuleResult:
    """The deciding window (the one furthest past its critical z, a window with enough
    effective samples before a thin one) and the scan over the longest."""
    rule, ctx = plan.rule, plan.ctx
    best: tuple[float, stats.Comparison, Reference, float, bool] | None = None
    for width in plan.windows:
        start = max(ctx.now - width, plan.earliest if width == plan.windows[0]
                    else plan.long_from)
        found = plan.window(width, start)
        if found is None:
            continue
        if isinstance(found, RuleResult):
            return found
        comp, ref, n = found
        # a window with too few effective samples (a few minutes of a wandering metric)
        # is reported, never acted on (the thin_window gate)
        thin = rule.test == "sequential" and wander.thin(ctx, rule.metric, n, ctx.now - start)
        crit = plan.critical(comp)
        if best is None or (not thin, comp.z - crit) > (not best[4], best[1].z - best[3]):
            best = (width, comp, ref, crit, thin)
    assert best is not None
    width, comp, ref, crit, thin = best
    scanned = scan.sustained(rule, ctx, plan.windows[-1], plan.earliest, plan.tolerance,
                             plan.higher) if rule.scan_threshold is not None else None
    summary = _summary(rule, comp, ref, width)
    if scanned is not None and rule.scan_threshold is not None \
            and scanned > rule.scan_threshold >= 0 and comp.z <= crit:
        summary += f"; sustained excess: scan {scanned:.1f} > {rule.scan_threshold:g}"
    by_scan = scanned is not None and scanned > (rule.scan_threshold or 0.0)
    return ruling.Finding(rule, ctx, comp, ref, width, crit, thin, by_scan, summary,
                          plan.rejudge), scanned


def _evidence(plan: _Plan, f: ruling.Finding, scanned: float | None) -> dict[str, Any]:
    """The numbers behind the finding, for the journal (the gates add theirs)."""
    rule, ctx, comp, ref = plan.rule, plan.ctx, f.comp, f.ref
    used = plan.tolerance if ref.kind is ReferenceKind.LIVE_V1 \
        or rule.baseline_tolerance is None else rule.baseline_tolerance
    evidence: dict[str, Any] = {"against": ref.kind.value, "tolerance": used,
                                "test": rule.test, "window": f.width, **comp.as_dict()}
    if rule.test == "sequential":
        evidence.update(alpha=plan.alpha(comp), z_critical=round(f.crit, 3))
    if ref.note:
        evidence["reference_note"] = ref.note
    if ref.spread > 0:
        # how far V1's level moves over time: part of a non-concurrent reference's se
        evidence["reference_spread"] = _round(ref.spread)
    if scanned is not None:
        evidence.update(scan=round(scanned, 3), scan_threshold=rule.scan_threshold)
    k = wander.factor(ctx, rule.metric)
    if k > 1.0:
        evidence.update(wander_factor=round(k, 3), effective_n=round(comp.n_canary / k**2, 2))
    if f.thin:
        evidence["thin"] = 1
    baseline = ctx.baselines.get(rule.metric)
    if baseline is not None:
        evidence["baseline_id"] = baseline.id
        evidence["baseline"] = _round(baseline.mean)
    return evidence


@dataclass(frozen=True)
class _Noise:
    """V2's noise over a window: per sample (at the limit for ``noise: binomial``), the
    wander factor k its standard errors scale by, and for a sparse count its rate."""

    sd: float
    k: float
    binomial: tuple[float, float | None] | None


def _noise(rule: RelativeRule, ctx: EvalContext, v2: np.ndarray, ref: Reference,
           tolerance: float, higher: bool) -> _Noise:
    noise_from = max(ctx.now - max(ctx.noise_window, len(v2) * ctx.module.interval),
                     warm_from(rule, ctx) - EPS)
    sd2 = noise.v2_noise(rule, ctx, noise_from, v2, ref, tolerance, higher)
    binomial = noise.binomial(ctx, rule.metric, noise_from, higher) \
        if rule.noise == "binomial" else None
    # a wandering mean is known k times less well (wander.py)
    return _Noise(sd2, wander.factor(ctx, rule.metric), binomial)


def _compare(rule: RelativeRule, ctx: EvalContext, v2: np.ndarray, ref: Reference,
             tolerance: float, higher: bool) -> stats.Comparison:
    if rule.test == "none":
        observed = stats.aggregate(v2, rule.aggregate)
        return stats.compare(observed, 0.0, len(v2), ref.value, 0.0, ref.n, tolerance,
                             rule.min_effect, higher)
    nz = _noise(rule, ctx, v2, ref, tolerance, higher)
    est = rule.estimator
    comp = stats.compare(stats.location(v2, nz.sd, est),
                         nz.k * stats.standard_error(nz.sd, len(v2), est), len(v2), ref.value,
                         math.hypot(nz.k * ref.se, ref.spread), ref.n, tolerance,
                         rule.min_effect, higher)
    if nz.binomial is not None:
        # a count of a few events a window: the normal z overstates a chance cluster (where
        # lower is worse, the events are the failures: 1 - rate against 1 - limit)
        events = counts.failures(v2, higher)
        limit = comp.limit if higher else 1.0 - comp.limit
        exact = noise.exact_z(rule, ctx, events, ref, limit, nz.binomial[1])
        if exact is not None and exact < comp.z:
            comp = replace(comp, z=exact, p_value=stats.p_value_of(exact), exact=True)
    return comp


def _summary(rule: RelativeRule, comp: stats.Comparison, ref: Reference, width: float) -> str:
    against = ref.kind.label
    sign = "+" if comp.effect >= 0 else ""
    text = (f"{rule.metric} {comp.observed:.4g} vs {against} {comp.reference:.4g} "
            f"({sign}{comp.effect:.1%}; limit {comp.limit:.4g}")
    if rule.test == "sequential":
        # a window whose samples do not scatter at all (V2 and its reference each constant)
        # has no noise to weigh the excess against: say so rather than "z=inf, p=0"
        p = f"={comp.p_value:.2g}" if comp.p_value > 0 else "<1e-300"  # underflowed, not 0
        text += (f", z={comp.z:.2f}, p{p}" if math.isfinite(comp.z) else
                 f", z={'+' if comp.z > 0 else '-'}inf: no scatter in the window")
    return text + f", n={comp.n_canary}/{comp.n_reference} over {width:.0f}s)"


def _round(x: float) -> float:
    return float(f"{x:.6g}") if math.isfinite(x) and x != 0 else x
