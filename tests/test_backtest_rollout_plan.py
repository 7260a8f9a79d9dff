"""A replay judges by the recording's own plan, not the module's (the always-valid test
splits its alpha over the stages the rollout goes through, and places its start points
over the holds it keeps). The shipped plan has six stages of ten minutes; the recording
here has five (5, 25, 50, 75, 100 %)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from watchdog.backtest import replay
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import load_default_rules
from watchdog.engine import TickResult
from watchdog.judge.tuning import tuning

DATA = Path(__file__).parent / "data" / "scenarios"


def test_the_always_valid_test_splits_alpha_over_the_recordings_stages() -> None:
    scenario = load_scenario(DATA / "reg-latency-x1.25-at-25pct-1485.jsonl")
    rules = load_default_rules()
    assert len(rules.for_module(scenario.module).plan.stages) != len(scenario.stages)
    seen: list[tuple[float, int, float]] = []

    def tick(result: TickResult) -> None:
        if result.verdict is None:
            return
        for r in result.verdict.results:
            if "av_stages" in r.evidence:
                seen.append((result.verdict.at, r.evidence["av_stages"],
                             r.evidence["av_threshold"]))

    done = replay.run(scenario, rules, on_tick=tick)
    assert done.outcome == "rolled_back"
    assert seen and {s for _, s, _ in seen} == {len(scenario.stages)}
    alpha = tuning().av_alpha
    later = alpha * (1 - tuning().av_first_stage) / (len(scenario.stages) - 1)
    # the regression starts at 25 %: the second stage's share, of five stages, not six
    assert [th for at, _, th in seen if at >= scenario.stage_seconds][-1] == pytest.approx(
        math.log(1 / later), abs=1e-3)
