"""``backtest --plot``: the PNG is written, readable, and failures exit 2 with a clear message."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from watchdog.backtest import replay
from watchdog.backtest.plot import draw, fired_rules
from watchdog.backtest.scenario import load_scenario
from watchdog.cli.main import cli
from watchdog.config.loader import RuleSet, load_default_rules
from watchdog.errors import WatchdogError
from watchdog.model import Action, Decision

SCENARIOS = Path(__file__).parent / "data" / "scenarios"
ROLLED_BACK = SCENARIOS / "reg-latency-x1.25-at-25pct-1485.jsonl"
PROMOTED = SCENARIOS / "aa-clean-1000.jsonl"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_default_rules()


def test_draw_a_promoted_rollout(tmp_path: Path, rules: RuleSet) -> None:
    # the clean A/A recording on a short plan (50% then 100%, 5 minutes each) promotes
    scenario = replace(load_scenario(PROMOTED), stages=(50.0, 100.0), stage_seconds=300.0)
    result = replay.run(scenario, rules)
    assert result.outcome == "promoted"
    out = tmp_path / "promoted.png"
    draw(result, rules, str(out))
    check_png(out)


def check_png(path: Path) -> None:
    width, height = png_size(path)
    # a traffic panel plus one panel per metric: wide and tall enough to read
    assert 900 <= width <= 2000
    assert height >= 6 * 150
    assert 30_000 < path.stat().st_size < 300_000


def test_draw_reports_an_unwritable_path(tmp_path: Path, rules: RuleSet) -> None:
    result = replay.run(load_scenario(ROLLED_BACK), rules, stop_after=60)
    target = tmp_path / "no-such-dir" / "plot.png"
    with pytest.raises(WatchdogError, match="cannot write plot"):
        draw(result, rules, str(target))
    assert not target.exists()


def test_cli_backtest_plot_of_a_rollback(tmp_path: Path) -> None:
    out = tmp_path / "bt.png"
    run = CliRunner().invoke(cli, ["backtest", str(ROLLED_BACK), "--plot", str(out)])
    assert run.exit_code == 0, run.output
    assert "outcome: rolled back" in run.output
    assert f"plot written to {out}" in run.output
    check_png(out)


def test_cli_backtest_plot_unwritable_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "missing" / "bt.png"
    run = CliRunner().invoke(cli, ["backtest", str(ROLLED_BACK), "--plot", str(out)])
    assert run.exit_code == 2
    assert "cannot write plot" in run.output


def test_cli_without_matplotlib_exits_2_and_names_the_extra(tmp_path: Path) -> None:
    # A real interpreter where `import matplotlib` fails, as on an install without [plot].
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = {**os.environ, "PYTHONPATH": str(shadow.parent)}
    out = tmp_path / "bt.png"
    proc = subprocess.run(
        [sys.executable, "-c", "from watchdog.cli.main import main; main()", "backtest",
         str(ROLLED_BACK), "--plot", str(out)],
        capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "rollout-watchdog[plot]" in proc.stderr
    assert proc.stdout == ""  # it says so before replaying, not after printing a timeline
    assert not out.exists()


def test_fired_rules_come_from_the_reasons() -> None:
    evidence = ({"rule": "latency", "metric": "latency_p95_ms", "breached": True},
                {"rule": "errors", "metric": "error_rate", "breached": False})
    d = Decision("m", 60.0, Action.ROLLBACK, 0.0, 1, None,
                 ("latency: 250 vs 180", "failures: 1 in a row"), evidence)
    assert fired_rules(d) == ["latency"]
    manual = Decision("m", 60.0, Action.ROLLBACK, 0.0, 1, None, ("operator said so",))
    assert fired_rules(manual) == []


def test_a_step_back_is_drawn_as_a_stage_boundary_with_its_cause(
        tmp_path: Path, rules: RuleSet, monkeypatch: pytest.MonkeyPatch) -> None:
    # a step back (on_failure: step_back) marks where and why V2 was cut back: a line
    # through every panel, the new share, and a box naming the rule that fired
    from matplotlib.colors import to_hex

    from watchdog.backtest import plot
    from watchdog.journal.records import JournaledDecision

    result = replay.run(load_scenario(ROLLED_BACK), rules)
    rollback = result.decisions[-1].decision  # its reasons and evidence, 30 s earlier
    step = replace(rollback, at=rollback.at - 30.0, action=Action.STEP_BACK,
                   traffic_percent=5.0, from_stage=1, to_stage=0)
    result = replace(result, decisions=(*result.decisions[:-1],
                                        JournaledDecision(99, step, step.at, step.at, None),
                                        result.decisions[-1]))
    seen: dict[str, Any] = {}
    monkeypatch.setattr(plot, "_save", lambda fig, path: seen.update(fig=fig))
    draw(result, rules, str(tmp_path / "x.png"))
    fig = seen["fig"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any(t.startswith("step back: latency_p95_regression") for t in texts), texts
    assert "5%" in texts
    orange = to_hex(plot.MARKERS[Action.STEP_BACK].colour)
    for ax in fig.axes:  # the boundary runs through the traffic panel and every metric's
        assert any(to_hex(line.get_color()) == orange and line.get_xdata()[0] == step.at / 60
                   for line in ax.get_lines()), ax.get_title()
