"""How far V1's level itself moves over time: the uncertainty of a reference taken at
another time than V2's window.

Live V1 is measured at the same instants as V2; the stored baseline (V1's hour before
the rollout) and the baseline rebased on V1's last live level are not. Where V1's level
wanders (a host's load, the time of day, a 20-minute level shift), such a reference says
where V1 *was*, not where it would be now, and its standard error (the baseline's
samples, as if V1's level never moved) is far too small: V2 at its own healthy level
reads tens of % "worse" than a baseline taken two hours earlier.

:func:`level_spread` measures that movement on V1's own history (its stored baseline's
samples and the live V1 it has reported since): the standard deviation of V1's level
between blocks of ``ref_spread_block`` seconds (each block's median), less the part that
is only the blocks' sampling noise. On white noise the block medians differ by that
sampling noise alone and the spread is 0 (no cost); on a wandering metric it is the
scale of the wander. relative.py adds it to a non-concurrent reference's standard error,
and the sustained-excess scan, which sums per-sample excesses and so cannot average away
an error common to all of them, compares V2 with that reference at the edge of its
confidence interval.

Assumes V1's level is stationary over its history (it wanders, but around one level):
the spread of its blocks then bounds where V1 would be now. It is measured on at least
``ref_spread_min_blocks`` blocks; with fewer the spread is 0 (the stored baseline's
standard error alone, as before).
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_right

import numpy as np

from watchdog.baseline import Baseline
from watchdog.judge import stats
from watchdog.judge.context import EvalContext, carried, fingerprint, step_end
from watchdog.judge.tuning import Tuning, tuning
from watchdog.model import Version


def v1_history(ctx: EvalContext, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """V1's samples known at this tick: its stored baseline's and the live ones (one
    value per instant, the live one where both have it; in time order)."""
    return _merged(*_parts(ctx, metric, ctx.now))


def _parts(ctx: EvalContext, metric: str, end: float
           ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """V1's live times and values up to ``end``, and its stored baseline's (None without
    one): what :func:`_merged` makes V1's history of."""
    series = ctx.series.get(Version.V1, metric)
    last = bisect_right(series.times, end)
    baseline = ctx.baselines.get(metric)
    base = _baseline_arrays(baseline) if baseline is not None and baseline.samples else None
    return series.t[:last], series.v[:last], base


def _merged(t_live: np.ndarray, v_live: np.ndarray,
            base: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    if base is None:
        return t_live, v_live
    t_base, v_base = base
    t_all = np.concatenate((t_live, t_base))
    v_all = np.concatenate((v_live, v_base))
    # np.unique keeps the first occurrence of each instant: the live sample
    t_unique, first = np.unique(t_all, return_index=True)
    return t_unique, v_all[first]


@functools.lru_cache(maxsize=64)
def _baseline_arrays(baseline: Baseline) -> tuple[np.ndarray, np.ndarray]:
    return np.array([t for t, _ in baseline.samples], dtype=float), baseline.values()


def level_spread(ctx: EvalContext, metric: str) -> float:
    """The standard deviation of V1's level between blocks, beyond their sampling noise
    (0 on white noise, and where V1's history holds too few blocks), over V1's history up
    to the last whole ``v1_step`` (a slow property of V1: computed once for the ticks of
    that step, and once a tick per metric at most)."""
    settings = tuning()
    if not settings.ref_spread:
        return 0.0
    key = ("refspread", metric)
    if key not in ctx.memo:
        t_live, v_live, base = _parts(ctx, metric, step_end(ctx))
        ctx.memo[key] = carried(ctx, key, fingerprint(t_live, v_live, *(base or ())),
                                lambda: _spread(*_merged(t_live, v_live, base), settings))
    spread: float = ctx.memo[key]
    return spread


def _spread(times: np.ndarray, values: np.ndarray, settings: Tuning) -> float:
    if len(values) == 0:
        return 0.0
    index = np.floor((times - times[0]) / settings.ref_spread_block).astype(int)
    bounds = np.flatnonzero(np.diff(index)) + 1  # times are sorted: blocks are runs
    medians: list[float] = []
    sampling: list[float] = []
    for part in np.split(values, bounds):
        if len(part) < settings.ref_spread_min_samples:
            continue
        median = stats.median(part)
        medians.append(median)
        # the variance of a median of n samples: (pi / 2) sd^2 / n (normal noise), the
        # sd read robustly (MAD) so a block's spikes do not count as its noise
        mad = stats.median(np.abs(part - median))
        sampling.append((math.pi / 2) * (stats.MAD_TO_SD * mad) ** 2 / len(part))
    if len(medians) < settings.ref_spread_min_blocks:
        return 0.0
    between = float(np.var(medians, ddof=1))
    return math.sqrt(max(0.0, between - float(np.mean(sampling))))
