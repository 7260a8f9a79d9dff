"""The always-valid bound, through the judge: on healthy rollouts with V2 exactly at its
limit, the shipped latency rule, evaluated at every tick of every stage, breaches in at
most ``av_alpha`` of the rollouts (plus a Monte-Carlo margin).

Streams are generated from a few parameters (tests never read recorded data): white
noise, AR(1) with phi 0.9 (the real hosts' minute latency has a lag-1 autocorrelation of
0.15-0.76, memory and throughput up to 0.9 and more), Student t(3) innovations (heavy
tails). V1 and V2 are independent hosts; V2 is 1.05 x V1's level, exactly at the shipped
rule's limit (``max_increase: 5%``): the least favourable healthy case, where any breach
is a false rollback. The tests' alpha is 0.05 (not the shipped 0.01) so that a hundred
rollouts tell it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module, RelativeRule
from watchdog.judge import alwaysvalid
from watchdog.judge import tuning as tuning_mod
from watchdog.judge.context import EvalContext
from watchdog.judge.relative import evaluate_relative
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Version

STEP = 30.0  # a tick (and a sample) every 30 s
HOLD = 600.0  # each of the default plan's six stages
STAGES = (5.0, 25.0, 50.0, 75.0, 90.0, 100.0)
METRIC = "latency_p95_ms"
LEVEL, SD = 200.0, 20.0
ALPHA = 0.05  # the tests' alpha (the shipped one is 0.01: too rare to measure here)
ROLLOUTS = 100  # per noise kind


@contextmanager
def settings(**changes: object) -> Iterator[None]:
    before = tuning_mod.tuning()
    tuning_mod.use(replace(before, **changes))  # type: ignore[arg-type]
    try:
        yield
    finally:
        tuning_mod.use(before)


def noise(rng: np.random.Generator, n: int, phi: float, heavy: bool) -> np.ndarray:
    """AR(1) with marginal sd SD (t(3) innovations scaled to sd 1 if heavy)."""
    e = rng.standard_t(3, n + 100) / math.sqrt(3.0) if heavy else rng.standard_normal(n + 100)
    x = np.empty(n + 100)
    x[0] = e[0]
    for i in range(1, n + 100):
        x[i] = phi * x[i - 1] + e[i]
    return x[100:] * math.sqrt(1.0 - phi * phi) * SD


def _module() -> tuple[Module, RelativeRule]:
    module = load_default_rules().for_module("svc").model_copy(update={"interval": STEP})
    rule = next(r for r in module.rules if r.name == "latency_p95_regression")
    assert isinstance(rule, RelativeRule)
    return module, rule


def rollout_breaches(rng: np.random.Generator, phi: float, heavy: bool,
                     scale: float = 1.05, judge: bool = True) -> bool:
    """One healthy rollout through the six stages, looked at every tick: does the judge
    breach (``judge``), or the always-valid test alone cross, at any tick?"""
    module, rule = _module()
    end = HOLD * len(STAGES)
    t1 = np.arange(-3600.0, end + 1, STEP)
    t2 = np.arange(0.0, end + 1, STEP)
    v1 = LEVEL + noise(rng, len(t1), phi, heavy)
    v2 = scale * (LEVEL + noise(rng, len(t2), phi, heavy))
    store = SeriesStore({(Version.V1, METRIC): Series(t1, v1),
                         (Version.V2, METRIC): Series(t2, v2)})
    for now in t2[1:]:
        stage = min(int(now // HOLD), len(STAGES) - 1)
        ctx = EvalContext(module, float(now), 0.0, store, {}, traffic_percent=STAGES[stage],
                          stage_started_at=stage * HOLD)
        if judge and evaluate_relative(rule, ctx).breached:
            return True
        if not judge:
            found = alwaysvalid.crossing(rule, ctx, 0.05, True)
            if found is not None and found.crossed:
                return True
    return False


def share(phi: float, heavy: bool, seed: int, rollouts: int, judge: bool = True) -> float:
    rng = np.random.default_rng(seed)
    return sum(rollout_breaches(rng, phi, heavy, judge=judge) for _ in range(rollouts)) / rollouts


def bound(alpha: float, rollouts: int) -> float:
    """alpha plus three Monte-Carlo standard errors."""
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / rollouts)


CASES = [(0.0, False, 1), (0.9, False, 2), (0.3, True, 3)]  # white, AR(1) 0.9, t(3)


@pytest.mark.parametrize(("phi", "heavy", "seed"), CASES)
def test_the_judge_breaches_healthy_rollouts_at_most_alpha_of_the_time(
        phi: float, heavy: bool, seed: int) -> None:
    """The shipped latency rule through evaluate_relative at every tick (the per-look z,
    the scan and the gates, then the always-valid test). Without the always-valid test
    (``always_valid=False``) the same rollouts breach 12 % (white) and 21 % (t(3)) of
    the time: the test fails."""
    with settings(av_alpha=ALPHA):
        assert share(phi, heavy, seed, ROLLOUTS) <= bound(ALPHA, ROLLOUTS)


@pytest.mark.parametrize(("phi", "heavy", "seed"), CASES)
def test_the_always_valid_test_alone_crosses_at_most_alpha_of_the_time(
        phi: float, heavy: bool, seed: int) -> None:
    """The bound is the test's own, not the conjunction's: alone, at a larger alpha."""
    with settings(av_alpha=2 * ALPHA):
        assert share(phi, heavy, seed + 10, ROLLOUTS // 2, judge=False) \
            <= bound(2 * ALPHA, ROLLOUTS // 2)


def test_a_regression_still_breaches() -> None:
    """The bound is not bought by never breaching: V2 at 1.4 x V1 is caught."""
    rng = np.random.default_rng(9)
    assert all(rollout_breaches(rng, 0.5, False, scale=1.4) for _ in range(3))


def test_the_crossing_is_in_the_evidence() -> None:
    module, rule = _module()
    t = np.arange(-3600.0, 601.0, STEP)
    rng = np.random.default_rng(4)
    v1 = LEVEL + rng.normal(0, SD, len(t))
    v2 = 1.5 * (LEVEL + rng.normal(0, SD, len(t)))
    store = SeriesStore({(Version.V1, METRIC): Series(t, v1),
                         (Version.V2, METRIC): Series(t[t >= 0], v2[t >= 0])})
    ctx = EvalContext(module, 600.0, 0.0, store, {}, traffic_percent=5.0, stage_started_at=0.0)
    found = alwaysvalid.crossing(rule, ctx, 0.05, True)
    assert found is not None and found.crossed and found.source == "v1-history"
    assert found.threshold == pytest.approx(math.log(2 / 0.01))  # the first stage: half
    result = evaluate_relative(rule, ctx)
    assert result.breached and result.evidence["av_crossed"] == 1
    assert result.evidence["av_log_e"] >= result.evidence["av_threshold"]


def test_the_stages_alphas_sum_to_the_rollouts() -> None:
    """Bonferroni over the plan's stages: half for the first, the rest evenly; a stage
    that is not known gets the smaller share."""
    module, _ = _module()
    store = SeriesStore({})
    shares = [alwaysvalid.stage_alpha(EvalContext(module, 0.0, 0.0, store, {},
                                                  traffic_percent=s.traffic,
                                                  stage_started_at=0.0), 0.01)
              for s in module.plan.stages]
    assert shares[0] == pytest.approx(0.005) and sum(shares) == pytest.approx(0.01)
    unknown = alwaysvalid.stage_alpha(EvalContext(module, 0.0, 0.0, store, {}), 0.01)
    assert unknown == pytest.approx(min(shares))


def test_the_rollouts_own_plan_splits_alpha_and_places_start_points() -> None:
    """The plan the rollout follows (a backtest's recording, a rule test's case, a group's
    plan), not the module's: its stages split alpha (the shares sum to the rollout's
    alpha, not more) and its stage's hold spreads the start points' even weight (an
    onset 15 minutes into a 30-minute stage weighs as much as one at its start)."""
    module, _ = _module()
    stage = module.plan.stages[0]
    own = module.plan.model_copy(update={
        "stages": [stage.model_copy(update={"traffic": p})
                   for p in (1.0, 10.0, 20.0, 40.0, 60.0, 80.0, 90.0, 100.0)],
        "hold": 1800.0})
    store = SeriesStore({})

    def ctx(traffic: float) -> EvalContext:
        return EvalContext(module, 0.0, 0.0, store, {}, traffic_percent=traffic,
                           stage_started_at=0.0, rollout_plan=own)

    shares = [alwaysvalid.stage_alpha(ctx(s.traffic), 0.01) for s in own.stages]
    assert len(shares) == 8 and sum(shares) == pytest.approx(0.01)
    assert shares[0] == pytest.approx(0.005) and shares[1] == pytest.approx(0.005 / 7)
    assert alwaysvalid._planned_points(ctx(10.0), 60.0) == 30
    assert alwaysvalid._planned_points(EvalContext(module, 0.0, 0.0, store, {},
                                                   traffic_percent=25.0,
                                                   stage_started_at=0.0), 60.0) == 10
