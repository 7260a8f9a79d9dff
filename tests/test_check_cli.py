"""``rollout-watchdog check``: shipped rules pass; each broken file fails with file:line.

Every file in tests/data/rules/broken/ holds exactly one problem, on the line marked
``# <- ERROR``; the check must name that file and line and say what was expected.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from watchdog.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "rules"
BROKEN = DATA / "broken"
MARKER = "# <- ERROR"

# file -> what the message must say (the line comes from the marker in the file)
EXPECTED = {
    "bad_yaml_syntax.yaml": ["invalid YAML: expected ',' or '}'"],
    "unknown_field.yaml": ["modules[0].rules[0].treshold: unknown field"],
    "unknown_metric.yaml": ["modules[0].rules[0].metric: unknown metric 'latency_p99_ms'",
                            "(declared metrics: error_rate, latency_p95_ms)"],
    "negative_duration.yaml": ["modules[0].rules[0].for: duration must not be negative",
                               "'-5m'"],
    "bad_duration.yaml": ["modules[0].rules[0].window: expected a duration such as 30s, "
                          "10m or 1h30m, got '10 minutes'"],
    "below_not_below_above.yaml": ["below (1000.0) must be less than above (100.0)"],
    "stage_over_100.yaml": ["modules[0].plan.stages[2].traffic: Input should be less than "
                            "or equal to 100 (got 120)"],
    "max_decrease_150.yaml": ["max_decrease must be below 100%, got 150%"],
    "negative_percentage.yaml": ["modules[0].rules[0].max_increase: must not be negative",
                                 "'-5%'"],
    "duplicate_key.yaml": ["duplicate key 'above'"],
    "duplicate_rule_name.yaml": ["modules[0].rules[1].name: duplicate rule name "
                                 "'errors_high'"],
    "python_tag.yaml": ["unsupported YAML tag '!!python/object/apply:os.system'",
                        "tags that build objects are refused"],
    "python_tag_mapping.yaml": ["unsupported YAML tag "
                                "'!!python/object:collections.OrderedDict'"],
    "missing_kind.yaml": ["every rule needs a kind (relative, absolute, growth, increase, bursts)"],
    "unknown_kind.yaml": ["kind must be one of relative, absolute, growth, increase, bursts "
                          "(got 'threshold')"],
    "rollback_not_critical.yaml": ["action: rollback needs severity: critical"],
    "wrong_direction.yaml": ["metric throughput_rps is lower_is_worse: use max_decrease"],
    "nan_threshold.yaml": ["expected a finite number, got '.nan'"],
    "growth_window_short.yaml": ["window (600s) must hold at least 3 envelope blocks "
                                 "(300s each)"],
    "stages_not_increasing.yaml": ["stages must increase strictly, got "
                                   "[5.0, 50.0, 25.0, 100.0]"],
    "no_modules.yaml": ["expected a mapping with a 'modules' list at the top"],
}


def check(*args: str) -> Result:
    """The real command group, in process."""
    return CliRunner().invoke(cli, ["check", *args])


def marked_line(path: Path) -> int:
    lines = [n for n, text in enumerate(path.read_text("utf-8").splitlines(), start=1)
             if MARKER in text]
    assert len(lines) == 1, f"{path.name} must mark exactly one line with {MARKER!r}"
    return lines[0]


def executable() -> list[str]:
    """The installed console script next to this interpreter."""
    script = Path(sys.executable).parent / "rollout-watchdog"
    assert script.exists(), f"{script} is missing: is the package installed (pip -e .)?"
    return [str(script)]


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHDOG_")}
    return subprocess.run([*executable(), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


# --- the shipped rules, through the installed command ------------------------------------


def test_shipped_rules_pass() -> None:
    done = run_cli("check", "rules/")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        assert f"  rules/{path.name}: ok" in done.stdout
    assert done.stdout.splitlines()[-1].startswith("SUCCESS: 11 module(s), ")


def test_check_without_arguments_checks_the_rules_folder() -> None:
    done = run_cli("check")
    assert done.returncode == 0, done.stderr
    assert "rules/transaction_pool.yaml: ok" in done.stdout


def test_shipped_default_rules_pass_on_their_own() -> None:
    result = check(str(ROOT / "watchdog" / "defaults" / "default.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "SUCCESS: 1 module(s), 7 rule(s) in 1 file(s)"


@pytest.mark.parametrize("name", sorted(p.name for p in (DATA / "good").glob("*.yaml")))
def test_good_fixtures_pass(name: str) -> None:
    result = check(str(DATA / "good" / name))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert f"{DATA / 'good' / name}: ok" in result.stdout


# --- broken files: exit 1, file:line, what was expected -----------------------------------


def test_every_broken_fixture_is_covered() -> None:
    assert sorted(p.name for p in BROKEN.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_fails_at_its_line(name: str) -> None:
    path = BROKEN / name
    result = check(str(path))
    assert result.exit_code == 1
    assert result.stdout == ""  # nothing is reported as ok
    lines = result.stderr.splitlines()
    assert lines[-1] == "FAILED: 1 problem(s)", result.stderr
    (problem,) = lines[:-1]
    prefix = f"{path}:{marked_line(path)}: "
    assert problem.startswith(prefix), f"expected {prefix!r}, got {problem!r}"
    for fragment in EXPECTED[name]:
        assert fragment in problem


def test_python_tags_are_never_constructed(tmp_path: Path) -> None:
    witness = tmp_path / "constructed"
    (tmp_path / "evil.yaml").write_text(
        "modules:\n"
        "  - name: checkout\n"
        f"    description: !!python/object/apply:os.system ['touch {witness}']\n"
        f"    labels: !!python/object/new:os.system ['touch {witness}']\n"
        "    metrics:\n"
        f"      m: {{direction: higher_is_worse, unit: !!python/name:os.system }}\n")
    done = run_cli("check", str(tmp_path / "evil.yaml"), cwd=tmp_path)
    assert done.returncode == 1
    assert not witness.exists()
    assert not (tmp_path / "constructed.txt").exists()
    problems = done.stderr.splitlines()
    assert problems[-1] == "FAILED: 3 problem(s)"
    assert [p.split(": ")[0] for p in problems[:-1]] == [
        f"{tmp_path / 'evil.yaml'}:{n}" for n in (3, 4, 6)]
    assert all("unsupported YAML tag '!!python/" in p for p in problems[:-1])


def test_broken_file_through_the_installed_command() -> None:
    path = BROKEN / "rollback_not_critical.yaml"
    done = run_cli("check", str(path))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"{path}:{marked_line(path)}: modules[0].rules[0]: action: rollback needs "
        "severity: critical",
        "FAILED: 1 problem(s)"]


def test_a_folder_with_one_bad_file_reports_it_and_loads_nothing() -> None:
    folder = DATA / "mixed"
    bad = folder / "b_bad.yaml"
    result = check(str(folder))
    assert result.exit_code == 1
    assert result.stdout == ""  # not even the good file is reported as loaded
    assert result.stderr.splitlines() == [
        f"{bad}:{marked_line(bad)}: modules[0].rules[0].severity: Input should be 'info', "
        "'warning' or 'critical' (got 'urgent')",
        "FAILED: 1 problem(s)"]


def test_all_problems_of_all_files_are_listed_together() -> None:
    names = ["unknown_field.yaml", "duplicate_key.yaml", "missing_kind.yaml"]
    result = check(*(str(BROKEN / n) for n in names))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[-1] == "FAILED: 3 problem(s)"
    assert [line.split(": ")[0] for line in lines[:-1]] == [
        f"{BROKEN / n}:{marked_line(BROKEN / n)}" for n in names]


def test_shipped_rules_with_one_broken_file_fail() -> None:
    result = check(str(ROOT / "rules"), str(BROKEN / "unknown_metric.yaml"))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "unknown metric 'latency_p99_ms'" in result.stderr


def test_a_missing_path_fails(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = check(str(missing))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{missing}: cannot read: ")


def test_a_folder_without_rule_files_fails(tmp_path: Path) -> None:
    result = check(str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path}: no rule files (*.yaml, *.yml) found" in result.stderr
