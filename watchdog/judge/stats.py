"""Robust, noise-aware statistics for comparing a canary with its reference.

The canary's samples are far noisier than V1's at a small traffic share, and both carry
single-window spikes. So:

* location is robust: the median of a short window (two spikes in six samples cannot move
  it), and for longer windows a mean winsorised at 3 noise units around the median (spikes
  are clipped, yet a skewed, sparse error count is not biased the way a trimmed mean is);
* noise is measured from successive differences (winsorised), which a level shift or a
  slow trend does not inflate and which grows by itself when traffic is thin;
* a comparison is a one-sided z statistic of "worse by more than the tolerance", with
  its p-value from the standard library's normal distribution (scipy.stats costs 1.5 s
  to import, more than a whole backtest).
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_right
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# ndarray.sum(), .min() and .cumsum() are these ufunc methods behind a Python-level
# wrapper; called directly they give the same values at less than half the overhead
_SUM, _LOWEST, _RUNNING = np.add.reduce, np.minimum.reduce, np.add.accumulate
MAD_TO_SD = 1.4826
_Q75_TO_SD = 1 / 1.1503  # the 75th percentile of |X| for X ~ N(0, 1) is 1.1503
_NORMAL = NormalDist()


def aggregate(values: np.ndarray, how: str) -> float:
    if how == "mean":
        return float(values.mean())
    if how in ("median", "p50"):
        return float(np.median(values))
    if how in ("p90", "p95", "p99"):
        return float(np.percentile(values, float(how[1:])))
    if how == "min":
        return float(values.min())
    if how == "max":
        return float(values.max())
    if how == "last":
        return float(values[-1])
    raise ValueError(f"unknown aggregate {how!r}")


def _median(values: np.ndarray) -> float:
    """Median of a small non-empty array without NaN (np.median's overhead dominates at
    these sizes); :func:`median` is the checked one, np.median's value for any array."""
    return _middle(_sorted(values))


def mean(values: np.ndarray) -> float:
    """``float(np.mean(values))`` of a float array, the same value (NaN when empty), without
    np.mean's dispatch (five times the work of the sum on the judge's small arrays)."""
    n = len(values)
    return float(_SUM(values)) / n if n else math.nan


def median(values: np.ndarray) -> float:
    """``float(np.median(values))``, the same value, at a fraction of its cost on the small
    arrays the judge reads every tick (np.median's dispatch and checks dominate there):
    NaN for an empty array or one holding a NaN, as np.median gives."""
    ordered = _sorted(np.asarray(values, dtype=float))
    if not len(ordered):
        return math.nan
    if math.isnan(ordered[-1]):  # a NaN sorts last
        return math.nan
    return _middle(ordered) + 0.0  # numpy's mean starts from +0.0: a median of -0.0 is 0.0


def _sorted(values: np.ndarray) -> np.ndarray:
    ordered = values.copy()  # what np.sort does, without its dispatch overhead
    ordered.sort()
    return ordered


def _middle(ordered: np.ndarray) -> float:
    """Median of an already sorted array."""
    n = len(ordered)
    mid = n // 2
    return float(ordered[mid]) if n % 2 else float(ordered[mid - 1] + ordered[mid]) / 2.0


def _within(ordered: np.ndarray, low: float, high: float) -> bool:
    """Every value of a sorted array lies in [low, high] (so clipping to it changes nothing;
    a NaN, sorted last, is never within)."""
    return bool(ordered[0] >= low and ordered[-1] <= high)


