"""Downtime is not health: a restarted daemon does not count the time it was down toward
a stage's hold (issue 16, item 5).

The real daemon on the system clock (500 ms interval) judges a healthy V2 from a file
source whose samples carry wall-clock times (written by the test around now). The plan
holds each stage 6 s. The daemon is SIGKILLed a second or two into the first stage, kept
down 8 s (longer than the hold), and started again. It must not advance before the rest
of the hold has been observed after the restart. Before the fix it advanced at its first
evaluation after the restart, "healthy for" the downtime it never saw.

(The replay clock does not show this: each replayed tick is one step after the last
committed one, so a replay has no gaps; and a replay stepping further than its rules'
interval is judged at its step, as ``backtest`` is, so its steps are not gaps either.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

from watchdog.daemon.service import Daemon
from watchdog.journal.store import Journal
from watchdog.model import Action

HOLD = 6.0
DOWN = 8.0
INTERVAL = 0.5

RULES = f"""\
modules:
  - name: checkout
    interval: {INTERVAL}s
    metrics:
      m: {{direction: higher_is_worse}}
    rules:
      - {{name: m_high, kind: absolute, metric: m, above: 100, window: 2s, min_samples: 1,
         severity: critical, action: rollback}}
    plan: {{stages: [10, 50, 100], hold: {HOLD}s}}
"""


def write_samples(path: Path, start: float, end: float) -> None:
    """A healthy V1 and V2 every 0.25 s over [start, end] (wall-clock times)."""
    meta = {"kind": "meta", "scenario": "restart-gap", "module": "checkout",
            "step_seconds": 0.25, "baseline": {"from": start, "to": start + 1},
            "plan": {"stages": [10, 50, 100], "stage_seconds": HOLD}, "end": end,
            "metrics": {"m": "higher_is_worse"}}
    lines = [json.dumps(meta)]
    t = start
    while t <= end:
        for version in ("v1", "v2"):
            lines.append(json.dumps({"t": round(t, 3), "version": version, "metric": "m",
                                     "value": 10.0}))
        t += 0.25
    path.write_text("\n".join(lines) + "\n")


def state(db: Path) -> tuple[Any, list[Any]]:
    journal = Journal(db)
    try:
        return journal.checkpoint("checkout"), [jd.decision for jd in
                                               journal.decisions(module="checkout")]
    finally:
        journal.close()


def test_a_restart_after_downtime_longer_than_the_hold_does_not_advance_on_it(
        dkit: Any, spawn: Any, tmp_path: Path) -> None:
    setup = dkit.make_setup(tmp_path, actuator="file")
    samples = tmp_path / "samples.jsonl"
    write_samples(samples, time.time() - 120.0, time.time() + 900.0)
    setup.rules.write_text(RULES)
    setup.config.write_text(
        "db: journal.db\nrules: [rules.yaml]\n"
        f"source: {{plugin: file, options: {{path: '{samples}'}}}}\n"
        "actuators: [{plugin: file, options: {path: '{state_dir}/{module}.json'}}]\n"
        "notifiers: [{plugin: log}]\n"
        "modules: [{name: checkout, auto_start: true}]\n"
        "outbox: {poll_interval: 100ms, backoff: 50ms, max_backoff: 200ms}\n")

    first = spawn(setup)
    first.wait_for("daemon ready", timeout=60)

    def seen_a_while() -> bool:  # healthy evaluations for over a second at stage 1
        cp = state(setup.db)[0]
        return (cp is not None and cp.last_tick_at is not None and cp.healthy_since
                is not None and cp.last_tick_at - cp.healthy_since >= 1.0)

    dkit.until(seen_a_while, 60, "a second of healthy evaluations")
    first.popen.send_signal(signal.SIGKILL)
    first.kill()
    cp, decisions = state(setup.db)
    assert cp.stage == 0 and [d.action for d in decisions] == [Action.ADVANCE]  # the start
    assert cp.last_tick_at is not None and cp.healthy_since is not None
    observed = cp.healthy_banked + cp.last_tick_at - cp.healthy_since
    assert observed < HOLD  # killed before the hold was over

    time.sleep(DOWN)  # down for longer than the hold
    restarted = time.time()
    second = spawn(setup)

    def advanced() -> bool:
        return len(state(setup.db)[1]) >= 2

    dkit.until(advanced, 90, "the advance to stage 2")
    _, decisions = state(setup.db)
    advance = decisions[1]
    assert advance.action is Action.ADVANCE and advance.to_stage == 1
    # the rest of the hold was observed after the restart (a loaded machine only makes
    # this later, never earlier)
    assert advance.at - restarted >= HOLD - observed - 0.01, (advance.at - restarted,
                                                              observed, advance.reasons)
    found = re.match(r"healthy for ([0-9.]+)s", advance.reasons[0])
    assert found is not None, advance.reasons
    assert float(found.group(1)) < HOLD + 2 * INTERVAL, advance.reasons  # not the downtime
    assert "daemon ready" in second.log()


def test_a_replay_stepping_further_than_its_rules_interval_still_advances(
        dkit: Any, tmp_path: Path) -> None:
    """A replay's ticks are its evaluations, however far apart in simulated time: a 30 s
    step over rules evaluated every 10 s is judged every 30 s (as ``backtest`` does), so
    its steps are not gaps in the evaluation and its holds complete."""
    setup = dkit.make_setup(tmp_path, scenario="aa-clean-1000.jsonl", actuator="file")
    setup.write_rules(plan="[5, 25, 50, 100]", hold="120s")
    setup.config.write_text(setup.config.read_text().replace("step: 10s", "step: 30s")
                            .replace("end: 3600", "end: 1200"))
    daemon = Daemon(str(setup.config), env=dict(os.environ))
    try:
        while daemon.tick("checkout") is not None:
            pass
    finally:
        daemon.stop()
    _, decisions = state(setup.db)
    assert [(d.at, d.action.value) for d in decisions] == [
        (0.0, "advance"), (120.0, "advance"), (240.0, "advance"), (360.0, "advance"),
        (480.0, "promote")]
