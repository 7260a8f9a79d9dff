"""The daemon process: SIGTERM, SIGHUP reloads, bad plugins at start, failing actuators."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from watchdog.journal.store import Journal


def checkpoint_of(db: Path, module: str) -> Any:
    journal = Journal(db)
    try:
        return journal.checkpoint(module)
    finally:
        journal.close()


def test_sigterm_finishes_the_running_tick_then_exits_0(dkit: Any, spawn: Any,
                                                         tmp_path: Path) -> None:
    # the first tick journals the rollout's start and applies it: that takes 1.5 s here
    setup = dkit.make_setup(tmp_path, act_sleep="1.5")
    proc = spawn(setup)
    dkit.until(lambda: (tmp_path / "started-1").exists(), 20, "the first actuation")
    sent = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
    took = time.monotonic() - sent
    # it waited for the actuation (the outbox's), then stopped; ticks do not wait on an
    # actuator, so a few may have run meanwhile: the latest decision is the one applied last
    assert 0.5 < took < 10, took
    assert setup.actuations()[0] == (1, "checkout", "v2", 5.0, False)
    journal = Journal(setup.db)
    try:
        rows = journal.decisions()
        assert all(r.applied_at is not None for r in rows)  # applied, or superseded
        assert setup.actuations()[-1][0] == rows[-1].id
    finally:
        journal.close()
    log = proc.log()
    assert "decision #1 module=checkout action=advance traffic=5%" in log
    assert log.index("applied") < log.index("daemon stopped")


def test_sighup_rejects_a_broken_rule_set_and_swaps_in_a_good_one(
        dkit: Any, spawn: Any, tmp_path: Path) -> None:
    setup = dkit.make_setup(tmp_path, extra="api: {enabled: true, port: 0}\n")
    proc = spawn(setup)
    proc.wait_for("daemon ready")
    dkit.until(lambda: (checkpoint_of(setup.db, "checkout") or _none).last_tick_at, 15,
               "ticks")
    # the daemon serves /metrics with its tick instruments and the journal's figures
    url = re.search(r"HTTP API listening on (\S+)", proc.log())
    assert url is not None
    metrics = httpx.get(url[1] + "/metrics", timeout=10).text
    assert re.search(r'watchdog_evaluation_duration_seconds_count\{module="checkout"\} '
                     r'[1-9]', metrics), metrics[:2000]
    # broken: an unknown field at line 7 of the rules; the config adds a module
    setup.write_rules(extra_modules="  - name: search\n    include_defaults: true\n"
                                    "    plann: {stages: [50, 100]}\n")
    setup.config.write_text(setup.config.read_text().replace(
        "modules: [{name: checkout, auto_start: true}]",
        "modules: [{name: checkout, auto_start: true}, {name: search, auto_start: true}]"))
    proc.signal(signal.SIGHUP)
    proc.wait_for("reload rejected (")
    assert f"reload rejected: {setup.rules}:7: modules[1].plann: unknown field" in proc.log()
    before = checkpoint_of(setup.db, "checkout").last_tick_at
    dkit.until(lambda: checkpoint_of(setup.db, "checkout").last_tick_at > before + 20, 15,
               "the old set to keep ticking")
    assert checkpoint_of(setup.db, "search") is None

    setup.write_rules(extra_modules="  - name: search\n    include_defaults: true\n"
                                    "    plan: {stages: [50, 100]}\n")
    proc.signal(signal.SIGHUP)
    proc.wait_for("reloaded ")
    dkit.until(lambda: checkpoint_of(setup.db, "search") is not None, 15, "search to start")
    assert checkpoint_of(setup.db, "search").traffic_percent == 50.0  # the new plan
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0


_none = type("NoCheckpoint", (), {"last_tick_at": None})()


def test_an_unknown_plugin_fails_at_start_with_the_installed_ones(dkit: Any,
                                                                   tmp_path: Path) -> None:
    setup = dkit.make_setup(tmp_path, actuator="file")
    setup.config.write_text(setup.config.read_text().replace("plugin: file\n",
                                                             "plugin: flie\n"))
    done = subprocess.run([str(dkit.EXE), "run", "--config", str(setup.config)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    line = next(n for n, text in enumerate(setup.config.read_text().splitlines(), 1)
                if "flie" in text)
    assert (f"error: {setup.config}:{line}: actuators[0].plugin: unknown actuator 'flie' "
            "(available: command, file, webhook)") in done.stderr
    assert "Traceback" not in done.stderr


def test_a_failing_actuator_keeps_the_decision_pending_until_it_succeeds(
        dkit: Any, spawn: Any, tmp_path: Path) -> None:
    setup = dkit.make_setup(tmp_path, pace="20s")  # one tick (the start) in this test
    setup.fail_next(1_000_000)  # the flag service is down until the test says otherwise
    proc = spawn(setup)
    proc.wait_for("ALERT actuation failed (attempt 3, actuator command)")
    journal = Journal(setup.db)
    try:
        (first,) = journal.decisions()  # the start...
        assert first.applied_at is None and "injected failure" in (first.apply_error or "")
        assert setup.actuations() == []
        setup.fail_next(0)  # ...and it is applied as soon as the service is back
        dkit.until(lambda: journal.decisions()[0].applied_at is not None, 15, "applied")
        assert journal.decisions()[0].apply_error is None
    finally:
        journal.close()
    failures = proc.log().count("ALERT actuation failed")
    assert failures >= 3
    assert "decision #1 module=checkout action=advance traffic=5%" in proc.log()
    assert setup.actuations()[0] == (1, "checkout", "v2", 5.0, False)
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
