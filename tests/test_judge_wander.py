"""The wander factor: a window's mean on a wandering metric is known less well.

The noise imitates the real-noise development set (its README, "What
real noise looks like"): minute latency with a lag-1 autocorrelation of 0.5-0.8 on two
independent hosts, and a 20-minute level episode of +40 % on one host. On white noise
the factor is 1 and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module, RelativeRule
from watchdog.judge import tuning as tuning_mod
from watchdog.judge import wander
from watchdog.judge.context import EvalContext
from watchdog.judge.relative import evaluate_relative
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import RuleResult, Version

STEP = 60.0
METRIC = "latency_p95_ms"


@contextmanager
def no_wander() -> Iterator[None]:
    before = tuning_mod.tuning()
    tuning_mod.use(replace(before, wander=False, episodes=False))
    try:
        yield
    finally:
        tuning_mod.use(before)


def ar1(n: int, phi: float, sd: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(n + 100)
    e = rng.normal(0, sd * np.sqrt(1 - phi * phi), n + 100)
    for i in range(1, n + 100):
        x[i] = phi * x[i - 1] + e[i]
    return x[100:]


def test_white_noise_has_factor_one() -> None:
    rng = np.random.default_rng(3)
    found = [wander.of_values(rng.normal(200, 20, 360)) for _ in range(200)]
    assert np.mean(np.array(found) == 1.0) >= 0.9 and max(found) < 1.15


def test_autocorrelated_noise_has_a_large_factor() -> None:
    assert wander.of_values(200 + ar1(360, 0.8, 30, 4)) > 3.0


def _module() -> Module:
    module = load_default_rules().for_module("svc")
    # a replay of one-minute samples is judged at its step (backtest rules_at_step)
    return module.model_copy(update={"interval": STEP})


def _rule(module: Module) -> RelativeRule:
    rule = next(r for r in module.rules if r.name == "latency_p95_regression")
    assert isinstance(rule, RelativeRule)
    return rule


def judge(v1: np.ndarray, v2: np.ndarray, now: float) -> RuleResult:
    t1 = np.arange(-3600.0, now + 1, STEP)
    t2 = np.arange(0.0, now + 1, STEP)
    store = SeriesStore({(Version.V1, METRIC): Series(t1, v1[: len(t1)]),
                         (Version.V2, METRIC): Series(t2, v2[: len(t2)])})
    module = _module()
    ctx = EvalContext(module, now, 0.0, store, {}, traffic_percent=25.0,
                      stage_started_at=0.0)
    return evaluate_relative(_rule(module), ctx)


def test_a_level_episode_on_one_host_is_not_a_regression() -> None:
    # two hosts wandering independently (phi 0.7, 12 % of the level); V2 spends minutes
    # 40-60 of the rollout 40 % higher: one host's level episode, gone after 20 minutes.
    # Judged every minute of the episode, over seven draws of the wander
    ticks = np.arange(2400.0, 3601.0, STEP)
    before = after = 0
    for seed in range(5, 12):
        v1 = 200 * (1 + ar1(121, 0.7, 0.12, seed))
        v2 = 200 * (1 + ar1(61, 0.7, 0.12, seed + 100))
        v2[40:61] *= 1.4
        with no_wander():  # the judge before
            before += sum(bool(judge(v1, v2, t).breached) for t in ticks)
        after += sum(bool(judge(v1, v2, t).breached) for t in ticks)
    assert before > 90  # of 7 x 21 looks
    assert after < before / 5


def test_a_lasting_regression_under_the_same_wander_is_caught() -> None:
    now = 3600.0
    v1 = 200 * (1 + ar1(121, 0.7, 0.12, 5))
    v2 = 1.5 * 200 * (1 + ar1(61, 0.7, 0.12, 6))
    assert any(judge(v1, v2, t).breached for t in np.arange(600.0, now + 1, STEP))


def _ctx(v1: np.ndarray, v2: np.ndarray, now: float) -> EvalContext:
    t1 = np.arange(-3600.0, now + 1, STEP)
    t2 = np.arange(0.0, now + 1, STEP)
    store = SeriesStore({(Version.V1, METRIC): Series(t1, v1[: len(t1)]),
                         (Version.V2, METRIC): Series(t2, v2[: len(t2)])})
    return EvalContext(_module(), now, 0.0, store, {}, traffic_percent=25.0,
                       stage_started_at=0.0)


def test_wander_both_versions_share_cancels() -> None:
    # load moving both versions (a common AR(1) pattern) cancels in V2 - V1: the factor
    # is that of the differences, white here; independent hosts keep V1's
    rng = np.random.default_rng(9)
    load = 200 * ar1(121, 0.9, 0.15, 10)
    v1 = 200 + load + rng.normal(0, 5, 121)
    shared = 200 + load[60:] + rng.normal(0, 5, 61)
    apart = 200 + 200 * ar1(61, 0.9, 0.15, 11) + rng.normal(0, 5, 61)
    assert wander.of_values(v1) > 3.0
    assert wander.factor(_ctx(v1, shared, 3600.0), METRIC) < 1.5
    assert wander.factor(_ctx(v1, apart, 3600.0), METRIC) > 2.0


def test_episode_span_is_how_long_v1_strays() -> None:
    rng = np.random.default_rng(12)
    white = 200 + rng.normal(0, 4, 121)
    assert wander.episode_span(_ctx(white, white[60:], 3600.0), METRIC, 0.05, 150.0) == 0.0
    episode = white.copy()
    episode[70:90] *= 1.4  # 20 minutes 40 % higher, within V1's last hour
    span = wander.episode_span(_ctx(episode, white[60:], 3600.0), METRIC, 0.05, 150.0)
    assert 1140.0 <= span <= 1500.0
