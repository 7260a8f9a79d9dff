"""Relative rules: V2 against live V1 over the same window, or against the stored baseline.

With ``test: sequential`` the comparison is noise-aware (see stats.py) and runs over the
rule's ``window`` and, if given, ``long_window`` (big shifts show fast in the short one,
small ones need the long one); the alpha is split between them (Bonferroni).

Warm-up. ``warmup`` drops V2's first seconds outright. ``settle`` is smarter: during V2's
first ``settle`` seconds a breach only counts when V2's excess is not still falling. A
warm-up (cache fill, JIT) decays; a regression stays. Before ``settle_min`` (3 minutes) a
breach counts only when the trend of V2's excess rules out any warm-up that would end
within ``settle`` (a flat excess, told with enough confidence); from then on, unless the
excess is falling significantly (warmup.py holds that test, `settle_with` and the
stale-window check).

Real noise (issue 17). Standard errors and the long window scale with the metric's
wander factor (wander.py); a window with too few effective samples never breaches; a
breach must outlast V1's own excursions (wander.episode_span); live V1 that disagrees with
its stored baseline makes a breach count only if V2 is worse than both (disagree.py).

Reference. Live V1 while it serves. Where it does not (the 100 % stage), the stored
baseline, rebased on V1's last live level when V1 served within ``drift_lookback`` and
was doing worse than its baseline then: load that rose between the baseline window and
now moves V1 too, and must not count against V2. Rebasing only ever relaxes the limit
(a noisy, lucky V1 never makes it stricter). ``drift_guard`` makes drift beyond a limit
inconclusive instead.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from watchdog.config.schema import RelativeRule
from watchdog.judge import counts, noise, stats, wander
from watchdog.judge.context import EPS, EvalContext, inconclusive, paired, span, too_few, warm_from
from watchdog.judge.disagree import disagreement
from watchdog.judge.reference import (
    Reference,
    baseline_level,
    reference_for,
    small_share_reference,
)
from watchdog.judge.warmup import stale_for, still_falling, warm_until, warming_in
from watchdog.model import Direction, RuleResult, Version


def evaluate_relative(rule: RelativeRule, ctx: EvalContext) -> RuleResult:
    spec = ctx.module.metrics[rule.metric]
    higher = spec.direction is not Direction.LOWER_IS_WORSE
    tolerance = rule.max_increase if rule.max_increase is not None else rule.max_decrease
    assert tolerance is not None
    v2s = ctx.series.get(Version.V2, rule.metric)
    earliest = warm_from(rule, ctx) - EPS
    elapsed = ctx.now - ctx.started_at
    settling = elapsed < spec.settle
    if settling:
        # while V2 may still be settling, look only at the latter half of its life
        earliest = max(earliest, ctx.started_at + elapsed / 2 - EPS)
    short = span(rule, ctx)
    start = max(ctx.now - short, earliest)
    _, v2 = v2s.window(start, ctx.now)
    if len(v2) < rule.min_samples:
        return too_few(rule, ctx, len(v2))
    windows = [short]
    if rule.test == "sequential" and rule.long_window is not None and rule.long_window > short:
        # on a wandering metric the long window is stretched to hold as many effective
        # samples as on white noise (wander.py)
        windows.append(wander.stretched(rule.long_window, wander.factor(ctx, rule.metric)))
    best: tuple[float, stats.Comparison, Reference, float, bool] | None = None

    def alpha_of(comp: stats.Comparison) -> float:
        # an exact count test's p-value is what it says (the normal z's alpha also absorbs
        # how far a few events a window are from normal), so it may have its own alpha
        return rule.exact_alpha if comp.exact and rule.exact_alpha is not None else rule.alpha

    def critical(comp: stats.Comparison) -> float:
        return stats.z_critical(alpha_of(comp) / len(windows)) \
            if rule.test == "sequential" else 0.0

    # when V2 visibly warmed up in the metric this one settles with, the long window skips
    # that warm-up (up to the latter half of V2's life): what it left is not judged. A V2
    # that never warmed up is judged over its whole life (no samples thrown away)
    warm_end = warm_until(spec.settle_with, rule, ctx) if spec.settle_with else None
    long_from = earliest if warm_end is None \
        else max(earliest, min(warm_end + EPS, ctx.started_at + elapsed / 2 - EPS))
    def judge_window(width: float, start: float
                     ) -> tuple[stats.Comparison, Reference, int] | RuleResult | None:
        _, v2 = v2s.window(start, ctx.now)
        if len(v2) < rule.min_samples:
            return None
        ref = reference_for(rule, ctx, start, width)
        if isinstance(ref, RuleResult):
            return ref
        if ref.paired is not None:
            v2 = ref.paired
        allowed = tolerance
        if ref.kind != "live_v1" and rule.baseline_tolerance is not None:
            allowed = rule.baseline_tolerance
        return _compare(rule, ctx, v2, ref, allowed, higher), ref, len(v2)

    for width in windows:
        start = max(ctx.now - width, earliest if width == short else long_from)
        found = judge_window(width, start)
        if found is None or isinstance(found, RuleResult):
            if found is None:
                continue
            return found
        comp, ref, n = found
        # a window with too few effective samples (a few minutes of a wandering metric)
        # is reported, never acted on: its mean is one draw of the wander (wander.py)
        thin = rule.test == "sequential" and wander.thin(ctx, rule.metric, n, ctx.now - start)
        if best is None or (not thin, comp.z - critical(comp)) > (not best[4],
                                                                 best[1].z - best[3]):
            best = (width, comp, ref, critical(comp), thin)
    assert best is not None
    width, comp, ref, crit, thin = best
    breached = comp.z > crit and not thin
    scanned = _scan(rule, ctx, windows[-1], earliest, tolerance, higher) \
        if rule.scan_threshold is not None else None
    if scanned is not None and scanned > (rule.scan_threshold or 0.0):
        breached = True
    # V2's excess must outlast the excursions V1 itself makes (wander.episode_span)
    episode: tuple[float, float] | None = None
    # (a breach the scan found is one already: a sustained run, in wander-scaled noise)
    if breached and rule.test == "sequential" and not (
            scanned is not None and scanned > (rule.scan_threshold or 0.0)):
        lasting = wander.episode_span(ctx, rule.metric, tolerance, short)
        if lasting > width + EPS:
            confirm = judge_window(lasting, max(ctx.now - lasting, long_from))
            if isinstance(confirm, tuple):
                episode = (lasting, confirm[0].z)
                breached = confirm[0].z > crit
    used = tolerance if ref.kind == "live_v1" or rule.baseline_tolerance is None \
        else rule.baseline_tolerance
    evidence: dict[str, Any] = {"against": ref.kind, "tolerance": used, "test": rule.test,
                                "window": width, **comp.as_dict()}
    if rule.test == "sequential":
        evidence.update(alpha=alpha_of(comp), z_critical=round(crit, 3))
    if ref.note:
        evidence["reference_note"] = ref.note
    if scanned is not None:
        evidence.update(scan=round(scanned, 3), scan_threshold=rule.scan_threshold)
    k = wander.factor(ctx, rule.metric)
    if k > 1.0:
        evidence.update(wander_factor=round(k, 3), effective_n=round(comp.n_canary / k**2, 2))
    if thin:
        evidence["thin"] = 1
    if episode is not None:
        evidence.update(episode_span=round(episode[0], 1), episode_z=round(episode[1], 3))
    baseline = ctx.baselines.get(rule.metric)
    if baseline is not None:
        evidence["baseline_id"] = baseline.id
        evidence["baseline"] = _round(baseline.mean)
    summary = _summary(rule, comp, ref, width)
    if scanned is not None and rule.scan_threshold is not None \
            and scanned > rule.scan_threshold >= 0 and comp.z <= crit:
        summary += f"; sustained excess: scan {scanned:.1f} > {rule.scan_threshold:g}"
    if episode is not None and not breached:
        summary += (f"; not past V1's own excursions: z={episode[1]:.2f} over "
                    f"{episode[0]:g}s, as long as V1 strayed beyond the tolerance")
    if breached and ref.kind == "live_v1" and not ref.note and baseline is not None \
            and not baseline.expired(ctx.now) and rule.test == "sequential":
        value_b, se_b = baseline_level(baseline)
        why = disagreement(rule, comp, ref.level, ref.se, value_b, se_b, baseline.count,
                           wander.factor(ctx, rule.metric), crit, higher)
        if why is not None:
            return inconclusive(rule, f"{why}: {summary}", disagree=1, **evidence)
    stale = stale_for(v2s, ctx) if breached else None
    if stale is not None:
        # the samples that breached were judged at earlier ticks already: repeating the
        # verdict on them is not new evidence (it would fire a `for` on a stale window)
        return inconclusive(rule, f"no new V2 sample for {stale:g}s: a breach counts "
                                  f"again when V2 reports: {summary}", stale=stale, **evidence)
    if breached and settling:
        falling = still_falling(rule, ctx, higher, (comp.observed - comp.limit) * (
            1.0 if higher else -1.0))
        if falling is not None:
            return inconclusive(rule, f"V2 still settling after start ({falling}); "
                                      f"not judged yet: {summary}", warming=True, **evidence)
    if breached and spec.settle_with is not None:
        warm = warming_in(spec.settle_with, rule, ctx)
        if warm is not None:
            return inconclusive(rule, f"V2 still warming up ({warm}); not judged yet: "
                                      f"{summary}", warming=True, **evidence)
    return RuleResult(rule.name, rule.metric, bool(breached), summary, evidence)


def _compare(rule: RelativeRule, ctx: EvalContext, v2: np.ndarray, ref: Reference,
             tolerance: float, higher: bool) -> stats.Comparison:
    if rule.test == "none":
        observed = stats.aggregate(v2, rule.aggregate)
        return stats.compare(observed, 0.0, len(v2), ref.value, 0.0, ref.n, tolerance,
                             rule.min_effect, higher)
    noise_from = max(ctx.now - max(ctx.noise_window, len(v2) * ctx.module.interval),
                     warm_from(rule, ctx) - EPS)
    sd2 = noise.v2_noise(rule, ctx, noise_from, v2, ref, tolerance, higher)
    binomial = noise.binomial(ctx, rule.metric, noise_from, higher) \
        if rule.noise == "binomial" else None
    est = rule.estimator
    k = wander.factor(ctx, rule.metric)  # a wandering mean is known k times less well
    comp = stats.compare(stats.location(v2, sd2, est),
                         k * stats.standard_error(sd2, len(v2), est), len(v2), ref.value,
                         k * ref.se, ref.n, tolerance, rule.min_effect, higher)
    if binomial is not None:
        # a count of a few events a window: the normal z overstates a chance cluster (where
        # lower is worse, the events are the failures: 1 - rate against 1 - limit)
        events = counts.failures(v2, higher)
        limit = comp.limit if higher else 1.0 - comp.limit
        exact = noise.exact_z(rule, ctx, events, ref, limit, binomial[1])
        if exact is not None and exact < comp.z:
            comp = replace(comp, z=exact, p_value=stats.p_value_of(exact), exact=True)
    return comp


def _scan(rule: RelativeRule, ctx: EvalContext, width: float, earliest: float,
          tolerance: float, higher: bool) -> float | None:
    """The sequential scan over paired V2/V1 samples (or V2 against the baseline)."""
    start = max(ctx.now - width, earliest)
    v2s = ctx.series.get(Version.V2, rule.metric)
    floor = ctx.module.metrics[rule.metric].noise_floor
    v2, v1 = paired(ctx, rule.metric, start)
    noise_from = max(ctx.now - max(ctx.noise_window, width), earliest)
    if rule.against != "baseline" and len(v1) >= rule.min_samples:
        sd1 = noise.measured(ctx, Version.V1, rule.metric, ctx.now - max(ctx.noise_window, width),
                     v1, floor)
        reference: np.ndarray | float = v1
        level1 = float(np.median(v1))
        stored = small_share_reference(rule, ctx, level1, v1)
        if stored is not None:
            reference = v1 + (stored - level1)
        live = Reference("live_v1", level1, 0.0, len(v1), sd=sd1)
        sd2 = noise.v2_noise(rule, ctx, noise_from, v2, live, tolerance, higher, at_limit=False)
        sd = math.hypot(sd2, sd1)
    else:
        ref = reference_for(rule, ctx, start, width)
        if isinstance(ref, RuleResult) or ref.kind == "live_v1":
            return None
        v2 = v2s.window(start, ctx.now)[1]
        reference = ref.value
        sd = noise.measured(ctx, Version.V2, rule.metric, noise_from, v2, floor)
    if len(v2) < rule.min_samples or wander.thin(ctx, rule.metric, len(v2), ctx.now - start):
        return None
    allowed = tolerance if isinstance(reference, np.ndarray) or rule.baseline_tolerance is None \
        else rule.baseline_tolerance
    if higher:
        limit = np.maximum(np.multiply(reference, 1 + allowed),
                           np.add(reference, rule.min_effect))
        excess = v2 - limit
    else:
        limit = np.minimum(np.multiply(reference, 1 - allowed),
                           np.subtract(reference, rule.min_effect))
        excess = limit - v2
    return stats.scan(np.asarray(excess, dtype=float), sd * wander.factor(ctx, rule.metric))


def _summary(rule: RelativeRule, comp: stats.Comparison, ref: Reference, width: float) -> str:
    against = {"live_v1": "live V1", "baseline": "baseline",
               "baseline_rebased": "rebased baseline"}[ref.kind]
    sign = "+" if comp.effect >= 0 else ""
    text = (f"{rule.metric} {comp.observed:.4g} vs {against} {comp.reference:.4g} "
            f"({sign}{comp.effect:.1%}; limit {comp.limit:.4g}")
    if rule.test == "sequential":
        text += f", z={comp.z:.2f}, p={comp.p_value:.2g}"
    return text + f", n={comp.n_canary}/{comp.n_reference} over {width:g}s)"


def _round(x: float) -> float:
    return float(f"{x:.6g}") if math.isfinite(x) and x != 0 else x
