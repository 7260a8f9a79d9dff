"""Issue 18, item 7: the daemon's log counts stages from 1, as the rest of the tool does
(decision notifications said stage=0 for the first stage), and its start-up log says
which state it resumed, per module. A real daemon process replaying a scenario, stopped
with SIGTERM and started again on the same journal."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.journal.store import Journal


def test_stages_count_from_one_and_the_start_up_says_what_it_resumed(
        tmp_path: Path, spawn: Callable[..., Any], dkit: Any) -> None:
    setup = dkit.make_setup(tmp_path, scenario="aa-clean-1000.jsonl", pace="20ms")
    first = spawn(setup)
    first.wait_for("start-up: checkout: not started (nothing journaled yet)")
    # the notification line (kind=decision ... stage=2 traffic=10%) follows the outbox's
    # "decision #2 ... traffic=10% stage=1->2 ... applied": wait for the later one
    first.wait_for("stage=2 traffic=10%", timeout=60)
    log = first.log()
    assert re.search(r"kind=decision action=advance \S+ stage=1 traffic=5%", log), log
    assert re.search(r"kind=decision action=advance \S+ stage=2 traffic=10%", log), log
    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    journal = Journal(setup.db)
    try:
        cp = journal.checkpoint("checkout")
    finally:
        journal.close()
    assert cp is not None
    second = spawn(setup)
    second.wait_for(f"start-up: checkout: resumed {cp.phase.value} at stage {cp.stage + 1} "
                    f"of 20, {cp.traffic_percent:g}% V2")
    second.signal(signal.SIGTERM)
    assert second.wait() == 0
