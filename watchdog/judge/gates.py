"""Promotion gates evaluated on a module's samples (issue 20 item 4). Pure: no I/O.

A gate is ``met``, ``pending`` (not shown yet: too few samples, the window not covered,
or the test not confident) or ``failed`` (the data shows the criterion is not met, at the
gate's confidence for a comparison). Only ``met`` lets the rollout step past it.

The comparison is a one-sided test of ``mean(V2) - f * mean(V1)`` against 0, where ``f``
is the margin's factor (non-inferiority of a higher-is-worse metric with margin 5 %:
V2 below 1.05 x V1; superiority of a lower-is-worse one with margin 20 %: V2 above
1.2 x V1). Samples of a metric are autocorrelated, so the variance of each mean is taken
from batch means (at most 20 batches of consecutive samples), not from the samples as if
independent; the normal quantile of the confidence gives the bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np

from watchdog.config.planparts import Gate
from watchdog.judge import stats
from watchdog.judge.series import SeriesStore
from watchdog.model import Direction, Version

BATCHES = 20
COVERAGE = 0.9  # the samples must span this share of the window


@dataclass(frozen=True)
class GateResult:
    gate: str
    metric: str
    before: float
    state: str  # met | pending | failed
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool:
        return self.state == "met"

    def as_evidence(self) -> dict[str, Any]:
        return {"gate": self.gate, "metric": self.metric, "before": self.before,
                "state": self.state, "summary": self.summary, **self.evidence}


def evaluate(gate: Gate, direction: Direction, store: SeriesStore, now: float,
             interval: float) -> GateResult:
    start = now - gate.window
    t2, v2 = store.get(Version.V2, gate.metric).window(start, now)
    covered = len(t2) >= 2 and t2[-1] - t2[0] >= COVERAGE * gate.window - interval
    base = {"window_s": gate.window, "n_v2": len(t2)}
    if len(t2) < gate.min_samples or not covered:
        span = 0.0 if len(t2) < 2 else t2[-1] - t2[0]
        return _result(gate, "pending", f"{gate.metric}: {len(t2)} V2 sample(s) over "
                                        f"{span:g}s; the gate needs {gate.min_samples} "
                                        f"over {gate.window:g}s", base)
    if gate.compare is None:
        return _limit(gate, v2, base)
    t1, v1 = store.get(Version.V1, gate.metric).window(start, now)
    if len(t1) < gate.min_samples:
        return _result(gate, "pending", f"{gate.metric}: {len(t1)} V1 sample(s) in the "
                                        f"window; the comparison needs {gate.min_samples}",
                       {**base, "n_v1": len(t1)})
    return _compare(gate, direction, v2, v1, {**base, "n_v1": len(t1)})


def _limit(gate: Gate, v2: np.ndarray, base: dict[str, Any]) -> GateResult:
    value = stats.aggregate(v2, gate.aggregate)
    ok = (gate.at_most is None or value <= gate.at_most) and (
        gate.at_least is None or value >= gate.at_least)
    wanted = " and ".join(w for w in (
        None if gate.at_most is None else f"<= {gate.at_most:g}",
        None if gate.at_least is None else f">= {gate.at_least:g}") if w)
    summary = (f"{gate.metric} {gate.aggregate} over {gate.window:g}s = {value:.6g} "
               f"(wanted {wanted})")
    return _result(gate, "met" if ok else "failed", summary,
                   {**base, "observed": value, "at_most": gate.at_most,
                    "at_least": gate.at_least})


def _compare(gate: Gate, direction: Direction, v2: np.ndarray, v1: np.ndarray,
             base: dict[str, Any]) -> GateResult:
    # a growth_is_worse metric (memory) compares by level: more is worse
    worse_high = direction is not Direction.LOWER_IS_WORSE
    # V2 must stay below f x V1 (upper) or above it (lower)
    if gate.compare == "non_inferiority":
        factor, below = (1 + gate.margin, True) if worse_high else (1 - gate.margin, False)
    else:
        factor, below = (1 - gate.margin, True) if worse_high else (1 + gate.margin, False)
    m2, se2 = _mean_se(v2)
    m1, se1 = _mean_se(v1)
    diff = m2 - factor * m1
    se = math.hypot(se2, factor * se1)
    z = NormalDist().inv_cdf(gate.confidence)
    upper, lower = diff + z * se, diff - z * se
    shown, opposite = (upper < 0, lower > 0) if below else (lower > 0, upper < 0)
    state = "met" if shown else ("failed" if opposite else "pending")
    ratio = m2 / m1 if m1 else math.inf
    relation = "<" if below else ">"
    summary = (f"{gate.metric}: V2/V1 = {ratio:.4g} (V2 {m2:.6g}, V1 {m1:.6g}); "
               f"{gate.compare} wants V2 {relation} {factor:g} x V1 at "
               f"{gate.confidence:.0%} confidence: "
               + {"met": "shown", "failed": "the opposite is shown",
                  "pending": "not shown yet"}[state])
    return _result(gate, state, summary, {
        **base, "v2_mean": m2, "v1_mean": m1, "factor": factor, "difference": diff,
        "se": se, "bound": upper if below else lower, "confidence": gate.confidence})


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and its standard error from batch means (autocorrelation-robust)."""
    n = len(values)
    batches = min(BATCHES, n // 2) if n >= 4 else n
    size = n // batches
    means = values[: size * batches].reshape(batches, size).mean(axis=1)
    se = float(np.std(means, ddof=1) / math.sqrt(batches)) if batches > 1 else math.inf
    return float(values.mean()), se


def _result(gate: Gate, state: str, summary: str, evidence: dict[str, Any]) -> GateResult:
    return GateResult(gate.name, gate.metric, gate.before, state,
                      f"gate {gate.name}: {summary}", evidence)


def evaluate_all(gates: Sequence[Gate], directions: dict[str, Direction],
                 store: SeriesStore, now: float, interval: float) -> list[GateResult]:
    return [evaluate(g, directions[g.metric], store, now, interval) for g in gates]