def noise_sd(values: np.ndarray) -> float:
    """Per-sample noise from successive differences, robust to spikes and level shifts."""
    if len(values) < 3:
        return math.nan
    diffs = values[1:] - values[:-1]
    ordered = _sorted(diffs)
    deviations = ordered - _middle(ordered)  # |diff - median|, in another order: the
    np.abs(deviations, out=deviations)  # same values, so the same median
    deviations.sort()
    # the scale that sets the clipping distance: the MAD, or the upper quartile of the
    # deviations where that is larger. Sparse counts (an error rate of a few requests a
    # window) give many differences of exactly 0, so their MAD is far below their real
    # scatter and clipping at it would shrink the noise estimate by half.
    spread = max(MAD_TO_SD * _middle(deviations),
                 _Q75_TO_SD * float(deviations[(3 * (len(deviations) - 1)) // 4]))
    if spread > 0 and not _within(ordered, -4 * spread, 4 * spread):
        diffs = np.minimum(np.maximum(diffs, -4 * spread), 4 * spread)
    return math.sqrt(float(np.dot(diffs, diffs)) / (2.0 * len(diffs)))


SMALL = 10  # below this many samples the location is the median
CLIP = 3.0  # winsorising distance, in noise units


def location(values: np.ndarray, sd: float, estimator: str = "robust") -> float:
    """Level of a window.

    ``robust``: the median for fewer than SMALL samples, else a winsorised mean.
    ``winsorised``: a mean winsorised at CLIP noise units around the median at any size
    (for rates such as errors, whose spikes a minimum effect already absorbs and whose
    bursts a median would hide).
    """
    n = len(values)
    if not n:
        return math.nan
    if not sd > 0 or n < 5 or (n < SMALL and estimator == "robust"):
        return _median(values) if n >= 3 else float(_SUM(values)) / n
    ordered = _sorted(values)
    centre = _middle(ordered)
    low, high = centre - CLIP * sd, centre + CLIP * sd
    if _within(ordered, low, high):
        return float(_SUM(values)) / n
    clipped = np.minimum(np.maximum(values, low), high)
    return float(_SUM(clipped)) / n


def standard_error(sd: float, n: int, estimator: str = "robust") -> float:
    """Standard error of :func:`location` over ``n`` samples with noise ``sd``."""
    efficiency = 0.95 if n >= SMALL or (estimator != "robust" and n >= 5) else 0.64
    return sd / math.sqrt(max(n, 1) * efficiency)


@dataclass(frozen=True)
class Comparison:
    """Canary vs reference: is the canary worse by more than the tolerance?"""

    observed: float
    reference: float
    limit: float
    effect: float
    z: float
    p_value: float
    se: float
    n_canary: int
    n_reference: int
    exact: bool = False  # z and p from the exact Poisson test of a sparse count

    def as_dict(self) -> dict[str, float | int]:
        found: dict[str, float | int] = {
            "observed": _round(self.observed), "reference": _round(self.reference),
            "limit": _round(self.limit), "effect": _round(self.effect),
            "z": round(self.z, 3), "p_value": float(f"{self.p_value:.3g}"),
            "se": _round(self.se), "n_v2": self.n_canary, "n_ref": self.n_reference,
        }
        if self.exact:
            found["poisson"] = 1
        return found


def compare(canary: float, canary_se: float, n_canary: int, reference: float,
            reference_se: float, n_reference: int, tolerance: float, min_effect: float,
            higher_is_worse: bool) -> Comparison:
    """One-sided test of H0 "canary within tolerance of reference" against "worse".

    The limit is ``reference * (1 + tolerance)`` (or ``1 - tolerance`` when lower is
    worse), moved at least ``min_effect`` away from the reference in absolute terms so a
    zero baseline still has a meaningful limit.
    """
    limit = limit_of(reference, tolerance, min_effect, higher_is_worse)
    excess = canary - limit if higher_is_worse else limit - canary
    # the limit's standard error: the reference's, scaled as the limit is. Where min_effect
    # binds (limit = reference + min_effect) this overstates it (the limit then moves one
    # for one with the reference); docs/judge.md measures the exact slope and why it is
    # kept. hypot: a reference of 1e-242 under a 0.003 floor scales by 1e239, whose
    # square overflows (the se is then huge and z about 0: no breach, no crash)
    scale = limit / reference if reference > 0 else 1.0
    se = math.hypot(canary_se, scale * reference_se if reference_se > 0 else 0.0)
    if se > 0:
        z = excess / se
    else:
        z = math.inf if excess > 0 else (-math.inf if excess < 0 else 0.0)
    p_value = p_value_of(z)
    effect = (canary - reference) / reference if reference != 0 else math.copysign(
        math.inf, canary - reference) if canary != reference else 0.0
    return Comparison(canary, reference, limit, effect, float(z), p_value, se, n_canary,
                      n_reference)


def limit_of(reference: float, tolerance: float, min_effect: float,
             higher_is_worse: bool) -> float:
    """The rule's limit: the reference worsened by ``tolerance``, and by ``min_effect`` at
    least."""
    if higher_is_worse:
        return max(reference * (1 + tolerance), reference + min_effect)
    return min(reference * (1 - tolerance), reference - min_effect)


def limits_of(reference: np.ndarray | float, tolerance: np.ndarray | float,
              min_effect: float, higher_is_worse: bool) -> np.ndarray:
    """:func:`limit_of` sample by sample (references or tolerances per sample)."""
    ref = np.asarray(reference, dtype=float)
    if higher_is_worse:
        return np.maximum(ref * (1 + tolerance), ref + min_effect)
    return np.minimum(ref * (1 - tolerance), ref - min_effect)


def p_value_of(z: float) -> float:
    """One-sided upper-tail p-value of a standard normal statistic."""
    if math.isinf(z):
        return 0.0 if z > 0 else 1.0
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@functools.lru_cache(maxsize=256)
def z_critical(alpha: float) -> float:
    """The one-sided critical z for ``alpha``. An alpha below the float resolution of 1
    (a tiny alpha split over very many looks) reads off the lower tail instead, where
    1 - alpha would round to 1 and have no quantile."""
    if alpha > 0.0 and 1.0 - alpha < 1.0:
        return _NORMAL.inv_cdf(1.0 - alpha)
    return -_NORMAL.inv_cdf(max(alpha, 1e-300))


def theil_sen_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Median of the slopes between every pair of points (Theil-Sen estimator)."""
    i, j = _pairs(len(x))
    dx = x[j] - x[i]
    keep = dx != 0
    slopes = (y[j] - y[i])[keep] / dx[keep]
    ordered = _sorted(slopes)
    if not len(ordered) or math.isnan(ordered[-1]):  # np.median's answer (NaN) for these
        return float(np.median(slopes))
    return _middle(ordered)


@functools.lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i, j) of every pair i < j of n points (read only: shared between calls)."""
    i, j = np.triu_indices(n, k=1)
    i.flags.writeable = j.flags.writeable = False
    return i, j


@dataclass(frozen=True)
class Growth:
    """Growth of a lower envelope: fraction of its level per hour, with its evidence."""

    per_hour: float
    minima: list[float]
    z: float | None  # against the limit; None with too few blocks for a noise estimate
    level: float
    recent_per_hour: float | None = None  # over the newest blocks but the oldest (4+ blocks)


def growth_per_hour(times: list[float], values: np.ndarray, block: float, start: float,
                    end: float, limit: float = 0.0) -> Growth | None:
    """Growth of the lower envelope (block minima), as a fraction of its level per hour.

    Blocks of ``block`` seconds end at ``end`` and go back in time to ``start``; a GC
    sawtooth drops to its trough once per block, so the minima follow the real trend and
    not the teeth. The slope is Theil-Sen's; with four blocks or more, ``z`` tests it
    against ``limit`` (per hour) using the minima's robust scatter around the line.
    None with fewer than 3 blocks holding data. ``times`` are ascending (a window's).
    """
    if not times:
        return None
    count = int((end - start) // block + 1e-9)
    if count < 3:
        return None
    minima: list[float] = []
    centres: list[float] = []
    for k in range(count, 0, -1):
        lo, hi = end - k * block, end - (k - 1) * block
        first, past = bisect_right(times, lo), bisect_right(times, hi)  # lo < t <= hi
        if past - first >= 2:
            minima.append(float(_LOWEST(values[first:past])))
            centres.append((lo + hi) / 2)
    if len(minima) < 3:
        return None
    x, y = np.asarray(centres), np.asarray(minima)
    slope = theil_sen_slope(x, y)
    level = _median(y)
    if not level > 0 or not math.isfinite(level):
        return None
    z = recent = None
    se = slope_se(x, y, slope, 0.001 * level) if len(minima) >= 4 else None
    if se:  # four distinct block centres and a positive floor (not underflowed to 0)
        z = (slope - limit * level / 3600.0) / se
        recent = theil_sen_slope(x[1:], y[1:]) * 3600.0 / level
    return Growth(slope * 3600.0 / level, minima, z, level, recent)


def slope_se(x: np.ndarray, y: np.ndarray, slope: float, floor: float) -> float | None:
    """Standard error of a (Theil-Sen) ``slope`` through ``x``, ``y``: the residuals'
    robust scatter (1.4826 MAD, at least ``floor``) over the spread of ``x``. None when
    either is zero."""
    residuals = y - slope * x
    residuals = residuals - _median(residuals)
    scatter = max(MAD_TO_SD * _median(np.abs(residuals)), floor)
    spread = float(np.sum((x - x.mean()) ** 2))
    if not scatter > 0 or not spread > 0:
        return None
    return scatter / math.sqrt(spread)


def counter_increase(values: np.ndarray) -> float:
    """Increase of a counter over the samples, counting resets as Prometheus does."""
    if len(values) < 2:
        return 0.0
    diffs = np.diff(values)
    resets = diffs < 0
    return float(diffs[~resets].sum() + values[1:][resets].sum())


def _round(x: float) -> float:
    if not math.isfinite(x) or x == 0:
        return x
    return float(f"{x:.6g}")


SCAN_DRIFT = 0.5  # k: what one sample at exactly the limit costs the scan, in noise units
SCAN_CLIP = 2.5  # one sample adds at most this much (a spike is bounded)


def scan(excess: np.ndarray, sd: float) -> float:
    """One-sided CUSUM of excess over a limit, as the best trailing run.

    ``excess`` is how far each sample is beyond the rule's limit (positive = worse);
    standardised by ``sd``, clipped to +-SCAN_CLIP, less SCAN_DRIFT, then the largest sum
    over any run ending at the latest sample. Evidence accumulates from the onset of a
    shift at a rate set by its size, so a small lasting shift is found as soon as the
    evidence suffices, while spikes (clipped) and noise (drift) do not add up.
    """
    if not len(excess) or not sd > 0:
        return 0.0
    steps = np.minimum(np.maximum(excess / sd, -SCAN_CLIP), SCAN_CLIP) - SCAN_DRIFT
    prefix = _RUNNING(steps)  # the sums before each sample are 0 (none) and prefix[:-1]
    lowest = _LOWEST(prefix[:-1]) if len(prefix) > 1 else 0.0
    return float(prefix[-1] - (lowest if lowest < 0.0 else 0.0))
