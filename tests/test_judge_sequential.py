"""watchdog.judge.sequential: the false-alarm bound under continuous monitoring, power,
the statistic itself, and the checkpointed state.

Streams are generated from a few parameters (tests never read ../shared): AR(1) up to
phi 0.9 imitates the real hosts' autocorrelated wander (lag-1 0.15-0.76 on latency,
0.8-1.0 on memory and throughput), Student t(3) their heavy tails. Healthy streams sit
exactly AT the tolerance (the least favourable healthy case): the difference's mean equals
the tolerance, so any crossing is a false rollback.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.judge import sequential as sq

ALPHA = 0.05
TOL = 1.0  # tolerance, in units of the stream's per-sample sd
TAU = 0.5  # mixing scale: excesses of about half the tolerance


def stream(rng: np.random.Generator, n: int, phi: float, heavy: bool, mean: float) -> np.ndarray:
    """AR(1) with marginal sd 1 (t(3) innovations scaled to sd 1 if heavy), plus ``mean``."""
    e = rng.standard_t(3, n + 100) / math.sqrt(3.0) if heavy else rng.standard_normal(n + 100)
    x = np.empty(n + 100)
    x[0] = e[0]
    for i in range(1, n + 100):
        x[i] = phi * x[i - 1] + e[i]
    return x[100:] * math.sqrt(1.0 - phi * phi) + mean


def first_crossing(d: np.ndarray, alpha: float = ALPHA) -> int | None:
    """Monitor at every sample; the sample count at the first crossing, or None."""
    state = sq.SequentialState()
    for n in range(3, len(d) + 1):
        state, said = sq.look_at(state, sq.evidence(d[:n], TOL), TAU, alpha)
        if said is sq.Look.CROSSED:
            return n
    return None


@settings(max_examples=8, deadline=None, derandomize=True)
@given(phi=st.floats(0.0, 0.9), heavy=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_healthy_streams_cross_at_most_alpha_of_the_time(phi: float, heavy: bool,
                                                         seed: int) -> None:
    """The bound: over a long rollout (120 samples, 2 hours at 1-minute steps) looked at
    every sample, the share of healthy streams that ever cross is <= alpha plus three
    Monte-Carlo standard errors."""
    rng = np.random.default_rng(seed)
    reps = 150
    crossings = sum(first_crossing(stream(rng, 120, phi, heavy, TOL)) is not None
                    for _ in range(reps))
    assert crossings / reps <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reps)


def test_white_noise_within_tolerance_rarely_crosses_a_stricter_alpha() -> None:
    rng = np.random.default_rng(3)
    reps = 200
    crossings = sum(first_crossing(stream(rng, 120, 0.0, False, 0.5 * TOL), 0.01) is not None
                    for _ in range(reps))
    assert crossings <= 2


@pytest.mark.parametrize(("phi", "heavy", "within", "share"),
                         [(0.0, False, 150, 1.0), (0.0, True, 180, 0.95), (0.5, False, 180, 0.7)])
def test_a_shift_of_one_and_a_half_tolerance_is_detected(phi: float, heavy: bool, within: int,
                                                         share: float) -> None:
    rng = np.random.default_rng(17)
    reps = 40
    hits = [first_crossing(stream(rng, within, phi, heavy, 1.5 * TOL)) for _ in range(reps)]
    assert sum(h is not None for h in hits) >= share * reps


def test_a_large_regression_is_caught_within_a_few_samples() -> None:
    """V2 at 4 tolerances above: caught once the gate (MIN_EFFECTIVE_N with the rho margin,
    about 13 samples on white noise) opens, not after a fixed settle time."""
    rng = np.random.default_rng(5)
    hits = [first_crossing(stream(rng, 60, 0.0, False, 4.0 * TOL)) for _ in range(8)]
    assert all(h is not None and h <= 30 for h in hits)


@pytest.mark.parametrize(("s", "n", "lrv", "tau"),
                         [(3.0, 10, 1.0, 0.5), (-2.0, 40, 2.5, 0.2), (25.0, 100, 1.0, 1.0),
                          (0.0, 5, 0.3, 0.7)])
def test_statistic_is_the_half_normal_mixture(s: float, n: float, lrv: float,
                                              tau: float) -> None:
    """log Lambda equals the numerically integrated mixture of likelihood ratios."""
    m, v = s / n, lrv / n
    delta = np.linspace(0.0, 12.0 * tau, 200_001)
    weights = 2.0 * np.exp(-0.5 * (delta / tau) ** 2) / (tau * math.sqrt(2.0 * math.pi))
    lr = np.exp(delta * m / v - delta**2 / (2.0 * v))
    numeric = float(np.sum(lr * weights) * (delta[1] - delta[0]))
    assert sq.log_mixture_lr(s, n, lrv, tau) == pytest.approx(math.log(numeric), abs=1e-3)


def test_far_tails_stay_finite() -> None:
    assert sq.log_mixture_lr(-1e4, 100, 1.0, 0.5) < -1.0
    assert math.isfinite(sq.log_mixture_lr(-1e4, 100, 1.0, 0.5))
    assert sq.log_mixture_lr(1e4, 100, 1.0, 0.5) > 1e3
    assert sq.log_mixture_lr(1.0, 0, 1.0, 0.5) == 0.0  # no evidence: Lambda = 1


def test_warming_then_crossed_and_crossed_stays() -> None:
    state, said = sq.look(sq.SequentialState(), 50.0, 4, 1.0, 0.5, ALPHA, effective_n=2.0)
    assert said is sq.Look.WARMING and state.max_log_lr == 0.0 and state.log_lr > 3.0
    state, said = sq.look(state, 50.0, 8, 1.0, 0.5, ALPHA)
    assert said is sq.Look.CROSSED
    state, said = sq.look(state, -5.0, 9, 1.0, 0.5, ALPHA)  # later samples do not undo it
    assert said is sq.Look.CROSSED and sq.crossed(state, ALPHA)
    assert sq.look_at(state, None, 0.5, ALPHA)[1] is sq.Look.CROSSED
    assert sq.look_at(sq.SequentialState(), None, 0.5, ALPHA)[1] is sq.Look.WARMING


def test_state_round_trips_through_json() -> None:
    state, _ = sq.look(sq.SequentialState(), 12.5, 30, 2.0, 0.5, ALPHA)
    text = json.dumps(state.to_json())
    assert sq.SequentialState.from_json(json.loads(text)) == state
    assert all(isinstance(v, float) for v in state.to_json().values())


@pytest.mark.parametrize("bad", [None, [], {"n": 1.0}, {**sq.SequentialState().to_json(),
                                 "n": "3"}, {**sq.SequentialState().to_json(), "n": math.nan},
                                 {**sq.SequentialState().to_json(), "extra": 1.0}])
def test_malformed_state_is_a_clear_error(bad: object) -> None:
    with pytest.raises(sq.SequentialStateError, match="sequential state"):
        sq.SequentialState.from_json(bad)


def test_alpha_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="alpha"):
        sq.threshold(0.0)


def test_the_mixture_statistic_is_scale_free_at_the_domain_limits() -> None:
    """The same evidence in units 1e100 times smaller or larger gives the same log Lambda
    (a metric near the domain limits once divided by zero: v * (v + tau^2) underflowed)."""
    base = sq.log_mixture_lr(1.6275, 31, 1.1025, 1.05)
    for scale in (1e-101, 1e-50, 1e50, 1e99):
        got = sq.log_mixture_lr(1.6275 * scale, 31, 1.1025 * scale * scale, 1.05 * scale)
        assert math.isclose(got, base, rel_tol=1e-9, abs_tol=1e-12), (scale, got, base)
