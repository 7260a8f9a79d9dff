"""The burst rule and a V2 that is still warming up (``settle_with``).

A replica whose latency is still far above V1's in its first minute also fails more
requests (timeouts, cold caches); an error burst that began with it is a warm-up while
the latency shows it, and a regression otherwise.
"""

from __future__ import annotations

import numpy as np

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import BurstsRule
from watchdog.judge.bursts import evaluate_bursts
from watchdog.judge.context import EvalContext
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import RuleResult, Version

GRID = np.arange(0.0, 301.0, 10.0)
WOBBLE = np.resize([1.0, -1.0], len(GRID))


def _judged(v2_latency: np.ndarray, v2_errors: np.ndarray, now: float) -> RuleResult:
    module = load_default_rules().for_module("checkout")
    rule = next(r for r in module.rules if r.name == "error_bursts")
    assert isinstance(rule, BurstsRule) and module.metrics[rule.metric].settle_with
    store = SeriesStore({
        (Version.V1, "latency_p95_ms"): Series(GRID, 180.0 + 3 * WOBBLE),
        (Version.V2, "latency_p95_ms"): Series(GRID, v2_latency),
        (Version.V1, "error_rate"): Series(GRID, 0.005 + 0.001 * WOBBLE),
        (Version.V2, "error_rate"): Series(GRID, v2_errors),
    })
    return evaluate_bursts(rule, EvalContext(module, now, 0.0, store, {}))


def _burst(start: float, end: float) -> np.ndarray:
    # V2 fails 4.5 % of requests from start to end (V1 0.5 %), 0.5 % otherwise
    t = GRID
    return np.where((t >= start) & (t <= end), 0.045, 0.005) + 0.001 * WOBBLE


def test_an_error_burst_that_began_with_a_warming_v2_is_held() -> None:
    warm = np.where(GRID <= 120, 450.0, 182.0)  # latency x2.5 for two minutes
    held = _judged(warm, _burst(10, 40), 40.0)
    assert held.breached is None and held.evidence.get("warming") is True
    assert "still warming up" in held.summary and "latency_p95_ms" in held.summary


def test_the_same_burst_with_normal_latency_is_a_regression() -> None:
    normal = np.full(len(GRID), 182.0)
    assert _judged(normal, _burst(10, 40), 40.0).breached is True


def test_a_burst_that_begins_after_v2s_first_minute_is_judged_while_warming() -> None:
    warm = np.where(GRID <= 150, 450.0, 182.0)
    assert _judged(warm, _burst(90, 120), 120.0).breached is True


def test_a_warm_up_burst_followed_by_another_is_judged() -> None:
    # the first burst began with V2; a second one later is not a warm-up
    warm = np.where(GRID <= 150, 450.0, 182.0)
    errors = np.maximum(_burst(10, 40), _burst(90, 120))
    assert _judged(warm, errors, 120.0).breached is True


def test_a_burst_v1_shares_at_the_same_instants_is_no_v2_burst() -> None:
    # a dependency failing for both versions: V1's sample at each instant relaxes V2's
    # limit there (only where V2 is out against V1's level is V1's sample read)
    module = load_default_rules().for_module("checkout")
    rule = next(r for r in module.rules if r.name == "error_bursts")
    normal = np.full(len(GRID), 182.0)
    both = _burst(90, 120)
    store = SeriesStore({
        (Version.V1, "latency_p95_ms"): Series(GRID, 180.0 + 3 * WOBBLE),
        (Version.V2, "latency_p95_ms"): Series(GRID, normal),
        (Version.V1, "error_rate"): Series(GRID, both),
        (Version.V2, "error_rate"): Series(GRID, both),
    })
    shared = evaluate_bursts(rule, EvalContext(module, 120.0, 0.0, store, {}))
    assert shared.breached is False and shared.evidence["out"] == 0
    assert _judged(normal, both, 120.0).breached is True  # V1 quiet: V2's own burst
