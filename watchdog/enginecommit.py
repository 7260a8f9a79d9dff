"""The second half of a tick (:mod:`watchdog.engine`): journal its decisions
(compare-and-swap), then act on them; the records the journal could not take are held in
memory and written again on later ticks. Split out of engine.py (module size only): the
methods are :class:`~watchdog.engine.Engine`'s, through the :class:`Journaling` mixin.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING

from watchdog.daemon import claims
from watchdog.daemon.statelock import state_lock
from watchdog.errors import CheckpointConflict, FencingError, JournalError
from watchdog.groups.machine import with_members
from watchdog.journal.records import Expected, Lease
from watchdog.model import Action, Decision
from watchdog.rollout import machine
from watchdog.rollout.state import ACTIVE, Checkpoint, Phase

if TYPE_CHECKING:
    from collections.abc import Callable

    from watchdog.config.loader import RuleSet
    from watchdog.engine import Actuate, Applier
    from watchdog.journal.base import Journal

log = logging.getLogger("watchdog.engine")  # the engine's logger, as before the split


class _Changed(Exception):
    """The checkpoint in the journal is no longer the one the tick started from."""

    def __init__(self, current: Checkpoint | None) -> None:
        self.current = current


class Journaling:
    """Journal, then act: :class:`~watchdog.engine.Engine`'s writes (a mixin; the
    attributes are the engine's fields)."""

    journal: Journal
    rules: RuleSet
    actuate: Actuate | None
    outbox: Applier | None
    fence: Callable[[str], Lease | None] | None
    on_fenced: Callable[[str, FencingError], None] | None
    _memory: dict[str, Checkpoint]
    _unjournaled: list[tuple[Decision, Checkpoint, bool]]

    def _read(self, name: str) -> Checkpoint | None:
        try:
            return self.journal.checkpoint(name)
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.journal.path}: cannot read the checkpoint "
                               f"of {name}: {err}") from err

    def _commit(self, name: str, decisions: list[Decision], cp: Checkpoint,
                now: float, before: Checkpoint | None, summaries: dict[str, str]
                ) -> tuple[list[Decision], Checkpoint]:
        """Journal (compare-and-swap) and act: the decisions made and the checkpoint now."""
        try:
            ids = self._record(name, decisions, cp, now, before, summaries)
        except _Changed as changed:
            decisions, cp, ids = self._after_change(name, decisions, cp, changed.current, now)
            if not ids:
                return [], cp
        except FencingError as err:
            return self._fenced(name, decisions, err), before or cp
        except JournalError as err:
            if any(d.action in (Action.ADVANCE, Action.PROMOTE) for d in decisions):
                log.error("module %s: journal write failed, decision not acted on: %s",
                          name, err)
                raise
            # Nothing here adds traffic: keep the new state (alert states, failure counts)
            # in memory, so that a regression still reaches its rollback while the journal
            # is down, and keep the records to write once it is back.
            self._memory[name] = cp
            rollbacks = [d for d in decisions if d.action is Action.ROLLBACK]
            for d in decisions:
                # a rollback is applied now (handed over); with an outbox, the rest once
                # journaled
                applied = self._act_unjournaled(d) if d.action is Action.ROLLBACK \
                    else self.outbox is None
                self._unjournaled.append((d, cp, applied))
            if not rollbacks:
                log.error("module %s: journal write failed; state kept in memory: %s",
                          name, err)
                raise
            log.error("module %s: journal write failed; rolled back anyway, keeping the "
                      "record to write later: %s", name, err)
            return decisions, cp
        if not any(c.module == name for _, c, _ in self._unjournaled):
            self._memory.pop(name, None)  # the journal has all of it again
        self._act(decisions, ids, now)
        return decisions, cp

    def _record(self, name: str, decisions: list[Decision], cp: Checkpoint,
                now: float, before: Checkpoint | None, summaries: dict[str, str]
                ) -> list[int]:
        with state_lock(self.journal.path):
            if name not in self._memory:
                current = self._read(name)
                if current != before:
                    raise _Changed(current)
            try:
                return self.journal.record(
                    decisions, cp, now, summaries, before.alerts if before is not None
                    else {}, expect=None if name in self._memory else Expected(before),
                    fence=self._fence(name))
            except CheckpointConflict as conflict:  # PostgreSQL: no lock, the write's CAS
                found = conflict.current
                raise _Changed(found if isinstance(found, Checkpoint) else None) from None

    def _fence(self, name: str) -> Lease | None:
        return self.fence(name) if self.fence is not None else None

    def _fenced(self, name: str, decisions: list[Decision], err: FencingError
                ) -> list[Decision]:
        """The module's lease moved during the tick: nothing was written. A rollback is
        applied anyway and claimed for the new guard; anything else is dropped."""
        if self.on_fenced is not None:
            self.on_fenced(name, err)
        rollbacks = [d for d in decisions if d.action is Action.ROLLBACK]
        if not rollbacks:
            log.warning("%s; the tick's decisions are dropped (the new guard decides)", err)
            return []
        # every flag the tick rolls back: a module group's rollback is the group's decision
        # and one per member (the members' flags are the ones the actuators hold)
        for rollback in rollbacks:
            self._act_unjournaled(rollback)
        own = next((d for d in rollbacks if d.module == name), None)
        if own is None:  # a group member's alone: applied; the new guard judges it again
            log.error("%s; rolled back %s anyway (the safe direction); the new guard "
                      "decides again", err, ", ".join(d.module for d in rollbacks))
            return rollbacks
        lease = self._fence(name)
        claims.hand_over(self.journal, own, err, lease.holder if lease else "")
        log.error("%s; rolled back anyway (the safe direction) and handed the record to "
                  "the new guard as a claim", err)
        return rollbacks

    def _after_change(self, name: str, decisions: list[Decision],
                      computed: Checkpoint, current: Checkpoint | None, now: float
                      ) -> tuple[list[Decision], Checkpoint, list[int]]:
        """Someone else (an operator) wrote the checkpoint during the tick. Drop the tick's
        decisions, except a rollback the new state still allows (the safe direction). For
        a module group, its own rollback (with every member's flag); a member's rollback
        alone is decided again at the next tick, from the new state."""
        rollback = next((d for d in decisions if d.action is Action.ROLLBACK
                         and d.module == name), None)
        allowed = current is not None and current.phase in (*ACTIVE, Phase.PAUSED)
        if rollback is None or current is None or not allowed:
            log.info("module %s: its checkpoint changed during the tick (an operator "
                     "action); the tick's decisions are dropped and the next tick decides "
                     "again", name)
            return [], current or computed, []
        cp, decision = machine.rollback(current, now, rollback.actor,
                                        "; ".join(rollback.reasons), rollback.evidence)
        made = with_members(self.rules.groups.get(name), decision, current, cp)
        try:
            ids = self._record(name, made, cp, now, current, {})
        except _Changed:
            log.warning("module %s: its checkpoint keeps changing; the next tick decides "
                        "again", name)
            return [], current, []
        return made, cp, ids

    def _act(self, decisions: list[Decision], ids: list[int], now: float) -> None:
        if self.outbox is not None:
            if decisions:
                self.outbox.wake()
            return
        for decision, decision_id in zip(decisions, ids, strict=True):
            if self.actuate is not None and decision.action is not Action.HOLD:
                self.actuate(decision)
            self.journal.mark_applied(decision_id, now)

    def _act_unjournaled(self, decision: Decision) -> bool:
        """True when applied here; with an outbox, False: the outbox applies it (and the
        journaled record again once written)."""
        if self.outbox is not None:
            self.outbox.apply_unjournaled(decision)
            return False
        if self.actuate is not None:
            self.actuate(decision)
        return True

    def _retry_journal(self, now: float) -> None:
        """Write what the journal could not take, once it takes writes again: each unit's
        records (a module's, or a module group's with its members') in one transaction
        under the unit's lease, so the outbox never sees a hold without the rollback that
        followed it. A record's unit is its checkpoint's module."""
        written: list[tuple[int, Decision, bool]] = []
        for unit in list(dict.fromkeys(c.module for _, c, _ in self._unjournaled)):
            entries = [e for e in self._unjournaled if e[1].module == unit]
            try:
                with state_lock(self.journal.path):
                    ids = self.journal.record([d for d, _, _ in entries], entries[-1][1], now,
                                              fence=self._fence(unit))
            except FencingError as err:  # not ours any more: its rollbacks become claims
                self._unjournaled = [e for e in self._unjournaled if e[1].module != unit]
                self._memory.pop(unit, None)
                # the claim is the unit's own rollback (the new guard adopts per unit)
                rollbacks = [d for d, _, _ in entries if d.action is Action.ROLLBACK]
                for d in [d for d in rollbacks if d.module == unit][-1:] or rollbacks[:1]:
                    claims.hand_over(self.journal, d, err, getattr(self._fence(unit),
                                                                   "holder", ""))
                continue
            except JournalError:
                break
            self._unjournaled = [e for e in self._unjournaled if e[1].module != unit]
            written += [(i, d, a) for i, (d, _, a) in zip(ids, entries, strict=True)]
            log.warning("module %s: %d decision(s) held in memory are journaled now (#%s)",
                        unit, len(ids), ", #".join(map(str, ids)))
            if self.outbox is not None:
                for module in dict.fromkeys(d.module for d, _, _ in entries):
                    self.outbox.journaled(module)  # it applies them (the latest), marks them
        if self.outbox is not None:
            return
        later = [(d, a) for _, d, a in written] + [(d, a) for d, _, a in self._unjournaled]
        for k, (decision_id, decision, applied) in enumerate(written):
            # a rollback applied directly stands for the records of its module before it
            if applied or any(a and d.module == decision.module for d, a in later[k + 1:]):
                try:
                    self.journal.mark_applied(decision_id, now)
                except JournalError as err:
                    log.warning("decision #%d: cannot mark applied: %s", decision_id, err)
