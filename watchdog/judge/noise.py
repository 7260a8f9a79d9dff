"""Noise per sample for the relative rules: V2's own, pooled with what V1's implies.

A relative rule's test needs each version's noise per sample. It is measured from
successive differences (stats.noise_sd), once a tick per version and start (the rule's
windows share it). For a ``per_request`` metric compared with live V1, V2's noise at its
current traffic share is pooled with what V1's noise implies at that share; for
``noise: binomial`` it is moved to the rule's limit (a score test), with V1's plain noise
where its robust one reads a count of mostly zeros as silent, or, where V1 has no events
at all, from the requests V2's own non-zero samples imply (count_model); exact_z runs the
exact count test on the requests a sample V2's zeros or live V1's noise imply.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from watchdog.config.schema import RelativeRule
from watchdog.judge import counts, stats
from watchdog.judge.context import EPS, EvalContext
from watchdog.model import Version

if TYPE_CHECKING:
    from watchdog.judge.reference import Reference

BINOMIAL_MIN = 0.7  # noise: binomial never shrinks V2's measured noise below this share
SHARE_PRIOR = 5.0  # per_request: V1's noise scaled to V2's share counts as this many samples


def binomial(ctx: EvalContext, metric: str, start: float,
             higher: bool = True) -> tuple[float, float | None]:
    """V2's mean over its noise window and, for a sparse count, its requests a sample
    (counts.sparse_requests: a cluster has no zeros of its own, so both are read off the
    noise window), once a tick: the rule's windows share it. A rate where lower is worse
    (parsed / received) counts its failures, 1 - rate."""
    key = ("binomial", metric, start, higher)
    found = ctx.memo.get(key)
    if found is None:
        recent = ctx.series.get(Version.V2, metric).values(start, ctx.now)
        found = ctx.memo[key] = (stats.mean(recent),
                                 counts.sparse_requests(counts.failures(recent, higher)))
    return found


def binomial_factor(rule: RelativeRule, level: float, reference: float, tolerance: float,
                    higher: bool) -> float:
    """How V2's noise would scale if its rate were at the limit (``noise: binomial``).

    A ratio of counts (failed / served) has a binomial noise, sqrt(p (1 - p) / n): measured
    at V2's own ``level`` (its mean over the noise window), it is too large to test "V2 is
    at the limit" when V2 runs well above it. The factor sqrt(L (1 - L) / (p (1 - p)))
    takes it to the limit L (a score test), kept within [BINOMIAL_MIN, 1]: the noise is
    never made larger than measured, nor shrunk below BINOMIAL_MIN of it.
    """
    factor = _at_limit(level, stats.limit_of(reference, tolerance, rule.min_effect, higher))
    return 1.0 if factor is None else min(max(factor, BINOMIAL_MIN), 1.0)


def _at_limit(level: float, limit: float) -> float | None:
    """sqrt(L (1 - L) / (p (1 - p))): a binomial noise at ``level`` p moved to ``limit`` L."""
    if not 0 < level < 1 or not 0 < limit < 1:
        return None
    return math.sqrt(limit * (1 - limit) / (level * (1 - level)))


def v2_noise(rule: RelativeRule, ctx: EvalContext, noise_from: float, v2: np.ndarray,
             ref: Reference, tolerance: float, higher: bool, at_limit: bool = True) -> float:
    """V2's noise per sample, at the rule's limit for ``noise: binomial``.

    Measured from V2's successive differences since ``noise_from``. For a ``per_request``
    metric compared with live V1, V2's own measurement covers only its current traffic
    share (the previous stage's samples are noisier or quieter) and is pooled with what
    V1's noise implies at V2's share (:func:`share_model`, worth SHARE_PRIOR samples): a
    few samples early in a stage cannot make V2 look almost noiseless, and samples of
    another share do not blur it.
    """
    spec = ctx.module.metrics[rule.metric]
    to_limit = at_limit and rule.noise == "binomial"
    model = share_model(rule, ctx, ref, tolerance, higher, to_limit)
    start = noise_from
    if model is not None and ctx.stage_started_at is not None:
        start = max(noise_from, ctx.stage_started_at - EPS)
    if model is None and to_limit and not ref.sd > 0:
        model = count_model(rule, ctx, ref, start, tolerance, higher)
    if model is None:
        sd2 = measured(ctx, Version.V2, rule.metric, start, v2, spec.noise_floor)
        recent_n = ctx.memo.get(("count", Version.V2, rule.metric, start), len(v2))
        sample = v2
    else:
        sample = ctx.series.get(Version.V2, rule.metric).values(start, ctx.now)
        recent_n = len(sample)
        sd2 = recent_sd(ctx, Version.V2, rule.metric, start)
    expected = (ctx.now - start) / ctx.module.interval
    if recent_n < expected / 2 and len(sample) > 1:
        # sparse data (thin traffic leaves windows empty): successive differences of a few
        # scattered samples understate the noise, so the window's own scatter is a floor
        sd2 = max(sd2, float(np.std(sample, ddof=1)))
    if to_limit and not math.isnan(sd2):
        sd2 *= binomial_factor(rule, binomial(ctx, rule.metric, noise_from, higher)[0], ref.value,
                               tolerance, higher)
    if model is None:
        return sd2
    own = 0 if math.isnan(sd2) else recent_n - 1
    pooled = (SHARE_PRIOR * model**2 + (own * sd2**2 if own else 0.0)) / (SHARE_PRIOR + own)
    return max(math.sqrt(pooled), spec.noise_floor)


def share_model(rule: RelativeRule, ctx: EvalContext, ref: Reference, tolerance: float,
                higher: bool, binomial: bool) -> float | None:
    """V2's noise as live V1's implies it (``per_request`` metrics), or None.

    A p95 or a ratio of counts over the requests of a window is noisier the fewer
    requests a version serves: V2's per-sample noise is V1's times sqrt(V1's share / V2's
    share), and for ``noise: binomial`` at the limit rather than at V1's rate. V1's noise
    is measured over many samples (for ``noise: binomial`` the larger of its robust and
    plain successive-difference noise: a count of mostly zeros reads as silent robustly).
    """
    share = ctx.traffic_percent
    if not ctx.module.metrics[rule.metric].per_request or not ref.live \
            or share is None or not 0 < share < 100 or not ref.sd > 0:
        return None
    sd1 = ref.sd
    if rule.noise == "binomial":
        # a count of a few events a sample (mostly zeros) reads far too quiet by the
        # robust noise: V1's plain noise is the binomial one (exact_z reads it too)
        plain = _plain(ctx, rule.metric)[0]
        if not math.isnan(plain):
            sd1 = max(sd1, plain)
    model = sd1 * math.sqrt((100.0 - share) / share)
    if binomial:
        factor = _at_limit(ref.value, stats.limit_of(ref.value, tolerance, rule.min_effect,
                                                     higher))
        if factor is None:
            return None
        model *= factor
    return model


def count_model(rule: RelativeRule, ctx: EvalContext, ref: Reference, start: float,
                tolerance: float, higher: bool) -> float | None:
    """V2's noise at the limit as its own samples imply it, where V1's do not (``noise:
    binomial``), or None.

    V1 whose rate does not move at all (no errors in any sample) says nothing of the
    requests a sample, and a few V2 samples that happen to be alike (three in a row with
    one error in about 100 requests) read as almost noiseless: z=109 for a V2 at the
    rule's limit. A rate of ``k`` events in ``n`` requests is ``k / n``; reading each
    non-zero V2 sample as one event (``n = median(1 / rate)``: the fewest requests, so
    the most noise, the data allow) gives the binomial noise at the limit L,
    sqrt(L (1 - L) / n), which v2_noise pools with V2's own as it pools the share model.
    """
    level = ref.level if ref.live else ref.value
    if (level if higher else 1.0 - level) != 0:
        return None  # V1 has events: its noise (share_model) or V2's speak for the count
    values = counts.failures(ctx.series.get(Version.V2, rule.metric).values(start, ctx.now),
                             higher)
    nonzero = values[values > 0]
    limit = stats.limit_of(ref.value, tolerance, rule.min_effect, higher)
    limit = limit if higher else 1.0 - limit
    if not len(nonzero) or not 0 < limit < 1:
        return None
    return math.sqrt(limit * (1 - limit) * stats.median(nonzero))


def measured(ctx: EvalContext, version: Version, metric: str, start: float,
             window: np.ndarray, floor: float) -> float:
    """Noise of one version's metric since ``start``, computed once per tick."""
    key = ("noise", version, metric, start, floor)
    found = ctx.memo.get(key)
    if found is None:
        n = ctx.memo[("count", version, metric, start)] = ctx.series.get(version, metric).count(
            start, ctx.now)
        sd = recent_sd(ctx, version, metric, start) if n >= len(window) \
            else stats.noise_sd(window)
        found = ctx.memo[key] = _floored(sd, window, floor)
    return float(found)


def recent_sd(ctx: EvalContext, version: Version, metric: str, start: float) -> float:
    """stats.noise_sd of one version's samples since ``start`` (NaN under 3), once a tick:
    the rules on one metric and their windows read it alike."""
    key = ("sd", version, metric, start)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = stats.noise_sd(ctx.series.get(version, metric).values(start,
                                                                                      ctx.now))
    return float(found)


def window_sd(recent: np.ndarray, window: np.ndarray, floor: float) -> float:
    """Successive-difference noise of ``recent`` (of ``window`` when that is longer)."""
    return _floored(stats.noise_sd(recent if len(recent) >= len(window) else window), window,
                    floor)


def _floored(sd: float, window: np.ndarray, floor: float) -> float:
    """A successive-difference noise with its fallbacks: the window's scatter where it is
    NaN (too few samples), and the metric's floor."""
    if math.isnan(sd):
        sd = float(np.std(window, ddof=1)) if len(window) > 1 else 0.0
    return max(sd, floor)


def exact_z(rule: RelativeRule, ctx: EvalContext, v2: np.ndarray, ref: Reference,
            limit: float, sparse: float | None) -> float | None:
    """The exact count test's z (``noise: binomial``), or None where it does not apply.

    Requests a sample are read off V2's noise window where it is a sparse count
    (``sparse``), else, against live V1 for a ``per_request`` metric at a known share,
    off V1's noise (counts.implied_requests) where the window is expected to hold fewer
    than IMPLIED_MAX events at the limit: V2's samples need not be mostly zeros for a
    window of a few events to be far from normal.
    """
    if sparse is not None:
        return counts.count_z(v2, sparse, limit)
    if not ref.live or ctx.traffic_percent is None \
            or not ctx.module.metrics[rule.metric].per_request:
        return None
    plain = _plain_upper(ctx, rule.metric)
    if math.isnan(plain):
        return None
    per_sample = counts.implied_requests(ref.level, max(ref.sd, plain), ctx.traffic_percent)
    if per_sample is None or limit * per_sample * len(v2) >= counts.IMPLIED_MAX:
        return None
    return counts.count_z(v2, per_sample, limit)


def _plain_upper(ctx: EvalContext, metric: str) -> float:
    """Live V1's noise as its plain successive differences give it over the noise window,
    one standard error above the estimate (NaN under 3 samples), once a tick: the robust
    noise reads a count of a few events a sample as less noisy than it is, and noise that
    reads low by chance would imply too many requests."""
    plain, n = _plain(ctx, metric)
    return plain * math.sqrt(1 + math.sqrt(2 / (n - 2))) if n >= 3 else math.nan


def _plain(ctx: EvalContext, metric: str) -> tuple[float, int]:
    """Live V1's plain successive-difference noise over the noise window and its sample
    count (NaN under 3 samples), once a tick."""
    key = ("plain", metric)
    found = ctx.memo.get(key)
    if found is None:
        v1 = ctx.series.get(Version.V1, metric).values(ctx.now - ctx.noise_window, ctx.now)
        sd = math.nan
        if len(v1) >= 3:  # np.mean(np.diff(v1) ** 2): the same value, without the dispatch
            diffs = v1[1:] - v1[:-1]
            sd = math.sqrt(float((diffs * diffs).sum()) / len(diffs) / 2)
        found = ctx.memo[key] = (sd, len(v1))
    return found
