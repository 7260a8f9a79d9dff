"""The judge decides the same at Unix times as at times counted from 0.

The daemon judges samples at epoch times (about 1.8e9 s), a backtest at seconds from the
rollout start. Boundary samples (a window's first, a stage's start) used to be kept by a
margin of 1e-9 s, which is below the float spacing at epoch times (2.4e-7 s), so the
daemon dropped samples a backtest kept: an extra hold, and a rollback 40 s earlier on
reg-latency-creep. The same recorded rollout is replayed through the real engine at both
scales here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from watchdog import baseline as baselines
from watchdog.backtest import replay
from watchdog.backtest.scenario import Scenario, load_scenario
from watchdog.config.loader import load_default_rules
from watchdog.engine import Engine
from watchdog.journal.store import Journal
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Version
from watchdog.rollout.state import Phase
from watchdog.sources.file import FileSource

SCENARIO = Path(__file__).parent / "data" / "scenarios" / "reg-latency-creep-2067.jsonl"
EPOCH = 1_796_515_200.0  # 2026-12-06T00:00:00Z


def decisions_at(scenario: Scenario, base: float) -> list[tuple[float, str, float]]:
    store = SeriesStore({key: Series.of([(t + base, v) for t, v in
                                         zip(s.t.tolist(), s.v.tolist(), strict=True)])
                         for key, s in scenario.store.items()})
    shifted = dataclasses.replace(scenario, store=store)
    rules = load_default_rules()
    module = rules.for_module(scenario.module)
    journal = Journal(":memory:")
    try:
        for metric in module.metrics:
            v1 = store.get(Version.V1, metric)
            journal.save_baseline(baselines.capture(
                scenario.module, metric, zip(v1.t.tolist(), v1.v.tolist(), strict=True),
                base + scenario.baseline_from, base + scenario.baseline_to, "test",
                captured_at=base))
        engine = Engine(rules, journal, FileSource(scenario=shifted),
                        plans={scenario.module: replay.scenario_plan(scenario, module.plan)})
        for k in range(int(scenario.end // scenario.step_seconds)):
            cp = engine.checkpoint(scenario.module)
            if cp is not None and cp.phase is Phase.ROLLED_BACK:
                break
            engine.tick(scenario.module, base + k * scenario.step_seconds)
        return [(jd.decision.at - base, jd.decision.action.value, jd.decision.traffic_percent)
                for jd in journal.decisions()]
    finally:
        journal.close()


def test_epoch_times_decide_as_times_from_zero() -> None:
    scenario = load_scenario(SCENARIO)
    from_zero = decisions_at(scenario, 0.0)
    assert from_zero[-1][1] == "rollback"
    assert decisions_at(scenario, EPOCH) == from_zero
