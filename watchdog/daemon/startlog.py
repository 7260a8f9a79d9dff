"""The start-up log's account of what the daemon resumed: per module its phase, stage
(counted from 1, of the plan's stages) and V2's traffic, as the journal holds them."""

from __future__ import annotations

from watchdog.daemon.config import Loaded
from watchdog.journal.base import Journal


def resumed(journal: Journal, loaded: Loaded) -> list[str]:
    """One line per configured module, then the kill switch when it is on."""
    lines = []
    for name in loaded.module_names:
        cp = journal.checkpoint(name)
        if cp is None:
            lines.append(f"{name}: not started (nothing journaled yet)")
            continue
        stages = len(loaded.rules.for_module(name).plan.stages)
        traffic = 0.0 if cp.paused_by_kill_switch else cp.traffic_percent
        lines.append(f"{name}: resumed {cp.phase.value} at stage {cp.stage + 1} of {stages}, "
                     f"{traffic:g}% V2")
    if journal.setting("kill_switch", False):
        lines.append("kill switch is ON: V1 everywhere")
    return lines
