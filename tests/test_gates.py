"""Promotion gates (issue 20 item 4): the statistics (judge/gates.py), the machine's hold
(rollout/promotion.py) and the configuration. On a recording: rules/tests/gates_test.yaml."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from watchdog.config.loader import load_texts
from watchdog.config.planparts import Gate
from watchdog.errors import ConfigError
from watchdog.judge.gates import GateResult, evaluate
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Action, Direction, VerdictKind, Version
from watchdog.rollout import machine
from watchdog.rollout.state import Phase


def ar1(n: int, mean: float, sd: float, seed: int, phi: float = 0.7) -> np.ndarray:
    """Autocorrelated noise around ``mean``, as metric samples are."""
    rng = np.random.default_rng(seed)
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + rng.normal(0, sd)
    return mean + e


def store(v2: np.ndarray, v1: np.ndarray | None = None, step: float = 10.0) -> SeriesStore:
    series = {(Version.V2, "m"): Series.of((i * step, float(x)) for i, x in enumerate(v2))}
    if v1 is not None:
        series[(Version.V1, "m")] = Series.of((i * step, float(x)) for i, x in enumerate(v1))
    return SeriesStore(series)


def gate(**fields: Any) -> Gate:
    return Gate(**{"name": "g", "metric": "m", "window": 3600.0, **fields})


NOW = 3600.0
N = 361


def test_non_inferiority_is_met_when_v2_is_as_good_and_pending_on_little_data() -> None:
    g = gate(compare="non_inferiority", margin=0.05)
    same = store(ar1(N, 100, 3, 1), ar1(N, 100, 3, 2))
    assert evaluate(g, Direction.HIGHER_IS_WORSE, same, NOW, 10).state == "met"
    short = store(ar1(30, 100, 3, 1), ar1(30, 100, 3, 2))
    result = evaluate(g, Direction.HIGHER_IS_WORSE, short, 290.0, 10)
    assert result.state == "pending" and "over 3600s" in result.summary


def test_a_latency_10pct_worse_fails_a_5pct_non_inferiority() -> None:
    g = gate(compare="non_inferiority", margin=0.05)
    worse = store(ar1(N, 110, 3, 1), ar1(N, 100, 3, 2))
    result = evaluate(g, Direction.HIGHER_IS_WORSE, worse, NOW, 10)
    assert result.state == "failed"
    assert result.evidence["factor"] == pytest.approx(1.05)


@pytest.mark.parametrize(("v2_mean", "state"), [(130, "met"), (121, "pending"),
                                                 (105, "failed")])
def test_superiority_of_throughput_by_20pct(v2_mean: float, state: str) -> None:
    g = gate(compare="superiority", margin=0.20)
    s = store(ar1(N, v2_mean, 8, 3), ar1(N, 100, 8, 4))
    assert evaluate(g, Direction.LOWER_IS_WORSE, s, NOW, 10).state == state


def test_autocorrelation_widens_the_bound() -> None:
    """Batch means: strongly autocorrelated samples give a wider bound than their
    scatter would as independent samples, so a small edge is not 'shown'."""
    g = gate(compare="superiority", margin=0.0)
    s = store(ar1(N, 100.6, 1, 5, phi=0.97), ar1(N, 100, 1, 6, phi=0.97))
    result = evaluate(g, Direction.LOWER_IS_WORSE, s, NOW, 10)
    naive = np.hypot(np.std(s.get(Version.V2, "m").v) / np.sqrt(N),
                     np.std(s.get(Version.V1, "m").v) / np.sqrt(N))
    assert result.evidence["se"] > 2 * naive


def test_a_limit_gate_needs_the_window_covered() -> None:
    g = gate(at_most=0.001, aggregate="max", window=600.0, min_samples=5)
    ok = store(np.full(61, 0.0005))
    assert evaluate(g, Direction.HIGHER_IS_WORSE, ok, 600.0, 10).state == "met"
    assert evaluate(g, Direction.HIGHER_IS_WORSE, ok, 300.0, 10).state == "pending"
    spike = store(np.r_[np.full(60, 0.0005), 0.002])
    assert evaluate(g, Direction.HIGHER_IS_WORSE, spike, 600.0, 10).state == "failed"


# -- the machine ----------------------------------------------------------------------


def gated_plan(kit: Any, on_fail: str = "hold") -> Any:
    plan = kit.plan(stages=(10, 50, 100), hold=60.0)
    g = Gate(name="g", metric="m", compare="superiority", margin=0.2, on_fail=on_fail)
    return plan.model_copy(update={"gates": [g]})


def result(state: str) -> GateResult:
    return GateResult("g", "m", 100.0, state, f"gate g: {state}")


def to_50(kit: Any, plan: Any) -> tuple[Any, float]:
    cp, _ = machine.start("m", plan, 0.0)
    cp, _ = machine.on_verdict(cp, kit.verdict(VerdictKind.HEALTHY, 60.0, "m"), plan, 60.0)
    assert cp.traffic_percent == 50.0
    return cp, 60.0


def test_an_unmet_gate_holds_once_per_cause_and_a_met_one_advances_with_evidence(
        kit: Any) -> None:
    plan = gated_plan(kit)
    cp, now = to_50(kit, plan)
    journaled = []
    for k, state in enumerate(["pending"] * 5 + ["failed"] * 3 + ["met"]):
        now = 120.0 + 10 * k
        cp, ds = machine.on_verdict(cp, kit.verdict(VerdictKind.HEALTHY, now, "m"), plan,
                                    now, gates=[result(state)])
        journaled += ds
    assert [d.action for d in journaled] == [Action.HOLD, Action.HOLD, Action.ADVANCE]
    assert "promotion gate(s) before 100% not met" in journaled[0].reasons[1]
    assert journaled[0].evidence[-1]["state"] == "pending"
    assert journaled[-1].evidence[-1] == {"gate": "g", "metric": "m", "before": 100.0,
                                          "state": "met", "summary": "gate g: met"}
    assert cp.traffic_percent == 100.0


def test_a_gate_without_a_result_is_pending_never_skipped(kit: Any) -> None:
    plan = gated_plan(kit)
    cp, _ = to_50(kit, plan)
    cp, (d,) = machine.on_verdict(cp, kit.verdict(VerdictKind.HEALTHY, 200.0, "m"), plan,
                                  200.0)
    assert d.action is Action.HOLD and cp.traffic_percent == 50.0


def test_a_failed_gate_rolls_back_only_when_the_rule_says_so(kit: Any) -> None:
    cp, _ = to_50(kit, gated_plan(kit, on_fail="rollback"))
    plan = gated_plan(kit, on_fail="rollback")
    held, (d,) = machine.on_verdict(cp, kit.verdict(VerdictKind.HEALTHY, 200.0, "m"), plan,
                                    200.0, gates=[result("pending")])
    assert d.action is Action.HOLD  # unsure is never a rollback
    gone, (d,) = machine.on_verdict(held, kit.verdict(VerdictKind.HEALTHY, 210.0, "m"),
                                    plan, 210.0, gates=[result("failed")])
    assert d.action is Action.ROLLBACK and gone.phase is Phase.ROLLED_BACK


BASE = """
modules:
  - name: gated
    metrics:
      error_rate: {direction: higher_is_worse}
      mem: {direction: growth_is_worse}
    rules:
      - {name: errors, kind: absolute, metric: error_rate, above: 0.01}
      - {name: leak, kind: growth, metric: mem, max_growth_per_hour: 5%}
    plan:
      stages: [10, 50, 100]
      gates:
        - GATE
"""


@pytest.mark.parametrize(("gate_text", "message"), [
    ("{name: g, metric: error_rate, at_most: 0.001, compare: superiority}",
     "give either at_most / at_least"),
    ("{name: g, metric: error_rate}", "give either at_most / at_least"),
    ("{name: g, metric: error_rate, at_most: 0.001, before: 10}", "is the first stage"),
    ("{name: g, metric: error_rate, at_most: 0.1, margin: 5%}", "margin applies only"),
    ("{name: g, metric: error_rate, compare: superiority, confidence: 1.5}",
     "confidence"),
])
def test_bad_gates_are_load_errors(gate_text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_texts([("g.yaml", BASE.replace("GATE", gate_text))])
    assert message in str(err.value)
    assert "g.yaml:1" in str(err.value)  # a line of the plan
