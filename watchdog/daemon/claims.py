"""Rollback claims: a rollback decided by an instance that lost the module's lease during
the tick, handed to the new guard through the journal.

Rolling back is the safe direction, so the losing instance applies its rollback anyway (its
outbox, as for a rollback the journal could not take), but it may not journal it: its
fenced write was refused, and the module's decisions and checkpoint now belong to the new
guard. It writes a claim instead, an unfenced setting ``rollback_claim:<module>`` holding
the decision. The new guard looks for a claim before every tick of the module it holds
and adopts it: if the checkpoint still allows a rollback (progressing, awaiting, paused),
it journals a rollback of its own (fenced, compare-and-swap) whose reasons name the
instance that decided it, and its outbox applies it (the same flags: idempotent); either
way it clears the claim. We chose this over letting the new guard re-derive the rollback
from the data: its alert states restart from the last checkpoint, so a ``for`` duration
would have to elapse again while the flags already say V1, and the journal would not say
why they changed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from watchdog.errors import FencingError, JournalError
from watchdog.groups.machine import with_members
from watchdog.journal.records import Expected
from watchdog.model import Decision
from watchdog.rollout import machine

if TYPE_CHECKING:
    from watchdog.engine import Engine
    from watchdog.journal.base import Journal

log = logging.getLogger(__name__)

CLAIM_KEY = "rollback_claim:{module}"
ROLLBACK_FROM = ("progressing", "paused", "awaiting_approval")  # Phase values


def hand_over(journal: Journal, decision: Decision, err: FencingError, holder: str) -> bool:
    """Write the claim of ``decision`` (a rollback applied by ``holder`` after its lease
    moved); False when the journal cannot take it either (logged)."""
    value = {"at": decision.at, "actor": decision.actor, "reasons": list(decision.reasons),
             "evidence": list(decision.evidence)[:20], "by": holder,
             "lost_epoch": None if err.epoch is None else int(err.epoch) - 1}
    try:
        journal.set_setting(CLAIM_KEY.format(module=decision.module), value)
        return True
    except JournalError as werr:
        log.error("module %s: the rollback decided after losing the lease was applied, but "
                  "its claim cannot be written for the new guard: %s", decision.module, werr)
        return False


def claim(journal: Journal, module: str) -> dict[str, Any] | None:
    found = journal.setting(CLAIM_KEY.format(module=module))
    return found if isinstance(found, dict) else None


def adopt(engine: Engine, module: str, now: float) -> list[Decision]:
    """Journal (fenced) the rollback another instance claimed for ``module``, if any and
    if the rollout still allows it; clears the claim. The decisions journaled."""
    found = claim(engine.journal, module)
    if found is None:
        return []
    current = engine.journal.checkpoint(module)
    done: list[Decision] = []
    if current is not None and current.phase.value in ROLLBACK_FROM:
        by = str(found.get("by", "another instance"))
        reasons = "; ".join(str(r) for r in found.get("reasons", []))
        cp, decision = machine.rollback(
            current, now, str(found.get("actor", "watchdog")),
            f"rolled back by instance {by}, which lost the lease during its tick: {reasons}",
            tuple(found.get("evidence", ())))
        # a module group's members: their flags went with it
        made = with_members(engine.rules.groups.get(module), decision, current, cp)
        fence = engine.fence(module) if engine.fence is not None else None
        engine.journal.record(made, cp, now, None, current.alerts,
                              expect=Expected(current), fence=fence)
        done += made
        log.warning("module %s: adopted the rollback claimed by instance %s (journaled; "
                    "its flags were applied by that instance)", module, by)
        if engine.outbox is not None:
            engine.outbox.wake()
    else:
        log.info("module %s: rollback claim of instance %s not adopted: the rollout is %s",
                 module, found.get("by"), "not started" if current is None
                 else current.phase.value)
    engine.journal.set_setting(CLAIM_KEY.format(module=module), None)
    return done
