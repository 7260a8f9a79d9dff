"""watchdog.judge.hac: standard errors that hold on autocorrelated, wandering, heavy-tailed
series, and agree with the plain one on white noise.

The series are generated here from a few parameters (tests never read ../shared). Each
imitates a property of the real host metrics in the real-noise data set (see its README):
AR(1) with phi 0.5-0.95 (minute latency has a lag-1 autocorrelation of 0.15-0.76,
memory and throughput 0.8-1.0), level episodes (10-30 minute level shifts on one host),
Student t with 3 degrees of freedom (latency p99.9 at 2.5-12 times the median).
Coverage is counted over fixed seeds: deterministic, no timing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import FrozenInstanceError

import numpy as np
import pytest

from watchdog.judge import hac, stats

Z95 = 1.959964
REPS = 600


def ar1(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = rng.standard_normal(n + 100)
    x = np.empty_like(e)
    x[0] = e[0] / math.sqrt(1 - phi * phi)
    for i in range(1, len(e)):
        x[i] = phi * x[i - 1] + e[i]
    return x[100:]


def episodes(rng: np.random.Generator, n: int) -> np.ndarray:
    """White noise plus level episodes of +2 sd lasting 6 samples on average, a quarter of
    the time (centred: the true mean is 0), like a host's 10-30 minute level shifts
    sampled every few minutes."""
    on = rng.random() < 0.25
    level = np.empty(n)
    for i in range(n):
        level[i] = on
        on = rng.random() > 1 / 6 if on else rng.random() < 1 / 18
    return rng.standard_normal(n) + 2.0 * (level - 0.25)


def coverage(gen: Callable[[np.random.Generator], np.ndarray], se_of: Callable[[np.ndarray],
             tuple[float, float]], seed: int, reps: int = REPS) -> float:
    """Share of 95 % intervals location +- 1.96 se that hold the true mean 0."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        loc, se = se_of(gen(rng))
        hits += abs(loc) < Z95 * se
    return hits / reps


def newey_west(x: np.ndarray) -> tuple[float, float]:
    e = hac.estimate(x)
    return e.location, e.se_of_mean


def plain_successive(x: np.ndarray) -> tuple[float, float]:
    """The judge's plain noise today: successive-difference sd over sqrt(n)."""
    return float(x.mean()), stats.noise_sd(x) / math.sqrt(len(x))


def huber(x: np.ndarray) -> tuple[float, float]:
    e = hac.huber(x)
    return e.location, e.se_of_mean


def test_white_noise_agrees_with_the_plain_estimate() -> None:
    rng = np.random.default_rng(7)
    ratios, effective = [], []
    for _ in range(REPS):
        x = rng.normal(100.0, 5.0, 60)
        e = hac.estimate(x)
        plain = hac.estimate(x, hac.Method.PLAIN)
        ratios.append(e.se_of_mean / plain.se_of_mean)
        effective.append(e.effective_n)
        assert e.location == pytest.approx(float(x.mean()))
        assert e.sd_per_sample == pytest.approx(float(x.std(ddof=1)))
    assert float(np.median(ratios)) == pytest.approx(1.0, abs=0.02)
    assert float(np.mean(ratios)) < 1.08  # costs at most a few % of power on average
    assert float(np.median(effective)) == pytest.approx(60, rel=0.03)
    cov = coverage(lambda r: r.standard_normal(60), newey_west, seed=8)
    assert 0.93 <= cov <= 0.98


@pytest.mark.parametrize(("phi", "n", "least", "plain_at_most"),
                         [(0.5, 60, 0.92, 0.65), (0.8, 120, 0.91, 0.30),
                          (0.95, 180, 0.85, 0.12)])
def test_ar1_coverage_is_near_nominal_where_successive_differences_fail(
        phi: float, n: int, least: float, plain_at_most: float) -> None:
    gen = lambda r: ar1(r, n, phi)  # noqa: E731
    assert coverage(gen, newey_west, seed=11) >= least
    assert coverage(gen, plain_successive, seed=11) <= plain_at_most


