"""``rollout-watchdog check`` on the plan features of issue 20 (rules by stage, step back,
gates, approvals, groups): each file in tests/data/rules/plans_broken/ holds one problem
on the line marked ``# <- ERROR``; check names that file and line, says what is wrong,
and loads nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from watchdog.cli.main import cli
from watchdog.config.loader import load_paths
from watchdog.errors import ConfigError

BROKEN = Path(__file__).parent / "data" / "rules" / "plans_broken"
MARKER = "# <- ERROR"

EXPECTED = {
    "rule_unknown_stage.yaml": "stage 30 is not a stage of the plan (stages: 10, 50, 100)",
    "rule_per_stage_unknown.yaml": "per_stage 25 is not a stage of the plan",
    "rule_per_stage_bad_value.yaml": "per_stage.50: below (0.5) must be less than above",
    "gate_metric_no_rule.yaml": "gate 'faster' is on metric 'throughput_rps', which no "
                                "rule of the module declares (rules judge: error_rate)",
    "gate_unknown_stage.yaml": "gates[0].before: 75 is not a stage of the plan",
    "group_unknown_member.yaml": "groups[0].members[1].module: group 'comp': member "
                                 "'comp.b' is not a declared module (declared: comp.a)",
    "group_joins_after_100.yaml": "joins_at: a member joins at a stage of the group's "
                                  "plan, at most 100%; got '120%'",
    "group_joins_unknown_stage.yaml": "joins_at 25 is not a stage of the group's plan",
    "group_member_twice.yaml": "module 'comp.a' is a member of group 'one' already",
}


def marked_line(path: Path) -> int:
    lines = [n for n, text in enumerate(path.read_text("utf-8").splitlines(), start=1)
             if MARKER in text]
    assert len(lines) == 1, f"{path.name} must mark exactly one line with {MARKER!r}"
    return lines[0]


def test_every_broken_file_has_an_expectation() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_check_names_the_file_and_line(name: str) -> None:
    path = BROKEN / name
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 1, result.output
    assert f"{path}:{marked_line(path)}: " in result.output, result.output
    assert EXPECTED[name] in result.output
    assert "Traceback" not in result.output
    with pytest.raises(ConfigError):  # nothing half-loaded
        load_paths([path])
