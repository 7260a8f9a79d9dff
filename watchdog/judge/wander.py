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
from watchdog.judge.context import EvalContext, carried, fingerprint, paired, step_end
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
    if not tuning().wander:
        return 1.0
    k = _of_v1(ctx, metric)
    if k > 1.0:
        # wander that V1 and V2 share (load moving both) cancels in V2 - V1: where the
        # differences over V2's life wander less, that is the factor
        k = min(k, _of_differences(ctx, metric))
    return k


def _of_differences(ctx: EvalContext, metric: str) -> float:
    """The factor of V2 - V1 at the same instants over V2's life (at most wander_span);
    infinite (no limit) with too few such pairs."""
    settings = tuning()
    start = max(ctx.started_at, ctx.now - settings.wander_span)
    v2, v1 = paired(ctx, metric, start)
    if len(v2) < settings.wander_min_samples:
        return math.inf
    return of_values(v2 - v1)


def _of_v1(ctx: EvalContext, metric: str) -> float:
    """The factor of V1's last ``wander_span`` seconds up to the last whole ``v1_step``
    (a slow property of V1's host: the same for every tick of that step, so computed once
    for them), or of its stored baseline where V1 has too few samples there."""
    settings = tuning()
    end = step_end(ctx)
    values = ctx.series.get(Version.V1, metric).values(end - settings.wander_span, end)
    if len(values) < settings.wander_min_samples:
        baseline = ctx.baselines.get(metric)
        if baseline is None or len(baseline.samples) < settings.wander_min_samples:
            return 1.0
        values = baseline.values()
    return float(carried(ctx, ("wander", metric), fingerprint(values),
                         lambda: of_values(values)))


def of_values(values: np.ndarray) -> float:
    """sqrt(long-run variance) over successive-difference noise, in [1, MAX_FACTOR]."""
    settings = tuning()
    sd = stats.noise_sd(values)
    if not sd > 0:
        return 1.0
    # single spikes are no wander (the levels judged are robust to them): clipped first
    centre = stats.median(values)
    scale = settings.wander_clip * stats.MAD_TO_SD * stats.median(np.abs(values - centre))
    if scale > 0:
        values = np.clip(values, centre - scale, centre + scale)
    long_run = hac.estimate(values).long_run_sd
    if not math.isfinite(long_run):
        return 1.0
    # on white noise the ratio scatters above 1 by chance (90 % below 1 + 2.6 / sqrt(n)):
    # only what stands out of that counts, so white noise costs nothing
    k = long_run / sd - settings.wander_deadband / math.sqrt(len(values))
    return min(max(k, 1.0), settings.wander_max_factor)


def thin(ctx: EvalContext, metric: str, n: int, seconds: float) -> bool:
    """A window of ``n`` samples over ``seconds`` holds too few effective samples (n / k^2)
    to act on. A window as long as the longest one allowed (``wander_max_window``) is
    always acted on, with its wander-scaled standard error: a strongly wandering metric
    is judged slowly, never not at all."""
    settings = tuning()
    k = factor(ctx, metric)
    return k > 1.0 and n / (k * k) < settings.wander_min_effective_n \
        and seconds < settings.wander_full * settings.wander_max_window


def stretched(window: float, k: float) -> float:
    """A long window stretched to hold as many effective samples as on white noise."""
    return min(window * k * k, max(window, tuning().wander_max_window))


def recent_v1(ctx: EvalContext, metric: str) -> tuple[list[float], np.ndarray]:
    """V1's last ``wander_span`` seconds, or its stored baseline where V1 has too few."""
    settings = tuning()
    times, values = ctx.series.get(Version.V1, metric).window(ctx.now - settings.wander_span,
                                                             ctx.now)
    if len(values) < settings.wander_min_samples:
        baseline = ctx.baselines.get(metric)
        if baseline is not None and len(baseline.samples) >= settings.wander_min_samples:
            return [t for t, _ in baseline.samples], baseline.values()
    return times, values


def episode_span(ctx: EvalContext, metric: str, tolerance: float, width: float) -> float:
    """How long V1's own level stays beyond ``tolerance`` of its usual level: the longest
    run of V1's ``width``-second rolling medians more than ``tolerance`` from V1's median
    over its history (seconds, at most ``episode_max``; 0 when V1 never strays).

    One host's level episodes last 10-30 minutes on real hosts; a regression lasts. A
    breach must hold over a window this long to count (relative.py): V2's excess must
    outlast the excursions V1 itself makes, which carry no regression.
    """
    settings = tuning()
    if not settings.episodes:
        return 0.0
    key = ("episode", metric, tolerance, width)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = _episode(recent_v1(ctx, metric), tolerance, width)
    return float(found)


def _episode(history: tuple[list[float], np.ndarray], tolerance: float,
             width: float) -> float:
    return min(longest_stray(*history, tolerance, width), tuning().episode_max)


def longest_stray(times: list[float] | np.ndarray, values: np.ndarray, tolerance: float,
                  width: float, half_overlap: bool = False) -> float:
    """The longest run of ``width``-second medians of ``values`` more than ``tolerance``
    (a fraction) from their overall median, in seconds; 0 when none strays that far or
    the history is too short. A median per sample, or with ``half_overlap`` one every
    half window (cheap on long histories)."""
    if len(values) < tuning().wander_min_samples:
        return 0.0
    spacing = stats.median(np.diff(np.asarray(times, dtype=float)))
    k = max(round(width / spacing), 1)
    if len(values) < 2 * k:
        return 0.0
    centre = stats.median(values)
    if centre == 0:
        return 0.0
    stride = max(k // 2, 1) if half_overlap else 1
    rolling = np.median(np.lib.stride_tricks.sliding_window_view(values, k)[::stride], axis=1)
    out = np.abs(rolling / centre - 1.0) > tolerance
    longest = run = 0
    for flag in out.tolist():
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return ((longest - 1) * stride + k) * spacing if longest else 0.0
