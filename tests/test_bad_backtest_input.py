"""Backtest input that once looped forever or raised a traceback (issue 16, item 9).

The installed ``rollout-watchdog backtest`` runs in a subprocess: a replay that never ends
must fail the test by its (generous) timeout rather than hang the suite.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.backtest import replay
from watchdog.backtest.scenario import load_scenario
from watchdog.config import limits
from watchdog.config.loader import load_default_rules
from watchdog.errors import ScenarioError

DATA = Path(__file__).parent / "data" / "scenarios"
CLEAN = DATA / "aa-clean-1000.jsonl"
HANG_GUARD = 120.0  # seconds; the refusals below take well under one


def backtest(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "rollout-watchdog"
    return subprocess.run([str(script), "backtest", *args], capture_output=True, text=True,
                          timeout=HANG_GUARD, check=False)


def with_meta(tmp_path: Path, **changes: object) -> Path:
    lines = CLEAN.read_text().splitlines()
    meta = json.loads(lines[0])
    meta.update(changes)
    path = tmp_path / "scenario.jsonl"
    path.write_text("\n".join([json.dumps(meta), *lines[1:]]) + "\n")
    return path


@pytest.mark.parametrize("changes", [{"step_seconds": 1e-9}, {"end": 1e12}],
                         ids=["tiny-step", "far-end"])
def test_a_replay_of_too_many_ticks_is_refused(tmp_path: Path,
                                               changes: dict[str, float]) -> None:
    path = with_meta(tmp_path, **changes)
    done = backtest(str(path))
    assert done.returncode == 2, done.stderr
    assert f"error: {path}:1: meta: " in done.stderr
    assert f"more than {limits.REPLAY_TICKS.default:,} ticks" in done.stderr
    assert "WATCHDOG_LIMIT_REPLAY_TICKS" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_scenario_built_in_code_is_bounded_by_replay_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = load_scenario(CLEAN)
    monkeypatch.setenv("WATCHDOG_LIMIT_REPLAY_TICKS", "10")
    with pytest.raises(ScenarioError, match="more than 10 ticks"):
        replay.run(scenario, load_default_rules())


@pytest.mark.parametrize("line", [1, 2], ids=["meta-line", "sample-line"])
def test_a_deeply_nested_json_line_is_a_located_error(tmp_path: Path, line: int) -> None:
    lines = CLEAN.read_text().splitlines()[:5]
    lines[line - 1] = '{"t": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = backtest(str(path))
    assert done.returncode == 2, done.stderr
    assert f"error: {path}:{line}: " in done.stderr and "nested too deep" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_scenario_that_is_not_a_regular_file_is_refused() -> None:
    done = backtest("/dev/zero")
    assert done.returncode == 2, done.stderr
    assert "error: /dev/zero: cannot read: not a regular file" in done.stderr


def test_the_shipped_scenario_still_replays() -> None:
    done = backtest(str(CLEAN), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "promoted"


def test_an_integer_too_large_for_a_float_is_a_line_error(tmp_path: Path) -> None:
    # found by fuzzing: 400 digits where a number goes raised OverflowError out of the
    # loader (1e999 was already "must be a finite number")
    lines = CLEAN.read_text().splitlines()
    sample = json.loads(lines[5])
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join([*lines[:5], json.dumps(sample).replace(
        json.dumps(sample["value"]), "9" * 400), *lines[6:]]) + "\n")
    with pytest.raises(ScenarioError, match=r":6: value must be a finite number"):
        load_scenario(path)
    done = backtest(str(with_meta(tmp_path, end=int("9" * 400))))
    assert done.returncode == 2 and ":1: meta: end" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_stage_below_one_percent_replays_as_that_percentage(tmp_path: Path) -> None:
    # the scenario format takes stages in (0, 100]: 0.5 is 0.5 % (it once raised a
    # pydantic traceback: a rule file's plain 0.5 is refused as a likely fraction)
    meta = json.loads(CLEAN.read_text().splitlines()[0])
    path = with_meta(tmp_path, plan={**meta["plan"], "stages": [0.5, 100]})
    done = backtest(str(path), "--json")
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)["decisions"][0]
    assert first["traffic_percent"] == 0.5 and "at 0.5%" in first["reasons"][0]


def test_a_window_of_a_billion_weeks_is_refused_at_load(tmp_path: Path) -> None:
    # it passed `check` and then failed a tick (a critical z of an alpha that underflowed)
    from watchdog.config.loader import load_texts
    from watchdog.errors import ConfigError
    from watchdog.judge import stats

    rules = ("modules:\n  - name: m\n    metrics: {mem: {direction: growth_is_worse}}\n"
             "    rules: [{name: g, kind: growth, metric: mem, max_growth_per_hour: 10%,\n"
             "             window: 1000000000w, envelope: 5m}]\n")
    with pytest.raises(ConfigError, match="duration longer than ten years"):
        load_texts([("r.yaml", rules)])
    assert stats.z_critical(1e-20) > 9.0 and stats.z_critical(0.0) > 37.0
    assert stats.z_critical(0.05) == pytest.approx(1.6449, abs=1e-4)
