"""A rollout run half-way, reopened from a new process and finished, makes exactly the
decisions of an uninterrupted run (the journal's checkpoint holds all that matters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from watchdog.backtest.replay import run
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import load_default_rules
from watchdog.journal.store import Journal
from watchdog.model import Action
from watchdog.rollout.state import Phase

# Runs one replay in a fresh interpreter: scenario, journal, stop_after ("-" for none).
CHILD = """
import json, sys
from watchdog.backtest.replay import run
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import load_default_rules
stop = None if sys.argv[3] == "-" else float(sys.argv[3])
result = run(load_scenario(sys.argv[1]), load_default_rules(), journal_path=sys.argv[2],
             stop_after=stop)
print(json.dumps({"finished": result.finished, "decisions": len(result.decisions)}))
"""


def in_new_process(scenario: Path, journal: Path, stop_after: float | None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(scenario), str(journal),
         "-" if stop_after is None else repr(stop_after)],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def decisions(path: Path) -> list[tuple[Any, ...]]:
    journal = Journal(path)
    try:
        return [(d.at, d.action, d.traffic_percent, d.reasons, d.from_stage, d.to_stage,
                 d.evidence) for d in (j.decision for j in journal.decisions())]
    finally:
        journal.close()


def final_checkpoint(path: Path, module: str) -> Any:
    journal = Journal(path)
    try:
        return journal.checkpoint(module)
    finally:
        journal.close()


def truth(scenarios: Path, name: str) -> dict[str, Any]:
    entries = json.loads((scenarios / "truth.json").read_text())
    return next(e for e in entries if e["scenario"] == name)


def uninterrupted(scenario_path: Path, tmp_path: Path) -> tuple[Any, Path]:
    whole = tmp_path / "whole.db"
    return run(load_scenario(scenario_path), load_default_rules(), journal_path=whole), whole


def split_and_compare(scenario_path: Path, tmp_path: Path, whole: Path,
                      stop_after: float) -> None:
    halves = tmp_path / "halves.db"
    module = load_scenario(scenario_path).module
    expected = decisions(whole)
    # the split falls strictly inside the rollout: decisions on both sides of it
    assert any(d[0] <= stop_after for d in expected)
    assert any(d[0] > stop_after for d in expected)

    first = in_new_process(scenario_path, halves, stop_after)
    assert first["finished"] is False
    half = decisions(halves)
    assert 0 < len(half) < len(expected)
    assert half == [d for d in expected if d[0] <= stop_after]
    paused_at = final_checkpoint(halves, module)
    assert paused_at is not None and paused_at.phase is Phase.PROGRESSING

    second = in_new_process(scenario_path, halves, None)
    assert second["finished"] is True
    assert decisions(halves) == expected
    assert final_checkpoint(halves, module) == final_checkpoint(whole, module)


@pytest.mark.slow
def test_resumed_regression_rolls_back_exactly_as_an_uninterrupted_run(
        kit: Any, tmp_path: Path) -> None:
    name = "reg-latency-x1.25-at-25pct-1485"
    path = kit.SCENARIOS / f"{name}.jsonl"
    outcome, whole = uninterrupted(path, tmp_path)
    assert outcome.outcome == "rolled_back"
    assert outcome.rollback_at is not None
    assert outcome.rollback_at > truth(kit.SCENARIOS, name)["onset"]
    # stop on the tick before the rollback: after the advance to 25%, while the rules that
    # are about to roll back are (with a `for`) still pending, so their alert states must
    # survive the restart too
    acts = [j.decision for j in outcome.decisions]
    before = [d for d in acts if d.at < outcome.rollback_at]
    assert before[-1].action is Action.ADVANCE
    split = outcome.rollback_at - load_scenario(path).step_seconds
    assert before[-1].at <= split < outcome.rollback_at
    split_and_compare(path, tmp_path, whole, split)


@pytest.mark.slow
def test_resumed_healthy_rollout_promotes_exactly_as_an_uninterrupted_run(
        kit: Any, tmp_path: Path) -> None:
    path = kit.SCENARIOS / "aa-clean-1000.jsonl"
    outcome, whole = uninterrupted(path, tmp_path)
    assert outcome.outcome == "promoted"
    assert outcome.decisions[-1].decision.at > 1500
    split_and_compare(path, tmp_path, whole, 1500.0)
