"""The sustained-excess scan of a relative rule (``scan_threshold``).

A short window catches a big shift, the long window a small one; a moderate excess that
holds over many samples, each too small to stand out, is what the scan is for: a
one-sided CUSUM of V2's excess over the rule's limit, in units of the noise per sample
(the wander factor included), whose maximum is compared with ``scan_threshold``
(relative.py reports it and ruling.py lets it breach where the z does not).
"""

from __future__ import annotations

import math

import numpy as np

from watchdog.config.schema import RelativeRule
from watchdog.judge import noise, stats, wander
from watchdog.judge.context import EvalContext, paired
from watchdog.judge.reference import Reference, ReferenceKind, reference_for, small_share_reference
from watchdog.model import RuleResult, Version


def sustained(rule: RelativeRule, ctx: EvalContext, width: float, earliest: float,
              tolerance: float, higher: bool) -> float | None:
    """The scan statistic (stats.scan) of V2's excess over the rule's limit across the
    last ``width`` seconds (from ``earliest`` at most): paired with live V1 sample by
    sample while V1 serves, else against the stored baseline at the edge of its
    confidence interval. None where it cannot be computed (too few or too thin samples,
    no reference)."""
    start = max(ctx.now - width, earliest)
    v2s = ctx.series.get(Version.V2, rule.metric)
    floor = ctx.module.metrics[rule.metric].noise_floor
    v2, v1 = paired(ctx, rule.metric, start)
    noise_from = max(ctx.now - max(ctx.noise_window, width), earliest)
    if rule.against != "baseline" and len(v1) >= rule.min_samples:
        sd1 = noise.measured(ctx, Version.V1, rule.metric,
                             ctx.now - max(ctx.noise_window, width), v1, floor)
        reference: np.ndarray | float = v1
        level1 = stats.median(v1)
        stored = small_share_reference(rule, ctx, level1, v1)
        if stored is not None:
            reference = v1 + (stored - level1)
        live = Reference(ReferenceKind.LIVE_V1, level1, 0.0, len(v1), sd=sd1)
        sd2 = noise.v2_noise(rule, ctx, noise_from, v2, live, tolerance, higher, at_limit=False)
        sd = math.hypot(sd2, sd1)
    else:
        ref = reference_for(rule, ctx, start, width)
        if isinstance(ref, RuleResult) or ref.kind is ReferenceKind.LIVE_V1:
            return None
        v2 = v2s.values(start, ctx.now)
        # a CUSUM sums per-sample excesses and cannot average away the error common to
        # all of them: a reference that moves over time (refspread.py) enters at the edge
        # of its confidence interval
        edge = stats.z_critical(rule.alpha) * ref.spread
        reference = ref.value + (edge if higher else -edge)
        sd = noise.measured(ctx, Version.V2, rule.metric, noise_from, v2, floor)
    if len(v2) < rule.min_samples or wander.thin(ctx, rule.metric, len(v2), ctx.now - start):
        return None
    allowed = tolerance if isinstance(reference, np.ndarray) or rule.baseline_tolerance is None \
        else rule.baseline_tolerance
    limit = stats.limits_of(reference, allowed, rule.min_effect, higher)
    excess = v2 - limit if higher else limit - v2
    return stats.scan(np.asarray(excess, dtype=float), sd * wander.factor(ctx, rule.metric))
