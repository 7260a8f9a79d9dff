"""Growth rules: a leak persists; a refill or a filling cache stops (growthpersist.py).

The series imitate the real-noise development set's memory (its README, "Slow memory
climbs and long-period refills"): one sample a minute, an AR(1) wander (lag-1
autocorrelation 0.9, as the hosts' memory shows 0.78-1.0) of 0.3 % of the level, and a
V2 host that climbs back at +30 %/h for 50 minutes after a drop it took before the
rollout (the 40-75 minute refills of hosts 1-6 and 1-7), up to a level V1's host never
showed. V1 stopped serving at the start (the envelope test alone judges: no V2 - V1
pairs), as at 100 %. The refill test also runs with the mechanism switched off (the
judge before it), where it reads as a leak.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import GrowthRule, Module
from watchdog.engine import Engine
from watchdog.journal.store import Journal
from watchdog.judge import tuning as tuning_mod
from watchdog.judge.context import EvalContext
from watchdog.judge.rules import evaluate
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import RuleOutcome, RuleResult, Version
from watchdog.rollout.state import Checkpoint, Phase

STEP = 60.0
LEVEL = 4e8
METRIC = "memory_rss_bytes"


@contextmanager
def settings(**changes: object) -> Iterator[None]:
    before = tuning_mod.tuning()
    tuning_mod.use(replace(before, **changes))  # type: ignore[arg-type]
    try:
        yield
    finally:
        tuning_mod.use(before)


def _module() -> Module:
    return load_default_rules().for_module("svc")


def _rule(module: Module) -> GrowthRule:
    rule = next(r for r in module.rules if r.name == "memory_growth")
    assert isinstance(rule, GrowthRule)
    return rule


def wander(n: int, seed: int, sd: float = 0.003, phi: float = 0.9) -> np.ndarray:
    """1 + an AR(1) of stationary sd ``sd`` (a fraction of the level)."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, sd * np.sqrt(1 - phi * phi), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return 1 + out


def judge(v2_shape: np.ndarray, now: float, seed: int) -> RuleResult:
    """V1 in the hour before the start only (flat, near the ceiling); V2 from 0."""
    t1 = np.arange(-3600.0, 0.0, STEP)
    t2 = np.arange(0.0, now + 1, STEP)
    v1 = LEVEL * wander(len(t1), seed)
    v2 = LEVEL * v2_shape[: len(t2)] * wander(len(t2), seed + 1)
    store = SeriesStore({(Version.V1, METRIC): Series(t1, v1),
                         (Version.V2, METRIC): Series(t2, v2)})
    module = _module()
    ctx = EvalContext(module, now, 0.0, store, {}, traffic_percent=100.0,
                      stage_started_at=0.0)
    return evaluate(_rule(module), ctx)


def horizon() -> float:
    """The shipped rule's persistence horizon (growth_persist_factor x its window)."""
    return tuning_mod.tuning().growth_persist_factor * _rule(_module()).window


WARMUP = _module().warmup_of(METRIC)  # the shipped memory metric's (5 minutes)


def refill(until: float) -> np.ndarray:
    """Climbs +30 %/h (of the level) from 0.95 for 50 minutes, then stays."""
    hours = np.arange(0.0, until + 1, STEP) / 3600.0
    return 0.95 + 0.3 * np.minimum(hours, 50 / 60)


def leak(until: float, per_hour: float = 0.5) -> np.ndarray:
    hours = np.arange(0.0, until + 1, STEP) / 3600.0
    return 1 + per_hour * hours


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_refill_climbing_past_the_old_ceiling_is_not_yet_a_leak(seed: int) -> None:
    now = 2700.0  # 45 minutes into a 50-minute climb, already 6 % above V1's ceiling
    with settings(growth_persist=False):
        before = judge(refill(now), now, seed)
    assert before.breached is True, before.summary  # the judge before: a "leak"
    found = judge(refill(now), now, seed)
    assert found.outcome is RuleOutcome.WARMING, found.summary  # holds nothing
    assert "must persist" in str(found.evidence["not_a_leak"])
    assert found.evidence["persist_horizon"] == horizon()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_refill_that_stopped_is_clear_once_the_horizon_is_covered(seed: int) -> None:
    now = WARMUP + horizon() + 900.0  # the horizon covered; the climb ended long ago
    found = judge(refill(now), now, seed)
    assert found.outcome is RuleOutcome.CLEAR, found.summary


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_leak_that_persists_breaches_once_the_horizon_is_covered(seed: int) -> None:
    early = judge(leak(2700.0), 2700.0, seed)
    assert early.outcome is RuleOutcome.WARMING, early.summary
    now = WARMUP + horizon() + STEP  # the horizon after the warm-up, and a tick
    found = judge(leak(now), now, seed)
    assert found.breached is True, found.summary
    assert found.evidence["persist_growth_per_hour"] == pytest.approx(0.5 / 1.4, rel=0.3)
    assert found.evidence["persist_z"] > 3.09


def test_a_slower_leak_persists_too() -> None:
    now = WARMUP + horizon() + 300.0
    found = judge(leak(now, 0.25), now, 4)  # +18 %/h of the level reached
    assert found.breached is True, found.summary


def test_the_horizon_scales_with_the_rule_window() -> None:
    with settings(growth_persist_factor=2.0):
        found = judge(leak(4200.0), 4200.0, 5)  # 60-minute horizon, covered at 3900 s
    assert found.breached is True, found.summary
    assert found.evidence["persist_horizon"] == 3600.0


class _Recorder:
    """A source that records the span it is asked for (the engine's fetch is what is
    under test; no metric store is needed to see which span it asks for)."""

    def __init__(self) -> None:
        self.spans: list[float] = []

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        self.spans.append(end - start)
        return SeriesStore()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_engine_fetches_the_persistence_horizon(enabled: bool) -> None:
    """The envelope test over its horizon needs that much of V2: the engine's fetch
    reaches back over the horizon (not only the 30-minute window), else the test would
    silently run on the hour it holds."""
    rules = load_default_rules()
    source = _Recorder()
    engine = Engine(rules, Journal(":memory:"), source)
    module = engine.module("svc")
    rule = next(r for r in module.rules if isinstance(r, GrowthRule))
    with settings(growth_persist=enabled):
        horizon = engine.lookback(module)
        engine.fetch("svc", 10_000.0, Checkpoint("svc", Phase.PROGRESSING, 0, 5.0, 0.0, 0.0))
    factor = tuning_mod.tuning().growth_persist_factor if enabled else 1.0
    assert horizon >= factor * rule.window
    assert source.spans == [horizon]
    if not enabled:
        assert horizon < tuning_mod.tuning().growth_persist_factor * rule.window
