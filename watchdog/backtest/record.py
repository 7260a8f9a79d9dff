"""Record a past rollout from production into the recorded-rollout format (FORMAT.md).

``rollout-watchdog record`` (:mod:`watchdog.cli.record`) reads both versions of a module
from the configured source over a past window, V1's baseline window before the rollout
start included, and the journal's decisions over that window; :func:`recording` turns
them into scenario lines that :func:`~watchdog.backtest.scenario.load_scenario` reads and
``backtest`` replays. Pure: no I/O here.

- **t = 0** is the rollout start: the first advance the journal holds for the module in
  the window (the daemon's first decision), else the window's start.
- **Samples** are the source's, on its grid of ``step_seconds`` (the module's interval)
  aligned to t = 0, relative to the start; a metric with no sample is not declared.
- **The plan**: the stages are the traffic of the journal's advances and promotion over
  the window, then the configured plan's higher stages (a rollout rolled back at 25 %
  still replays as the plan it was on); ``stage_seconds`` is the configured plan's hold
  (the recorded-rollout format has one hold for every stage).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchdog.config.schema import Module
from watchdog.journal.records import JournaledDecision
from watchdog.judge.series import SeriesStore
from watchdog.model import Action, Version

ADVANCING = (Action.ADVANCE, Action.PROMOTE)


@dataclass(frozen=True)
class Window:
    """Absolute times (Unix seconds) of a recording: t = 0 is ``start``."""

    start: float
    baseline: float  # seconds of V1 before the start
    end: float  # the last sample time; a whole number of steps after ``start``
    step: float

    @property
    def fetch_from(self) -> float:
        """Exclusive lower bound that makes the source's grid start at the baseline's
        first step (sources return ``from < t <= to``)."""
        return self.start - self.baseline - self.step / 2


def window(start: float, until: float, baseline: float, step: float) -> Window:
    """The recording's window: ``until`` moved back onto the grid of ``step`` from
    ``start``, so every sample time is a whole number of steps from the start."""
    if step <= 0 or baseline <= 0:
        raise ValueError("need step > 0 and a baseline window > 0")
    steps = math.floor((until - start) / step + 1e-9)
    if steps < 1:
        raise ValueError(f"the window after the rollout start is shorter than one step "
                         f"({step:g}s)")
    return Window(start, baseline, start + steps * step, step)


def rollout_start(decisions: Iterable[JournaledDecision]) -> JournaledDecision | None:
    """The first advance (the rollout's start) among ``decisions``, in journal order."""
    return next((jd for jd in decisions if jd.decision.action is Action.ADVANCE), None)


def plan_stages(decisions: Iterable[JournaledDecision],
                configured: Sequence[float]) -> tuple[float, ...]:
    """The stages the journal shows the rollout on, then the configured higher ones."""
    seen: list[float] = []
    for jd in decisions:
        d = jd.decision
        traffic = 100.0 if d.action is Action.PROMOTE else d.traffic_percent
        if d.action in ADVANCING and traffic > 0 and (not seen or traffic > seen[-1]):
            seen.append(traffic)
    top = seen[-1] if seen else 0.0
    return (*seen, *(s for s in configured if s > top))


@dataclass(frozen=True)
class Recording:
    meta: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    missing: tuple[str, ...] = ()  # declared metrics the source had no sample of

    def text(self) -> str:
        lines = [json.dumps(self.meta, separators=(",", ":"))]
        lines += [json.dumps(s, separators=(",", ":")) for s in self.samples]
        return "\n".join(lines) + "\n"


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def recording(name: str, module: Module, store: SeriesStore, span: Window,
              stages: Sequence[float], stage_seconds: float) -> Recording:
    """The scenario of ``module`` over ``span`` from the samples in ``store``."""
    lo, hi = span.start - span.baseline - 1e-6, span.end + 1e-6
    rows: list[tuple[float, int, int, dict[str, Any]]] = []
    declared: dict[str, str] = {}
    missing: list[str] = []
    for m_index, (metric, spec) in enumerate(module.metrics.items()):
        found = False
        for v_index, version in enumerate((Version.V1, Version.V2)):
            series = store.get(version, metric)
            for t, value in zip(series.t.tolist(), series.v.tolist(), strict=True):
                if not (lo <= t <= hi and math.isfinite(value)):
                    continue
                found = True
                rel = round(t - span.start, 3)
                rows.append((rel, v_index, m_index, {"t": _num(rel), "version": version.value,
                                                     "metric": metric, "value": value}))
        if found:
            declared[metric] = spec.direction.value
        else:
            missing.append(metric)
    rows.sort(key=lambda r: r[:3])
    meta = {"kind": "meta", "scenario": name, "module": module.name,
            "step_seconds": _num(span.step),
            "baseline": {"from": _num(-span.baseline), "to": 0},
            "plan": {"stages": [_num(s) for s in stages], "stage_seconds": _num(stage_seconds)},
            "end": _num(round(span.end - span.start, 3)), "metrics": declared,
            "recorded": {"from": span.start - span.baseline, "start": span.start,
                         "to": span.end}}
    return Recording(meta, [r[3] for r in rows], tuple(missing))
