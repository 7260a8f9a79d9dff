"""A reference taken at another time than V2's window is uncertain by how far V1's level
itself moves (judge/refspread.py).

Series are generated from a few parameters (tests never read recorded data). The
wandering V1 imitates a property of real host latency: the hour before the rollout at
one level, then the level climbing by half over an hour and a half (load, time of day),
as V1 did on real hosts (e.g. from 120 to 240 ms between the baseline and the 100 %
stage). A healthy V2 that simply sits where V1 went must not read "+50 % against the
baseline" once V1 has stopped serving.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest

from watchdog.baseline import capture
from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module, RelativeRule
from watchdog.judge import refspread
from watchdog.judge import tuning as tuning_mod
from watchdog.judge.context import EvalContext
from watchdog.judge.reference import ReferenceKind
from watchdog.judge.relative import evaluate_relative
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import RuleOutcome, Version

STEP = 30.0
METRIC = "latency_p95_ms"
LEVEL, SD = 200.0, 20.0
V1_STOPS = 7200.0  # V2 has all the traffic from here


@contextmanager
def settings(**changes: object) -> Iterator[None]:
    before = tuning_mod.tuning()
    tuning_mod.use(replace(before, **changes))  # type: ignore[arg-type]
    try:
        yield
    finally:
        tuning_mod.use(before)


def _module() -> tuple[Module, RelativeRule]:
    module = load_default_rules().for_module("svc").model_copy(update={"interval": STEP})
    rule = next(r for r in module.rules if r.name == "latency_p95_regression")
    assert isinstance(rule, RelativeRule)
    return module, rule


def level(t: np.ndarray, wander: bool) -> np.ndarray:
    """V1's (and a healthy V2's) level: flat, or +50 % over 1800..7200 s if ``wander``."""
    if not wander:
        return np.full(len(t), LEVEL)
    return LEVEL * (1.0 + 0.5 * np.clip((t - 1800.0) / 5400.0, 0.0, 1.0))


def context(now: float, wander: bool, v2_scale: float = 1.0, seed: int = 1) -> EvalContext:
    module, _ = _module()
    rng = np.random.default_rng(seed)
    t1 = np.arange(-3600.0, V1_STOPS, STEP)
    t2 = np.arange(0.0, now + 1, STEP)
    v1 = level(t1, wander) + rng.normal(0, SD, len(t1))
    v2 = v2_scale * level(np.minimum(t2, V1_STOPS), wander) + rng.normal(0, SD, len(t2))
    store = SeriesStore({(Version.V1, METRIC): Series(t1, v1),
                         (Version.V2, METRIC): Series(t2, v2)})
    points = [(float(t), float(v)) for t, v in zip(t1, v1, strict=True) if t < 0]
    baseline = capture("svc", METRIC, points, -3600.0, 0.0, "test", 0.0)
    return EvalContext(module, now, 0.0, store, {METRIC: baseline}, traffic_percent=100.0,
                       stage_started_at=V1_STOPS)


def test_white_noise_has_no_spread() -> None:
    """On white noise the blocks' medians differ by their sampling noise only: (almost)
    nothing is added, so the synthetic figures cannot move."""
    spreads = [refspread.level_spread(context(9300.0, False, seed=s), METRIC)
               for s in range(10)]
    assert float(np.median(spreads)) < 0.1 * SD
    assert max(spreads) < 0.3 * SD


def test_a_wandering_v1_has_a_spread_of_its_wander() -> None:
    spread = refspread.level_spread(context(9300.0, True), METRIC)
    # the level's sd over the history: a third of the time at 200, then a ramp to 300
    assert 0.1 * LEVEL < spread < 0.3 * LEVEL


def test_too_short_a_history_has_no_spread() -> None:
    ctx = context(9300.0, True)
    short = replace(ctx, series=ctx.series.between(-math.inf, -1800.0), baselines={})
    assert refspread.level_spread(short, METRIC) == 0.0


@pytest.mark.parametrize("enabled", [True, False])
def test_healthy_v2_where_v1_went_is_not_a_regression(enabled: bool) -> None:
    """At the 100 % stage, 35 minutes after V1 stopped (past ``drift_lookback``: the
    stored baseline is the reference), V2 sits at V1's last level, +50 % above the
    baseline. Without the spread the judge rolls a healthy V2 back; with it, it does not."""
    _, rule = _module()
    with settings(ref_spread=enabled):
        result = evaluate_relative(rule, context(9300.0, True))
    assert result.evidence.get("against") == ReferenceKind.BASELINE.value
    assert result.breached is (not enabled)


def test_a_regression_after_v1_stopped_is_still_caught() -> None:
    """V2 at twice where V1 went: far beyond the wander V1 itself showed."""
    _, rule = _module()
    result = evaluate_relative(rule, context(9300.0, True, v2_scale=2.0))
    assert result.outcome is RuleOutcome.BREACHED


def test_on_white_noise_the_verdicts_do_not_change() -> None:
    """A regression against a flat V1's baseline breaches with or without the spread,
    and a healthy V2 stays clear."""
    _, rule = _module()
    for scale, breached in ((1.0, False), (1.5, True)):
        for enabled in (True, False):
            with settings(ref_spread=enabled):
                got = evaluate_relative(rule, context(9300.0, False, v2_scale=scale))
            assert got.breached is breached, (scale, enabled)
