"""Exact tests for sparse counts: a rate of a few events a window.

An error rate at a small traffic share is mostly 0 and sometimes one event in n
requests; the normal approximation the windowed test uses (stats.py) overstates a chance
cluster of such events. These read the requests a sample off the data (V2's own zeros
and ones, or, where V2's samples are not sparse, live V1's noise: implied_requests) and
test the events against a Poisson tail. Used by ``noise: binomial`` rules (relative.py,
bursts.py).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from watchdog.judge import stats

_NORMAL = NormalDist()

SPARSE_ZEROS = 1 / 3  # a rate window with this share of exact zeros is a sparse count


def sparse_count_z(values: np.ndarray, limit: float,
                   counted: np.ndarray | None = None) -> float | None:
    """The z of an exact Poisson test that a sparse count's rate exceeds ``limit``.

    A rate of a few events a window (an error rate at a small traffic share: mostly 0,
    sometimes one event in n requests) is far from normal, and the normal z overstates a
    chance cluster of ones: four errors in 95 requests against a 0.3 % limit read as
    z=5.3, where the Poisson tail gives p=6.5e-4 (z=3.2). Where at least SPARSE_ZEROS of
    the samples are exactly 0, most non-zero samples are one event in n requests, so n
    is read off them (the median of 1 / rate: a sample of two events halves its guess,
    which only makes the test more cautious), the events are counted (rate x n, rounded)
    and compared with Poisson(limit x n x samples). ``counted``: test these samples
    instead, with the sparseness and n read off ``values`` (a cluster or a run of bursts
    has no zeros of its own). None where the counts are not sparse.
    """
    per_sample = sparse_requests(values)
    if per_sample is None:
        return None
    return count_z(values if counted is None else counted, per_sample, limit)


def sparse_requests(values: np.ndarray) -> float | None:
    """Requests a sample of a sparse count (see :func:`sparse_count_z`), else None."""
    if len(values) < 3:
        return None
    nonzero = values[values > 0]
    if not len(nonzero) or np.count_nonzero(values == 0) < SPARSE_ZEROS * len(values):
        return None
    return stats.median(1.0 / nonzero)


def count_z(tested: np.ndarray, per_sample: float, limit: float) -> float | None:
    """The exact Poisson z of ``tested``'s events against ``limit`` x requests (None for
    a limit that is no rate)."""
    if not 0 < limit < 1:
        return None
    events = int(np.round(tested * per_sample).sum())
    tail = poisson_tail(events, limit * per_sample * len(tested))
    return -_NORMAL.inv_cdf(max(tail, 1e-300)) if tail < 1.0 else -math.inf


def failures(values: np.ndarray, higher: bool) -> np.ndarray:
    """The event rate of a ratio of counts: itself where higher is worse (failed /
    served), 1 - rate where lower is worse (parsed / received counts its failures)."""
    return values if higher else 1.0 - values


IMPLIED_MAX = 30.0  # an implied-count test runs where fewer events than this are expected


def implied_requests(level: float, sd: float, share: float) -> float | None:
    """V2's requests a sample as live V1's noise implies them, or None.

    V1's rate ``level`` with per-sample noise ``sd`` behaves like a binomial over
    p (1 - p) / sd**2 requests a sample (fewer where V1 also varies for other reasons,
    which only makes a test on them more cautious); V2 at ``share`` percent serves
    share / (100 - share) of that.
    """
    if not 0 < level < 1 or not sd > 0 or not 0 < share < 100:
        return None
    return level * (1 - level) / sd**2 * share / (100.0 - share)


POISSON_MAX = 1000.0  # above this many expected events the tail is taken as normal


def poisson_tail(k: int, mean: float) -> float:
    """P(X >= k) for X ~ Poisson(mean): summed term by term from k (or 1 minus the terms
    below k where k is at most the mean); a normal approximation for a mean of over
    POISSON_MAX events."""
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if mean > POISSON_MAX:
        return 0.5 * math.erfc((k - 0.5 - mean) / math.sqrt(2.0 * mean))
    log_mean = math.log(mean)

    def term(i: int) -> float:
        return math.exp(-mean + i * log_mean - math.lgamma(i + 1))

    if k <= mean:
        return max(0.0, 1.0 - math.fsum(term(i) for i in range(k)))
    total, i = 0.0, k
    while True:  # the terms fall from k on (k > mean)
        t = term(i)
        total += t
        i += 1
        if t <= total * 1e-12:  # also a first term that underflows to 0
            return min(total, 1.0)

