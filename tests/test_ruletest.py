"""``rollout-watchdog test``: rule unit tests through the real engine.

The rules under test are written here (not the shipped defaults, which are tuned
elsewhere), so each expectation follows from the rule's plain semantics.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from watchdog.cli.main import cli
from watchdog.ruletest.runner import run_file

REPO = Path(__file__).resolve().parent.parent

RULES = """\
modules:
  - name: svc
    interval: 10s
    metrics:
      latency_ms: {direction: higher_is_worse}
      errors: {direction: higher_is_worse}
    rules:
      - name: latency_vs_baseline
        kind: relative
        metric: latency_ms
        against: baseline
        max_increase: 10%
        window: 30s
        min_samples: 3
        for: 20s
        severity: critical
        action: rollback
      - name: errors_ceiling
        kind: absolute
        metric: errors
        above: 0.05
        window: 10s
        min_samples: 1
        severity: warning
        action: hold
    plan: {stages: [10, 100], hold: 2m}
"""

# latency 130 from 1m (baseline 100, limit 110): breached from 1m10s (the 30 s window then
# holds 100, 130, 130: mean 120), firing and rolled back 20 s later (for: 20s), at 1m30s.
PASSING = """\
rule_files: [rules.yaml]
evaluation_interval: 10s
tests:
  - name: regression rolls back
    module: svc
    baseline:
      latency_ms: {count: 100, mean: 100}
    input_series:
      - series: latency_ms{version="v2"}
        values: "100x5 130x30"
      - series: errors{version="v2"}
        values: "0x35"
    alert_rule_test:
      - eval_time: 1m
        rule: latency_vs_baseline
        exp_state: inactive
      - eval_time: 1m10s
        rule: latency_vs_baseline
        exp_state: pending
      - eval_time: 1m30s
        rule: latency_vs_baseline
        exp_state: firing
    decision_test:
      - eval_time: 1m20s
        exp_action: none
      - eval_time: 1m30s
        exp_action: rollback
        exp_traffic_percent: 0
        exp_rule: latency_vs_baseline
  - name: healthy advances after the hold
    module: svc
    baseline:
      latency_ms: {values: "95 100 105x10"}
    input_series:
      - series: latency_ms{version="v2"}
        values: "104x20"
      - series: errors{version="v2"}
        values: "0.01x20"
    decision_test:
      - eval_time: 1m59s
        exp_action: advance
        exp_traffic_percent: 10
      - eval_time: 2m
        exp_action: advance
        exp_traffic_percent: 100
"""


def write(tmp_path: Path, text: str, name: str = "svc_test.yaml") -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def line_of(path: Path, marker: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line containing ``marker``."""
    hits = [n for n, line in enumerate(path.read_text().splitlines(), 1) if marker in line]
    return hits[occurrence - 1]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["test", *args])


def test_passing_file_exits_0(tmp_path: Path) -> None:
    path = write(tmp_path, PASSING)
    result = run(str(path))
    assert result.exit_code == 0, result.output
    assert f"Unit Testing:  {path}" in result.stdout
    assert "SUCCESS (2 test(s))" in result.stdout
    assert result.stdout.rstrip().endswith("SUCCESS: 2 test(s) in 1 file(s)")


def test_failing_expectations_exit_1_with_file_line_expected_and_got(tmp_path: Path) -> None:
    text = (PASSING.replace("exp_state: firing", "exp_state: pending")
            .replace("exp_traffic_percent: 100", "exp_traffic_percent: 50"))
    path = write(tmp_path, text)
    result = run(str(path))
    assert result.exit_code == 1, result.output
    out = result.stdout
    alert_line = line_of(path, "- eval_time: 1m30s", 1)
    assert (f"{path}:{alert_line}: test 'regression rolls back': alert latency_vs_baseline "
            f"at 1m30s") in out
    assert "exp: pending" in out
    assert re.search(r"got: firing \(latency_ms 130 vs baseline 100", out)
    decision_line = line_of(path, "- eval_time: 2m")
    assert (f"{path}:{decision_line}: test 'healthy advances after the hold': decision at 2m"
            in out)
    assert "exp: advance 50%" in out
    assert "got: advance 100% at 2m (healthy for 120s" in out
    assert "FAILED: 2 of 2 test(s) failed" in out


