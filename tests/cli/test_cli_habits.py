"""Issue 18, item 7: familiar CLI habits. ``status`` exits by phase and takes ``-o json``;
``status --watch`` redraws a live view until Ctrl-C; ``backtest --rules`` (``--config``
still works there, deprecated, with a warning on stderr only); shell completion; the demo's
``--help`` is plain text. Real journal files, real processes where the habit is a
process's (a watch interrupted by SIGINT, the scorer's stdout)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from watchdog.cli.main import cli

EXE = Path(sys.executable).parent / "rollout-watchdog"
ROOT = Path(__file__).resolve().parent.parent.parent
SCENARIO = ROOT / "tests" / "data" / "scenarios" / "aa-clean-1000.jsonl"
RULES = """\
modules:
  - name: checkout
    include_defaults: true
    plan: {stages: [10%, 50%, 100%], hold: 1h}
  - name: search
    include_defaults: true
"""


@pytest.fixture
def site(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "rules.yaml").write_text(RULES)
    config = tmp_path / "watchdog.yaml"
    config.write_text("db: journal.db\nrules: [rules.yaml]\nsource: {plugin: file, options: "
                      "{path: x}}\nactuators: [{plugin: file, options: {path: "
                      f"\"{tmp_path}/{{module}}.json\"}}}}]\nmodules: [checkout, search]\n")
    return {"config": str(config), "root": tmp_path}


def act(site: dict[str, Any], *args: str) -> Result:
    done = CliRunner().invoke(cli, [*args, "--reason", "test", "--config", site["config"]],
                              env={"SUDO_USER": "", "USER": "carol"})
    assert done.exit_code == 0, done.output
    return done


def status(site: dict[str, Any], *args: str) -> Result:
    return CliRunner().invoke(cli, ["status", "--config", site["config"], *args])


def test_status_exits_by_phase(site: dict[str, Any]) -> None:
    act(site, "start", "checkout")
    assert status(site).exit_code == 0  # progressing (search: not started)
    act(site, "pause", "checkout")
    assert status(site).exit_code == 3
    assert status(site, "search").exit_code == 0  # only the module asked about
    act(site, "rollback", "checkout")
    assert status(site).exit_code == 1
    act(site, "resume", "checkout")
    act(site, "promote", "checkout")
    assert status(site).exit_code == 0
    act(site, "start", "search")
    act(site, "abort", "search")
    assert status(site).exit_code == 1 and status(site, "checkout").exit_code == 0
    missing = status(site, "nosuch")
    assert missing.exit_code == 2 and "no module 'nosuch'" in missing.output


def test_output_json_is_the_same_as_the_json_flag(site: dict[str, Any]) -> None:
    act(site, "start", "checkout")
    assert json.loads(status(site, "-o", "json").output) == \
        json.loads(status(site, "--json").output)
    history = CliRunner().invoke(cli, ["history", "--config", site["config"], "-o", "json"])
    assert [h["action"] for h in json.loads(history.output)] == ["advance"]


def test_status_watch_redraws_until_interrupted(site: dict[str, Any]) -> None:
    act(site, "start", "checkout")
    proc = subprocess.Popen([str(EXE), "status", "--watch", "--interval", "100ms",
                             "--config", site["config"]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=site["root"])
    try:
        seen, paused = "", False
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while "next: paused by" not in seen and time.monotonic() < deadline:
            seen += proc.stdout.readline()
            if "next: advance to stage 2 at 50%" in seen and not paused:
                act(site, "pause", "checkout")  # the next redraw shows it
                paused = True
        assert "checkout  PROGRESSING  stage 1/3  10%  in stage" in seen, seen
        assert "search  NOT STARTED" in seen
        assert "checkout  PAUSED  stage 1/3  10%" in seen, seen
        assert "next: paused by an operator: resume (or kill-switch off) to go on" in seen
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 3  # the exit code of the last view: paused
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def backtest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), "backtest", str(SCENARIO), *args, "--json"],
                          capture_output=True, text=True, timeout=120)


def test_backtest_rules_and_the_deprecated_config_spelling() -> None:
    rules = str(ROOT / "watchdog" / "defaults" / "default.yaml")
    new = backtest("--rules", rules)
    old = backtest("--config", rules)
    assert new.returncode == old.returncode == 0, old.stderr
    assert new.stderr == ""
    assert "backtest --config is deprecated" in old.stderr and "--rules" in old.stderr
    assert json.loads(old.stdout) == json.loads(new.stdout)  # stdout: the JSON only
    assert json.loads(new.stdout)["outcome"] == "promoted"


def test_shell_completion_scripts_and_candidates() -> None:
    env = {**os.environ, "_ROLLOUT_WATCHDOG_COMPLETE": "bash_source"}
    script = subprocess.run([str(EXE)], env=env, capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "_rollout_watchdog_completion" in script.stdout
    env = {**os.environ, "_ROLLOUT_WATCHDOG_COMPLETE": "bash_complete",
           "COMP_WORDS": "rollout-watchdog sta", "COMP_CWORD": "1"}
    words = subprocess.run([str(EXE)], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,status" in words.stdout.splitlines()


def test_the_demo_help_is_plain_text() -> None:
    shown = subprocess.run([sys.executable, "-m", "watchdog.demo", "--help"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0
    assert "``" not in shown.stdout and ":mod:" not in shown.stdout
    assert "Exit status 0 when the rollout went as expected" in shown.stdout


def test_history_limit_is_a_usage_error_out_of_range(site: dict[str, Any]) -> None:
    # 10**23 once reached SQLite as an OverflowError traceback
    act(site, "start", "checkout")
    for bad in ("0", "99999999999999999999999"):
        done = CliRunner().invoke(cli, ["history", "--config", site["config"],
                                        "--limit", bad])
        assert done.exit_code == 2 and "--limit" in done.output, done.output
        assert done.exception is None or isinstance(done.exception, SystemExit)
    ok = CliRunner().invoke(cli, ["history", "--config", site["config"], "--limit", "1"])
    assert ok.exit_code == 0 and "advance" in ok.output


def test_start_names_only_a_configured_module(site: dict[str, Any]) -> None:
    # a typo once journaled a rollout no daemon would ever tick (status refused the name)
    done = CliRunner().invoke(cli, ["start", "chekout", "--reason", "go", "--config",
                                    site["config"]])
    assert done.exit_code == 2, done.output
    assert "no module 'chekout' in the config (known: checkout, search)" in done.output
    assert status(site, "chekout").exit_code == 2


def test_an_action_on_a_mistyped_journal_path_creates_nothing(site: dict[str, Any]) -> None:
    # `pause --db jounral.db` once created a new empty journal there, then said "no
    # rollout yet"; only start may make a journal
    typo = site["root"] / "jounral.db"
    for args in (["pause", "checkout"], ["set-stage", "checkout", "50"]):
        done = CliRunner().invoke(cli, [*args, "--reason", "x", "--config", site["config"],
                                        "--db", str(typo)])
        assert done.exit_code == 1 and f"no journal at {typo}" in done.output, done.output
        assert not typo.exists()
    started = CliRunner().invoke(cli, ["start", "checkout", "--reason", "go", "--config",
                                       site["config"], "--db", str(typo)])
    assert started.exit_code == 0 and typo.exists()


def test_watch_refuses_an_interval_that_would_spin(site: dict[str, Any]) -> None:
    act(site, "start", "checkout")
    done = status(site, "--watch", "--interval", "0")
    assert done.exit_code == 2 and "--interval" in done.output, done.output
