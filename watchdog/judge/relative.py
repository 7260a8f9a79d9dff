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

import functools
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from watchdog.baseline import Baseline
from watchdog.config.schema import RelativeRule
from watchdog.judge import counts, noise, stats, wander
from watchdog.judge.context import EPS, EvalContext, inconclusive, paired, span, too_few, warm_from
from watchdog.judge.disagree import disagreement
from watchdog.judge.series import Series
from watchdog.judge.warmup import stale_for, still_falling, warm_until, warming_in
from watchdog.model import Direction, RuleResult, Version


@dataclass(frozen=True)
class Reference:
    kind: str  # "live_v1", "baseline", "baseline_rebased"
    value: float
    se: float
    n: int
    note: str = ""
    paired: np.ndarray | None = None  # V2's samples at V1's instants (live_v1 only)
    sd: float = 0.0  # V1's noise per sample (live_v1 only)
    level: float = math.nan  # V1's own live level (live_v1 only; value may be the baseline)


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
        ref = _reference(rule, ctx, start, width)
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
        value_b, se_b = _baseline_level(baseline)
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


def _small_share_reference(rule: RelativeRule, ctx: EvalContext, level: float,
                           v1: np.ndarray) -> float | None:
    """The stored baseline's level, where it should replace live V1's, else None.

    A p95 of the few requests a small share serves reads low (an order statistic of a
    small sample). While V1 serves less than V2 (stages above 50 %), live V1's level of
    a ``per_request`` metric is therefore biased towards "better" and V2 looks worse
    than it is; V1's stored baseline (captured at full traffic) is the reference where it
    is worse than live V1. Like a rebased baseline, this only ever relaxes the limit.
    """
    share = ctx.traffic_percent
    spec = ctx.module.metrics[rule.metric]
    higher = spec.direction is not Direction.LOWER_IS_WORSE
    small = spec.per_request and share is not None and share > 50.0
    # a count of a few events a window (mostly zeros: thin traffic) reads as low as 0
    # (a parse rate as high as 1) for minutes by chance; its stored baseline says what
    # V1's rate really is
    sparse = rule.noise == "binomial" and len(v1) > 0 \
        and np.count_nonzero(counts.failures(v1, higher) == 0) >= counts.SPARSE_ZEROS * len(v1)
    if not small and not sparse:
        return None
    baseline = ctx.baselines.get(rule.metric)
    if baseline is None or baseline.expired(ctx.now):
        return None
    value = _baseline_level(baseline)[0]
    return value if (value > level) == higher and value != level else None


def _reference(rule: RelativeRule, ctx: EvalContext, start: float,
               width: float) -> Reference | RuleResult:
    v1s = ctx.series.get(Version.V1, rule.metric)
    # live V1 counts only at the same instants as V2's samples: V1 that stopped serving
    # (the 100 % stage) or has gaps is never compared with V2 from another time
    v2, v1 = paired(ctx, rule.metric, start)
    floor = ctx.module.metrics[rule.metric].noise_floor
    n_v2 = len(ctx.series.get(Version.V2, rule.metric).window(start, ctx.now)[1])
    # live V1 is the reference only where it covers at least half of V2's window (not
    # V1's last few samples before it stopped serving)
    if rule.against != "baseline" and len(v1) >= rule.min_samples and 2 * len(v1) >= n_v2:
        if rule.test == "none":
            return Reference("live_v1", stats.aggregate(v1, rule.aggregate), 0.0, len(v1),
                             paired=v2)
        sd1 = noise.measured(ctx, Version.V1, rule.metric,
                             ctx.now - max(ctx.noise_window, width), v1, floor)
        est = rule.estimator
        level = stats.location(v1, sd1, est)
        stored = _small_share_reference(rule, ctx, level, v1)
        note = "" if stored is None else (
            f"V1's level {level:.4g} reads better than its stored baseline {stored:.4g} "
            f"(V1 serves the smaller share, or its count is mostly zeros), which is the "
            f"reference")
        return Reference("live_v1", level if stored is None else stored,
                         stats.standard_error(sd1, len(v1), est), len(v1), note, paired=v2,
                         sd=sd1, level=level)
    if rule.against == "live":
        if _v1_retired(ctx, v1s, start):
            # V2 serves everything: there is no control group left for this rule. That is
            # not missing data, so it does not hold the rollout.
            return inconclusive(rule, "V1 no longer serves (V2 has all traffic); a rule "
                                      "against live V1 does not apply", inapplicable=True)
        return inconclusive(rule, f"{len(v1)} live V1 samples in window, need "
                                  f"{rule.min_samples}", n_v1=len(v1))
    baseline = ctx.baselines.get(rule.metric)
    if baseline is None:
        return inconclusive(rule, "no stored V1 baseline")
    if baseline.expired(ctx.now):
        return inconclusive(rule, f"stored baseline #{baseline.id} has expired")
    if rule.test == "none":
        value = baseline.stat(rule.aggregate)
        se = 0.0
    else:
        value, se = _baseline_level(baseline)
    last = v1s.last_time(ctx.now)
    if last is None or ctx.now - last > ctx.drift_lookback:
        return Reference("baseline", value, se, baseline.count)
    recent = v1s.since(last - ctx.noise_window, last)
    if len(recent) < rule.min_samples or value == 0:
        return Reference("baseline", value, se, baseline.count)
    sd1 = noise.window_sd(recent, recent, floor)
    level = stats.location(recent, sd1)
    drift = level / value - 1
    if rule.drift_guard is not None and abs(drift) > rule.drift_guard:
        return inconclusive(rule, f"V1 drifted {drift:+.1%} from its stored baseline "
                                  f"({level:.4g} vs {value:.4g}); baseline not trusted",
                            drift=round(drift, 4))
    higher = ctx.module.metrics[rule.metric].direction is not Direction.LOWER_IS_WORSE
    if (level > value) != higher:
        # V1 was doing better than its baseline: keep the baseline (never a stricter limit)
        return Reference("baseline", value, se, baseline.count,
                         f"V1's last live level {level:.4g} ({drift:+.1%}) kept the baseline")
    note = (f"baseline {value:.4g} rebased on V1's last live level {level:.4g} "
            f"({drift:+.1%}, {ctx.now - last:g}s ago)")
    return Reference("baseline_rebased", level, stats.standard_error(sd1, len(recent)),
                     len(recent), note)


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
        stored = _small_share_reference(rule, ctx, level1, v1)
        if stored is not None:
            reference = v1 + (stored - level1)
        live = Reference("live_v1", level1, 0.0, len(v1), sd=sd1)
        sd2 = noise.v2_noise(rule, ctx, noise_from, v2, live, tolerance, higher, at_limit=False)
        sd = math.hypot(sd2, sd1)
    else:
        ref = _reference(rule, ctx, start, width)
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


@functools.lru_cache(maxsize=64)
def _baseline_level(baseline: Baseline) -> tuple[float, float]:
    """The stored baseline's level and its standard error (computed once per baseline)."""
    values = baseline.values()
    sd_b = stats.noise_sd(values) if len(values) >= 3 else baseline.stddev
    value = stats.location(values, sd_b) if len(values) else baseline.mean
    return value, baseline.stddev / math.sqrt(max(baseline.count, 1))


def _v1_retired(ctx: EvalContext, v1s: Series, start: float) -> bool:
    """V1 no longer serves: V2 has all the traffic, or V1 stopped reporting (not a gap)."""
    if ctx.traffic_percent is not None and ctx.traffic_percent >= 100.0:
        return True
    last = v1s.last_time(ctx.now)
    return last is None or last <= start


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
