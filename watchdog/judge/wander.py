"""How much slower than white noise a metric's window mean settles: the wander factor.

The relative rules measure noise from successive differences (stats.noise_sd), which is
right for white noise: the standard error of an n-sample mean is sd / sqrt(n). Real
host metrics wander (lag-1 autocorrelation 0.15-0.76 for latency, level episodes of
10-30 minutes), so a window's mean is known far less well than that: its standard error
is sqrt(LRV / n), with LRV the long-run variance (hac.py).

The **wander factor** ``k = sqrt(LRV) / noise_sd``, less a chance margin, at least 1, is
measured on live V1's history (the last ``wander_span`` seconds, V1's stored baseline
where V1 has too few samples): V1 is the same kind of host as V2, and unlike V2 it
carries no regression, so a regression never reads as wander. On white noise k is 1 and
changes nothing. On a wandering metric, the relative rules (relative.py) multiply their
standard errors and the scan's noise by k, and stretch their long window by k^2 (capped
at ``wander_max_window``): a window holding as many *effective* samples as the
configured one holds on white noise.
"""

from __future__ import annotations

import math

import numpy as np

from watchdog.judge import hac, stats
from watchdog.judge.context import EvalContext
from watchdog.judge.tuning import tuning
from watchdog.model import Version


def factor(ctx: EvalContext, metric: str) -> float:
    """The wander factor of ``metric`` (1.0 when it cannot be measured), once a tick."""
    key = ("wander", metric)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = _measure(ctx, metric)
    return float(found)


def _measure(ctx: EvalContext, metric: str) -> float:
    settings = tuning()
    if not settings.wander:
        return 1.0
    values = ctx.series.get(Version.V1, metric).window(ctx.now - settings.wander_span,
                                                      ctx.now)[1]
    if len(values) < settings.wander_min_samples:
        baseline = ctx.baselines.get(metric)
        if baseline is None or len(baseline.samples) < settings.wander_min_samples:
            return 1.0
        values = baseline.values()
    return of_values(values)


def of_values(values: np.ndarray) -> float:
    """sqrt(long-run variance) over successive-difference noise, in [1, MAX_FACTOR]."""
    settings = tuning()
    sd = stats.noise_sd(values)
    if not sd > 0:
        return 1.0
    long_run = hac.estimate(values).long_run_sd
    if not math.isfinite(long_run):
        return 1.0
    # on white noise the ratio scatters above 1 by chance (90 % below 1 + 2.6 / sqrt(n)):
    # only what stands out of that counts, so white noise costs nothing
    k = long_run / sd - settings.wander_deadband / math.sqrt(len(values))
    return min(max(k, 1.0), settings.wander_max_factor)


def stretched(window: float, k: float) -> float:
    """A long window stretched to hold as many effective samples as on white noise."""
    return min(window * k * k, max(window, tuning().wander_max_window))