def test_the_rollback_needs_the_named_rule(tmp_path: Path) -> None:
    path = write(tmp_path, PASSING.replace("exp_rule: latency_vs_baseline",
                                           "exp_rule: errors_ceiling"))
    result = run(str(path))
    assert result.exit_code == 1
    assert "exp: rollback 0% because errors_ceiling fired" in result.stdout
    assert "got: rollback 0% at 1m30s (latency_vs_baseline: " in result.stdout


def test_no_decision_means_nothing_after_the_start(tmp_path: Path) -> None:
    path = write(tmp_path, PASSING.replace("eval_time: 1m20s", "eval_time: 1m30s"))
    result = run(str(path))
    assert result.exit_code == 1
    assert "exp: no decision after the rollout start" in result.stdout
    assert "got: rollback 0% at 1m30s" in result.stdout
    # before any judgement, the last decision is the start itself
    early = write(tmp_path, PASSING.replace("eval_time: 1m20s\n        exp_action: none",
                                            "eval_time: 5s\n        exp_action: hold"))
    result = run(str(early))
    assert "got: advance 10% at 0s (rollout started: stage 1 of 2 at 10%) [the rollout start]" \
        in result.stdout


def test_a_hold_rule_and_a_capture_baseline_before_the_rollout(tmp_path: Path) -> None:
    # V1 from -1m: the baseline is captured from it over [-1m, 0); V2 errors breach 0.05
    # at 30s (hold) and clear at 1m (no keep_firing_for), so the stage hold restarts.
    path = write(tmp_path, """\
        rule_files: [rules.yaml]
        tests:
          - module: svc
            series_start: -1m
            baseline:
              latency_ms: {capture: {from: -1m, to: 0s}}
            input_series:
              - {series: 'latency_ms{version="v1"}', values: "100x30"}
              - {series: 'latency_ms{version="v2"}', values: "_x6 100x30"}
              - {series: 'errors{version="v2"}', values: "_x6 0 0 0 0.2x2 0x30"}
            alert_rule_test:
              - {eval_time: 20s, rule: errors_ceiling, exp_state: inactive}
              - {eval_time: 30s, rule: errors_ceiling, exp_state: firing}
              - {eval_time: 1m, rule: errors_ceiling, exp_state: inactive}
              - {eval_time: 1m, rule: latency_vs_baseline, exp_state: inactive}
            decision_test:
              - {eval_time: 30s, exp_action: hold, exp_traffic_percent: 10}
              - {eval_time: 2m30s, exp_action: hold}
        """)
    result = run(str(path))
    assert result.exit_code == 0, result.output
    results = run_file(path)
    assert [c.ticks for c in results.cases] == [16]  # 0, 10 s, ... 2m30s


