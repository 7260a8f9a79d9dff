"""The CLI acting on a running daemon (both real processes, one journal): a pause is seen
by the next tick, the kill switch reaches the flags within a second."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from watchdog.cli.main import cli as main
from watchdog.journal.store import Journal
from watchdog.model import Action
from watchdog.rollout.state import Phase


def cli(dkit: Any, setup: Any, *args: str) -> Result:
    """The CLI, in this process (the daemon is the other process on the journal)."""
    return CliRunner().invoke(main, [*args, "--config", str(setup.config)],
                              env={"SUDO_USER": "", "USER": "oncall"})


def test_the_cli_steers_a_running_daemon(dkit: Any, spawn: Any, tmp_path: Path) -> None:
    setup = dkit.make_setup(tmp_path, scenario="aa-clean-1000.jsonl")
    setup.write_rules(hold="100s")  # 20 stages of 100 s: still progressing at the end
    # the default poll interval of the outbox (0.25 s), not the tests' faster one
    setup.config.write_text(setup.config.read_text().replace("poll_interval: 100ms, ", ""))
    proc = spawn(setup)
    proc.wait_for("daemon ready")
    journal = Journal(setup.db)
    try:
        def cp() -> Any:
            return journal.checkpoint("checkout")

        dkit.until(lambda: cp() is not None and cp().stage >= 2, 20, "two advances")
        done = cli(dkit, setup, "pause", "checkout", "--reason", "let me look")
        assert done.exit_code == 0, done.output
        paused_id = journal.decisions()[-1].id
        assert journal.decisions()[-1].decision.actor == "oncall"
        tick = cp().last_tick_at
        dkit.until(lambda: cp().last_tick_at >= tick + 100, 20, "ten more ticks")
        assert cp().phase is Phase.PAUSED
        assert journal.decisions()[-1].id == paused_id  # nothing advanced meanwhile
        dkit.until(lambda: journal.decisions()[-1].applied_at is not None, 5, "applied")
        assert paused_id in [a[0] for a in setup.actuations()]

        assert cli(dkit, setup, "resume", "checkout", "--reason", "fine").exit_code == 0
        stage = cp().stage
        dkit.until(lambda: cp().stage > stage, 20, "an advance after the resume")

        done = cli(dkit, setup, "kill-switch", "on", "--reason", "incident")
        returned = time.monotonic()
        assert done.exit_code == 0, done.output
        dkit.until(lambda: (setup.flags() or {}).get("kill_switch") is True, 5, "V1")
        assert time.monotonic() - returned < 1.0
        assert setup.flags()["traffic_percent"] == 0 and setup.flags()["version"] == "v1"
        assert cp().phase is Phase.PAUSED and cp().paused_by_kill_switch

        assert cli(dkit, setup, "kill-switch", "off", "--reason", "over").exit_code == 0
        dkit.until(lambda: (setup.flags() or {}).get("version") == "v2", 5, "V2 again")
        assert cp().phase is Phase.PROGRESSING
        status = cli(dkit, setup, "status")
        assert "kill switch: off\ncheckout: progressing stage " in status.output
        mine = [(r.decision.action, r.decision.kill_switch, r.decision.reasons[0])
                for r in journal.decisions() if r.decision.actor == "oncall"]
        assert mine == [(Action.PAUSE, False, "let me look"), (Action.RESUME, False, "fine"),
                        (Action.PAUSE, True, "incident"), (Action.RESUME, False, "over")]
    finally:
        journal.close()
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
