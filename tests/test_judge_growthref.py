"""Growth rules on real-host memory: refills, fleet-wide growth and wide bands are not leaks.

The series imitate what the real-noise development set shows (its README,
"Slow memory climbs and long-period refills"): hosts that sit near a ceiling, drop and
climb back in 40-75 minutes at tens of %/h; hosts whose memory climbs for a day (V1 too,
at the same instants); hosts whose memory moves in a wide band minute to minute. Each
test also runs with its mechanism switched off (the judge before it), where it fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import GrowthRule, Module
from watchdog.judge import tuning as tuning_mod
from watchdog.judge.context import EvalContext
from watchdog.judge.rules import evaluate
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import RuleResult, Version

STEP = 60.0  # one sample a minute, as the real-host recordings
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


@pytest.fixture(autouse=True)
def _within_the_window() -> Iterator[None]:
    # these tests judge the checks on the rule's window; the persistence horizon that
    # holds the envelope test until then is tested in test_judge_growthpersist.py
    with settings(growth_persist=False):
        yield


def _module() -> Module:
    return load_default_rules().for_module("svc")


def _rule(module: Module) -> GrowthRule:
    rule = next(r for r in module.rules if r.name == "memory_growth")
    assert isinstance(rule, GrowthRule)
    return rule


def judge(v1: np.ndarray, v2: np.ndarray, now: float) -> RuleResult:
    """V1 from -3600 s, V2 from 0, one sample a minute, judged at ``now``."""
    t1 = np.arange(-3600.0, now + 1, STEP)
    t2 = np.arange(0.0, now + 1, STEP)
    store = SeriesStore({(Version.V1, METRIC): Series(t1, v1[: len(t1)]),
                         (Version.V2, METRIC): Series(t2, v2[: len(t2)])})
    module = _module()
    ctx = EvalContext(module, now, 0.0, store, {}, traffic_percent=25.0,
                      stage_started_at=0.0)
    return evaluate(_rule(module), ctx)


def _hours(start: float, now: float) -> np.ndarray:
    return np.arange(start, now + 1, STEP) / 3600.0


def _noise(n: int, seed: int, sd: float = 0.002) -> np.ndarray:
    return 1 + np.random.default_rng(seed).normal(0, sd, n)


def test_a_leak_into_new_territory_is_caught() -> None:
    now = 2400.0
    v1 = LEVEL * _noise(len(_hours(-3600, now)), 1)
    v2 = LEVEL * (1 + 0.5 * _hours(0, now)) * _noise(len(_hours(0, now)), 2)
    found = judge(v1, v2, now)
    assert found.breached is True, found.summary
    assert "not_a_leak" not in found.evidence


def test_a_refill_back_to_the_level_held_before_is_not_a_leak() -> None:
    # V1 (and the service before V2) sat at the ceiling; V2 starts after a drop to 80 %
    # and climbs back at 30 %/h: below the ceiling it is a refill
    now = 2400.0
    v1 = LEVEL * _noise(len(_hours(-3600, now)), 3)
    v2 = 0.8 * LEVEL * (1 + 0.3 * _hours(0, now)) * _noise(len(_hours(0, now)), 4)
    with settings(new_high=False):
        assert judge(v1, v2, now).breached is True  # the judge before: a "leak"
    found = judge(v1, v2, now)
    assert found.breached is False, found.summary
    assert "has not passed the level held before" in str(found.evidence["not_a_leak"])


def test_growth_that_v1_shows_at_the_same_instants_is_not_a_leak() -> None:
    # the whole fleet climbs 20 %/h (load, time of day): V1 and V2 alike
    now = 2400.0
    v1 = LEVEL * (1 + 0.2 * _hours(-3600, now).clip(0)) * _noise(len(_hours(-3600, now)), 5)
    v2 = LEVEL * (1 + 0.2 * _hours(0, now)) * _noise(len(_hours(0, now)), 6)
    with settings(growth_against_v1=False, new_high=False, wander_floor=False):
        assert judge(v1, v2, now).breached is True
    found = judge(v1, v2, now)
    assert found.breached is False, found.summary
    assert found.evidence["v1_growth_per_hour"] == pytest.approx(0.2, abs=0.05)


def test_growth_within_the_band_v1_wanders_in_is_not_a_leak() -> None:
    # a host whose memory moves in a wide band: V1's 5-minute minima stray ~8 % from any
    # line. V2's minima happen to sit on a line rising 40 %/h, their scatter around it is
    # nil, so V2's own scatter makes the slope look exact; V1's says it is not
    now = 2400.0
    rng = np.random.default_rng(8)
    v1 = LEVEL * (1 - 0.3 * rng.random(len(_hours(-3600, now))))
    line = 0.7 * (1 + 0.4 * _hours(0, now))
    v2 = LEVEL * (line + 0.05 + 0.2 * rng.random(len(line)))
    v2[::5] = LEVEL * line[::5]
    with settings(wander_floor=False, new_high=False):
        before = judge(v1, v2, now)
    with settings(wander_floor=True):  # off by default since the persistence horizon
        found = judge(v1, v2, now)
    assert before.breached is True, before.summary
    assert found.breached is False, found.summary
    assert "strays" in str(found.evidence["not_a_leak"])