def test_plan_override_is_merged_over_the_module_plan(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        rule_files: [rules.yaml]
        tests:
          - module: svc
            plan: {stages: [20, 60, 100]}       # hold stays the module's 2m
            baseline:
              latency_ms: {count: 10, mean: 100}
            input_series:
              - {series: 'latency_ms{version="v2"}', values: "100x40"}
              - {series: 'errors{version="v2"}', values: "0x40"}
            decision_test:
              - {eval_time: 0s, exp_action: advance, exp_traffic_percent: 20}
              - {eval_time: 2m, exp_action: advance, exp_traffic_percent: 60}
              - {eval_time: 4m, exp_action: advance, exp_traffic_percent: 100}
              - {eval_time: 6m, exp_action: promote, exp_traffic_percent: 100}
        """)
    result = run(str(path))
    assert result.exit_code == 0, result.output


def test_run_filter_selects_tests_by_name(tmp_path: Path) -> None:
    path = write(tmp_path, PASSING.replace("exp_traffic_percent: 100",
                                           "exp_traffic_percent: 50"))
    assert run("--run", "^regression", str(path)).exit_code == 0
    assert run("--run", "healthy", str(path)).exit_code == 1
    assert run("--run", "(", str(path)).exit_code == 2


MALFORMED = [
    # (what to replace in PASSING, with what, marker of the line to report, message)
    ('values: "100x5 130x30"', 'values: "100x5 130x"', 'values: "100x5 130x"',
     "tests[0].input_series[0].values: word 2 ('130x'): expected a number"),
    ("    exp_state: firing", "    exp_state: burning", "exp_state: burning",
     "tests[0].alert_rule_test[2].exp_state: Input should be 'inactive', 'pending' or "
     "'firing'"),
    ("        exp_traffic_percent: 0\n", "        exp_traffic_percnt: 0\n",
     "exp_traffic_percnt", "tests[0].decision_test[1].exp_traffic_percnt: unknown field"),
    ("rule: latency_vs_baseline\n        exp_state: pending",
     "rule: latency_typo\n        exp_state: pending", "rule: latency_typo",
     "tests[0].alert_rule_test[1].rule: no rule 'latency_typo' in module 'svc' "
     "(rules: latency_vs_baseline, errors_ceiling)"),
    ('series: errors{version="v2"}', 'series: error{version="v2"}', "series: error{",
     "metric 'error' is not declared for module 'svc' (declared: errors, latency_ms)"),
    ('series: errors{version="v2"}', 'series: errors{version="v9"}', "version=\"v9\"",
     'version must be "v1" or "v2"'),
    ("module: svc\n    baseline", "module: nope\n    baseline", "module: nope",
     "no rules declare module 'nope'"),
    ("latency_ms: {count: 100, mean: 100}", "latency_ms: {count: 100}", "{count: 100}",
     "a summary baseline needs count and mean"),
    ("latency_ms: {count: 100, mean: 100}", "latency_ms: {capture: {from: 0s, to: 1m}}",
     "capture:", "no v1 samples of latency_ms in [0s, 60s)"),
    ("      - eval_time: 1m30s", "      - eval_time: soon", "eval_time: soon",
     "expected a duration"),
    ("evaluation_interval: 10s", "evaluation_interval: 10s\n  bad: [", "bad: [",
     "invalid YAML"),
    ("rule_files: [rules.yaml]", "rule_files: [missing.yaml]", "rule_files:",
     "rule file 'missing.yaml' not found"),
    ("  - name: healthy advances after the hold\n    module: svc\n",
     "  - name: healthy advances after the hold\n    module: svc\n    plan: {stages: [50, 90]}\n",
     "plan: {stages: [50, 90]}", "the last stage must be 100"),
]


@pytest.mark.parametrize(("old", "new", "marker", "message"), MALFORMED,
                         ids=[m[3][:40] for m in MALFORMED])
def test_malformed_file_exits_2_with_file_and_line(tmp_path: Path, old: str, new: str,
                                                   marker: str, message: str) -> None:
    assert old in PASSING
    path = write(tmp_path, PASSING.replace(old, new, 1))
    result = run(str(path))
    assert result.exit_code == 2, result.output
    assert "FAILED: malformed test file" in result.stdout
    line = line_of(path, marker)
    assert f"{path}:{line}: " in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_a_broken_rule_file_is_reported_at_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, PASSING)
    (tmp_path / "rules.yaml").write_text(RULES.replace("max_increase: 10%", "max_increase: lots"))
    result = run(str(path))
    assert result.exit_code == 2
    rules_line = line_of(tmp_path / "rules.yaml", "max_increase: lots")
    assert f"{tmp_path / 'rules.yaml'}:{rules_line}: " in result.stderr
    assert f"{path}:1: rule files do not load" in result.stderr


def test_worst_status_wins_across_files(tmp_path: Path) -> None:
    good = write(tmp_path, PASSING, "good_test.yaml")
    bad = write(tmp_path, PASSING.replace("exp_traffic_percent: 100",
                                          "exp_traffic_percent: 50"), "bad_test.yaml")
    broken = write(tmp_path, "tests: []\n", "broken_test.yaml")
    assert run(str(good), str(bad)).exit_code == 1
    result = run(str(good), str(bad), str(broken))
    assert result.exit_code == 2
    assert "FAILED: 1 of 4 test(s) failed, 1 malformed file(s)" in result.stdout, result.stdout
    assert f"{broken}:1: tests: List should have at least 1 item" in result.stderr
    assert run(str(tmp_path / "nowhere_test.yaml")).exit_code == 2
    assert run().exit_code == 2  # no file named: a usage error


def test_the_shipped_examples_pass() -> None:
    examples = sorted(str(p) for p in (REPO / "rules" / "tests").glob("*.yaml"))
    assert len(examples) >= 2
    result = run(*examples)
    assert result.exit_code == 0, result.output
    # the default-rule tests cover a rollback, a spike, missing data and for/keep_firing_for
    text = " ".join(Path(p).read_text() for p in examples)
    for needle in ("exp_action: rollback", "single latency spike", "missing",
                   "keep_firing_for"):
        assert needle in text
