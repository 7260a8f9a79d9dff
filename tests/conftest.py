"""Shared fixtures: plans and verdicts for the state machine, a tiny rule set with a
scriptable source for the engine, and a journal on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from watchdog.config.loader import RuleSet, load_texts
from watchdog.config.schema import FailureLimits, Module, Plan, Stage
from watchdog.journal.store import Journal
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Verdict, VerdictKind, Version

DATA = Path(__file__).parent / "data"
SCENARIOS = DATA / "scenarios"


def make_plan(stages: tuple[float, ...] = (10, 50, 100), hold: float = 60.0,
              consecutive: int = 2, cumulative: int = 3,
              max_inconclusive: float = 120.0) -> Plan:
    return Plan(stages=[Stage(traffic=s) for s in stages], hold=hold,
                failure_limits=FailureLimits(consecutive=consecutive, cumulative=cumulative),
                max_inconclusive=max_inconclusive)


def make_verdict(kind: VerdictKind, at: float = 0.0, module: str = "checkout",
                 rules: tuple[str, ...] = ("latency",)) -> Verdict:
    """A verdict of ``kind``; non-healthy ones name ``rules`` as their cause."""
    if kind is VerdictKind.HEALTHY:
        return Verdict(module, at, kind, ())
    reasons = tuple(f"{r}: {kind.value} evidence" for r in rules)
    firing = rules if kind in (VerdictKind.WARNING, VerdictKind.CRITICAL) else ()
    return Verdict(module, at, kind, (), firing, reasons)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.db")
    yield j
    j.close()


# -- a tiny module whose verdict a test chooses through the value it feeds -------------

ENGINE_RULES = """
modules:
  - name: svc
    interval: 10s
    metrics:
      m: {direction: higher_is_worse}
    rules:
      - {name: m_high, kind: absolute, metric: m, above: 100, window: 5s, for: 0s,
         min_samples: 1, severity: warning, action: hold}
      - {name: m_critical, kind: absolute, metric: m, above: 150, window: 5s, for: 0s,
         min_samples: 1, severity: critical, action: rollback}
    plan:
      stages: [10, 50, 100]
      hold: 60s
      failure_limits: {consecutive: 2, cumulative: 3}
      max_inconclusive: 120s
"""

# the value fed for each verdict wanted (None: no sample, so the rules lack evidence)
VALUE_FOR = {VerdictKind.HEALTHY: 50.0, VerdictKind.WARNING: 120.0,
             VerdictKind.CRITICAL: 200.0, VerdictKind.INCONCLUSIVE: None}


def engine_rules() -> RuleSet:
    return load_texts([("<test rules>", ENGINE_RULES)])


class ScriptedSource:
    """A Source whose V2 samples of metric ``m`` are whatever the test has fed it."""

    name = "scripted"

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []
        self.fetches = 0

    def feed(self, t: float, value: float | None) -> None:
        if value is not None:
            self.points.append((t, value))

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        self.fetches += 1
        inside = [(t, v) for t, v in self.points if start < t <= end]
        return SeriesStore({(Version.V2, "m"): Series.of(inside)})


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (which cannot import this file by name)."""
    return SimpleNamespace(plan=make_plan, verdict=make_verdict, engine_rules=engine_rules,
                           ScriptedSource=ScriptedSource, VALUE_FOR=VALUE_FOR,
                           SCENARIOS=SCENARIOS)