def test_ar1_reports_its_autocorrelation_and_effective_n() -> None:
    e = hac.estimate(ar1(np.random.default_rng(3), 400, 0.8))
    assert 0.7 < e.lag1_autocorr < 0.9
    # (1 - phi) / (1 + phi) = 1/9 of the samples' information
    assert 400 / 20 < e.effective_n < 400 / 5
    assert e.long_run_sd == pytest.approx(e.se_of_mean * 20)


def test_level_episodes_coverage() -> None:
    gen = lambda r: episodes(r, 180)  # noqa: E731
    assert coverage(gen, newey_west, seed=5) >= 0.85
    assert coverage(gen, plain_successive, seed=5) <= 0.70


def test_heavy_tails_keep_coverage_and_huber_is_more_efficient() -> None:
    gen = lambda r: r.standard_t(3, 60)  # noqa: E731
    assert coverage(gen, newey_west, seed=13) >= 0.93
    assert coverage(gen, huber, seed=13) >= 0.93
    rng = np.random.default_rng(14)
    means, hubers = [], []
    for _ in range(REPS):
        x = rng.standard_t(3, 60)
        means.append(float(x.mean()))
        hubers.append(hac.huber(x).location)
    assert float(np.std(hubers)) < 0.85 * float(np.std(means))


def test_huber_with_autocorrelated_heavy_tails() -> None:
    """AR(1) 0.6 driven by t(3) innovations: both tails and dependence at once."""
    def gen(r: np.random.Generator) -> np.ndarray:
        e = r.standard_t(3, 220)
        x = np.empty(220)
        x[0] = e[0]
        for i in range(1, 220):
            x[i] = 0.6 * x[i - 1] + e[i]
        return x[100:]
    assert coverage(gen, huber, seed=21, reps=400) >= 0.90
    assert coverage(gen, plain_successive, seed=21, reps=400) <= 0.75


def test_huber_ignores_a_spike_the_mean_follows() -> None:
    x = np.full(30, 200.0) + np.random.default_rng(1).normal(0, 5, 30)
    x[7] = 2000.0
    assert abs(hac.huber(x).location - 200) < 4
    assert hac.estimate(x).location > 250


def test_batch_means_on_white_noise_and_long_ar1() -> None:
    assert coverage(lambda r: r.standard_normal(400), lambda x: (
        hac.batch_means(x).location, hac.batch_means(x).se_of_mean), seed=2, reps=300) >= 0.90
    e = hac.batch_means(ar1(np.random.default_rng(4), 900, 0.5))
    assert e.method is hac.Method.BATCH_MEANS
    assert 900 / 5 < e.effective_n < 900 / 1.8  # (1 - phi) / (1 + phi) = 1/3


def test_paired_differences_use_shared_instants_only() -> None:
    t, d = hac.paired_differences([0, 60, 120, 180], [5.0, 6.0, 7.0, 8.0],
                                  [60, 180, 240], [1.0, 2.0, 3.0])
    assert t.tolist() == [60, 180]
    assert d.tolist() == [5.0, 6.0]


def test_difference_from_a_reference_at_the_same_instants_removes_shared_wander() -> None:
    """V2 and its reference share a slow common wander (AR(1) 0.98) and each has white
    noise of its own: the differences are white, and their estimate sees that."""
    rng = np.random.default_rng(9)
    common = ar1(rng, 180, 0.98) * 5
    t = np.arange(180) * 60.0
    _, d = hac.paired_differences(t, 200 + common + rng.normal(0, 1, 180),
                                  t, 200 + common + rng.normal(0, 1, 180))
    e = hac.estimate(d)
    assert e.effective_n > 100
    assert abs(e.location) < Z95 * e.se_of_mean * 1.5


@pytest.mark.parametrize("method", list(hac.Method))
def test_small_and_constant_windows(method: hac.Method) -> None:
    e = hac.estimate([1.0, 2.0], method)
    assert e.n == 2
    assert math.isnan(e.se_of_mean) and math.isnan(e.location)
    flat = hac.estimate([3.0] * 12, method)
    assert flat.location == 3.0
    assert flat.se_of_mean == 0.0
    with pytest.raises(FrozenInstanceError):
        flat.n = 3  # type: ignore[misc]
