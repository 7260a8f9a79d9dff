"""What the web view charts: each module's judged values, tick by tick, over its current
stage (kept in the daemon's memory; the journal does not keep samples).

Per tick and metric, the first rule of that metric whose evidence has both an
``observed`` value and a ``reference`` gives one point: V2's aggregate over the rule's
window (``observed``) against V1's (``reference``: live V1's aggregate over the same
window, or the stored baseline's level), with the rule's limit. These are the numbers
the rule compared, not raw samples. A new stage (or a new rollout) starts afresh; at
most :data:`MAX_POINTS` ticks are kept per module. Per rule, the last tick's observed
value and limit are kept too (``watchdog_rule_value`` / ``_threshold`` in /metrics).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from watchdog.engine import TickResult
from watchdog.judge.alerts import AlertPhase
from watchdog.telemetry.hooks import rule_numbers, rule_state_of

MAX_POINTS = 720
"""Ticks kept per module (12 hours at the default one-minute interval)."""


@dataclass(frozen=True)
class Point:
    """One tick's comparison of one metric."""

    t: float
    v1: float
    v2: float
    limit: float | None


@dataclass(frozen=True)
class RuleNow:
    """One rule at a module's last tick."""

    rule: str
    metric: str
    state: str  # ok, inconclusive, warming, inapplicable, pending, firing
    observed: float | None
    limit: float | None
    summary: str


@dataclass(frozen=True)
class Ticks:
    """A module's ticks over its current stage, as :meth:`TickHistory.of` copies them."""

    stage: int
    stage_started_at: float
    evaluated_at: float
    rules: tuple[RuleNow, ...]
    # per metric: (the rule charted, what V1's value is, the points oldest first)
    metrics: dict[str, tuple[str, str, tuple[Point, ...]]]


def finite(value: object) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def comparison(evidence: dict[str, Any]) -> tuple[float, float, float | None, str] | None:
    """(V1, V2, limit, what V1 is) from one rule's evidence, or None when it compares no
    V2 aggregate with a V1 one (bursts, growth, inconclusive)."""
    v2, v1 = finite(evidence.get("observed")), finite(evidence.get("reference"))
    if v1 is None or v2 is None:
        return None
    against = evidence.get("against")
    what = "live V1" if against == "live_v1" else "V1 baseline" if against == "baseline" \
        else "V1"
    return v1, v2, finite(evidence.get("limit")), what


class _Module:
    def __init__(self, stage: int, stage_started_at: float) -> None:
        self.stage = stage
        self.stage_started_at = stage_started_at
        self.evaluated_at = stage_started_at
        self.rules: tuple[RuleNow, ...] = ()
        self.metrics: dict[str, tuple[str, str, deque[Point]]] = {}


class TickHistory:
    """Fed by the daemon after each tick (:meth:`note`), read by the API (:meth:`of`).
    Thread-safe."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        self._lock = threading.Lock()
        self._max = max_points
        self._modules: dict[str, _Module] = {}

    def note(self, result: TickResult) -> None:
        verdict = result.verdict
        if verdict is None:  # the tick only started the rollout
            return
        cp = result.checkpoint
        phases = {name: s.phase for name, s in cp.alerts.items()}
        rules = []
        points: dict[str, tuple[str, str, Point]] = {}
        for r in verdict.results:
            observed, limit = rule_numbers(r)
            rules.append(RuleNow(r.rule, r.metric,
                                 rule_state_of(r, phases.get(r.rule, AlertPhase.INACTIVE)),
                                 finite(observed), finite(limit), r.summary))
            found = comparison(r.evidence)
            if found is not None and r.metric not in points:
                v1, v2, lim, what = found
                points[r.metric] = (r.rule, what, Point(verdict.at, v1, v2, lim))
        with self._lock:
            mod = self._modules.get(result.module)
            if mod is None or (mod.stage, mod.stage_started_at) != (cp.stage,
                                                                    cp.stage_started_at):
                mod = self._modules[result.module] = _Module(cp.stage, cp.stage_started_at)
            mod.evaluated_at = verdict.at
            mod.rules = tuple(rules)
            for metric, (rule, what, point) in points.items():
                kept = mod.metrics.get(metric)
                series = kept[2] if kept is not None else deque(maxlen=self._max)
                series.append(point)
                mod.metrics[metric] = (rule, what, series)

    def of(self, module: str) -> Ticks | None:
        with self._lock:
            mod = self._modules.get(module)
            if mod is None:
                return None
            return Ticks(mod.stage, mod.stage_started_at, mod.evaluated_at, mod.rules,
                         {m: (rule, what, tuple(series))
                          for m, (rule, what, series) in mod.metrics.items()})
