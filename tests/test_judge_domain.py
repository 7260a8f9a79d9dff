"""Values outside a metric's domain are missing data (issue 16, item 6).

A fault-injection audit fed the daemon what a broken exporter or query can return: 1e308,
negative latencies, a negative V1 error rate. The judge took them as measurements: a V2
latency of 1e308 or -50 ms read as healthy (the overflow made every comparison false, and
a negative latency is "faster"), and a live V1 error rate of -1.003 rolled a healthy V2
back ("error_rate 0.0058 vs live V1 -1.003, z=1946"). Each test here failed before
:mod:`watchdog.judge.domain` filtered the samples at the entry of ``judge()``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module
from watchdog.judge.alerts import AlertState
from watchdog.judge.rules import EvalContext
from watchdog.judge.series import Series, SeriesStore
from watchdog.judge.verdict import judge
from watchdog.model import RuleResult, Verdict, VerdictKind, Version

# numpy warns about the overflow of 1e308 before the fix: expected there
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

MODULE: Module = load_default_rules().for_module("checkout")
STEP = 10.0
TYPICAL = {"latency_p95_ms": 180.0, "error_rate": 0.005, "throughput_rps": 50.0,
           "parse_rate": 0.99, "memory_rss_bytes": 5e8}


def healthy_values(metric: str, n: int, seed: int) -> np.ndarray:
    """A steady metric with a little noise (rates stay inside [0, 1])."""
    rng = np.random.default_rng(seed)
    level = TYPICAL[metric]
    values = level * (1.0 + 0.02 * rng.standard_normal(n))
    if metric == "error_rate":
        values = rng.binomial(2000, level, n) / 2000.0
    if metric == "parse_rate":
        values = np.minimum(values, 1.0)
    return np.asarray(values, dtype=float)


def store_with(end: float, v1: dict[str, np.ndarray] | None = None,
               v2: dict[str, np.ndarray] | None = None) -> SeriesStore:
    """Every standard metric for both versions on a 10 s grid from -600 s to ``end``,
    healthy, except the values given (replacing a version's whole series)."""
    times = np.arange(-600.0, end + 1e-9, STEP)
    found: dict[tuple[Version, str], Series] = {}
    for i, metric in enumerate(TYPICAL):
        for version, seed, given in ((Version.V1, i, v1 or {}), (Version.V2, 100 + i, v2 or {})):
            values = given.get(metric)
            if values is None:
                values = healthy_values(metric, len(times), seed)
            found[(version, metric)] = Series(times, np.resize(values, len(times)))
    return SeriesStore(found)


def run(store: SeriesStore, end: float, start: float = 600.0, traffic: float = 50.0
        ) -> list[Verdict]:
    """The judge's ticks from ``start`` to ``end`` (alert states carried), as the engine
    makes them; the rollout began at 0."""
    states: dict[str, AlertState] = {}
    verdicts = []
    for now in np.arange(start, end + 1e-9, STEP):
        ctx = EvalContext(module=MODULE, now=float(now), started_at=0.0,
                          series=store.until(float(now)), baselines={},
                          traffic_percent=traffic, stage_started_at=0.0)
        verdict, states = judge(ctx, states)
        verdicts.append(verdict)
    return verdicts


def result_of(verdict: Verdict, rule: str) -> RuleResult:
    return next(r for r in verdict.results if r.rule == rule)


def test_a_healthy_rollout_is_healthy() -> None:
    """The control: the same data without bad values is judged healthy at the end."""
    verdicts = run(store_with(1200.0), 1200.0)
    assert all(v.kind is not VerdictKind.CRITICAL for v in verdicts)
    assert verdicts[-1].kind is VerdictKind.HEALTHY, verdicts[-1].reasons


def test_a_negative_live_v1_error_rate_never_rolls_a_healthy_v2_back() -> None:
    """Seen: "error_rate 0.0058 vs live V1 -1.003, z=1946" rolled back twice."""
    end = 1200.0
    store = store_with(end, v1={"error_rate": np.array([-1.003, -1.002, -1.004])})
    verdicts = run(store, end)
    assert [v.reasons for v in verdicts if v.kind is VerdictKind.CRITICAL] == []
    last = result_of(verdicts[-1], "error_rate_regression")
    assert last.breached is None  # no V1 to compare with: can't tell, holds the rollout
    assert verdicts[-1].kind is VerdictKind.INCONCLUSIVE
    assert "V1 samples out of domain [0, 1] dropped" in last.summary


@pytest.mark.parametrize("value", [1e308, -1e308, -50.0, -0.001])
def test_an_impossible_v2_latency_is_missing_data_not_health(value: float) -> None:
    """Seen: V2 latency of 1e308 or negative was judged healthy (the healthy clock ran)."""
    end = 1200.0
    verdicts = run(store_with(end, v2={"latency_p95_ms": np.array([value])}), end)
    assert all(v.kind is not VerdictKind.HEALTHY for v in verdicts)
    last = result_of(verdicts[-1], "latency_p95_regression")
    assert last.breached is None
    assert "V2 samples out of domain" in last.summary, last.summary
    assert last.evidence["rejected"]["v2"] > 0


def test_a_few_impossible_samples_among_good_ones_are_dropped_and_said() -> None:
    """One V2 error rate of 1e308 in ten: the rest still judges the rule (healthy), and the
    evidence says how many samples were dropped and why."""
    end = 1200.0
    times = np.arange(-600.0, end + 1e-9, STEP)
    values = healthy_values("error_rate", len(times), 101)
    values[::10] = 1e308
    verdicts = run(store_with(end, v2={"error_rate": values}), end)
    assert verdicts[-1].kind is VerdictKind.HEALTHY, verdicts[-1].reasons
    last = result_of(verdicts[-1], "error_rate_regression")
    assert last.breached is False
    rejected = last.evidence["rejected"]
    assert rejected["v2"] >= 1 and rejected["v1"] == 0
    assert rejected["domain"] == "[0, 1]"
    assert all(math.isfinite(x) for x in last.evidence.values()
               if isinstance(x, float))
