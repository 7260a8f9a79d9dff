"""bench/delaybound.py: the clairvoyant delay bound the synthetic median is held against.

Checked on generated samples with a known answer (never on ../shared): the SPRT's mean
delay is Wald's, the binomial likelihood ratio is the binomial's, and a healthy warm-up
that a judge must rule out delays the bound for a regression present from V2's start
and for no other.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from scipy.stats import binom

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import delaybound  # a bench script, not a package: imported from its folder

ALPHA = 0.01


def test_the_mean_delay_is_walds() -> None:
    """Mean 0.5 sd above the limit: Wald's expected sample number, log(1 / alpha) over the
    information per sample (mu^2 / 2 sd^2) plus the overshoot, about 37-45 samples."""
    rng = np.random.default_rng(1)
    n = 400
    t = np.arange(1.0, n + 1)
    delays = []
    for _ in range(400):
        x = 0.5 + rng.standard_normal(n)
        stat = delaybound.evidence(x, np.full(n, 0.5), delaybound.Gaussian(1.0), np.zeros((1, n)))
        delays.append(delaybound.crossing(t, stat, ALPHA))
    wald = math.log(1 / ALPHA) / (0.5**2 / 2)
    assert wald <= float(np.mean(delays)) <= 1.25 * wald


def test_healthy_streams_rarely_cross() -> None:
    """At the limit (mean 0), tested against mean 0.5: at most alpha of streams cross."""
    rng = np.random.default_rng(2)
    n, runs = 400, 2000
    t = np.arange(1.0, n + 1)
    crossed = sum(
        math.isfinite(
            delaybound.crossing(
                t,
                delaybound.evidence(
                    rng.standard_normal(n),
                    np.full(n, 0.5),
                    delaybound.Gaussian(1.0),
                    np.zeros((1, n)),
                ),
                ALPHA,
            )
        )
        for _ in range(runs)
    )
    assert crossed / runs <= ALPHA + 3 * math.sqrt(ALPHA / runs)


def test_the_count_likelihood_ratio_is_the_binomials() -> None:
    n, at_limit = 120.0, 0.003
    counts_ = delaybound.Counts(n, at_limit)
    events = np.array([0.0, 1.0, 2.0, 5.0])
    x = events / n - at_limit  # the excess over the limit
    mean, null = np.full(4, 0.01 - at_limit), np.zeros(4)
    expected = binom.logpmf(events, n, 0.01) - binom.logpmf(events, n, at_limit)
    assert np.allclose(counts_.llr(x, mean, null), expected)


def _recording(rng: np.random.Generator, onset: float, size: float) -> dict:
    """Latency at a 5 % share: V1 at 200 ms (sd 4), V2 (sd 16) x ``size`` from ``onset``."""
    t1 = np.arange(-1800.0, 2400.0, 10.0)
    t2 = np.arange(0.0, 2400.0, 10.0)
    v2 = 200 + 16 * rng.standard_normal(len(t2))
    v2[t2 >= onset] *= size
    return {
        "latency_p95_ms": {
            "v1": dict(
                zip(t1.tolist(), (200 + 4 * rng.standard_normal(len(t1))).tolist(), strict=True)
            ),
            "v2": dict(zip(t2.tolist(), v2.tolist(), strict=True)),
        }
    }


def test_a_warm_up_delays_the_bound_only_from_v2s_start() -> None:
    """x1.4 from V2's start could be a warm-up of x1.5-3 decaying over minutes: ruling
    that out takes longer than ruling out V2 at the limit. From 1200 s on it could not."""
    rng = np.random.default_rng(3)
    early = [_recording(rng, 0.0, 1.4) for _ in range(10)]
    late = [_recording(rng, 1200.0, 1.4) for _ in range(10)]

    def median(recs: list[dict], onset: float, warm: bool) -> float:
        return float(np.median([delaybound.bound_of(r, onset, ALPHA, warm).delay for r in recs]))

    assert median(early, 0.0, True) >= median(early, 0.0, False) + 60
    assert median(late, 1200.0, True) == median(late, 1200.0, False) <= 30
