"""Manual control: operator actions written to the journal, whether or not a daemon runs.

Each action reads the module's current checkpoint and records the transition (decision and
new checkpoint) while holding the journal's state lock (:mod:`watchdog.daemon.statelock`),
the same lock a daemon's tick holds for its compare-and-swap: the two never overwrite
each other. The decision names the operator (``actor``) and carries their ``reason``. A
running daemon sees the new checkpoint at its next tick and its outbox applies the flags
within a poll interval (0.25 s); without a daemon they are applied at its next start, or
at once with ``--apply`` (:func:`apply_pending`).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from watchdog.actuators import Actuator
from watchdog.config.loader import RuleSet
from watchdog.daemon.outbox import Outbox
from watchdog.daemon.statelock import state_lock
from watchdog.errors import CheckpointConflict, IllegalTransition, JournalConflict, JournalError
from watchdog.groups import machine as group_machine
from watchdog.groups.engine import group_kill_key
from watchdog.groups.machine import member_decisions
from watchdog.journal.base import Journal
from watchdog.journal.records import Expected, JournaledDecision
from watchdog.model import Action, Decision
from watchdog.rollout import approval, machine, stepback
from watchdog.rollout.state import ACTIVE, Checkpoint, Phase

CAS_ATTEMPTS = 5  # a manual action racing the daemon's ticks (PostgreSQL)
ACTIONS = ("start", "pause", "resume", "promote", "rollback", "abort", "step-back",
           "set-stage", "approve")
RESTORE_ACTION = {Phase.ROLLED_BACK: Action.ROLLBACK, Phase.PROMOTED: Action.PROMOTE,
                  Phase.ABORTED: Action.ABORT, Phase.PAUSED: Action.PAUSE,
                  Phase.PROGRESSING: Action.RESUME, Phase.AWAITING_APPROVAL: Action.RESUME}


def default_actor() -> str:
    for name in ("SUDO_USER", "USER", "LOGNAME"):
        if os.environ.get(name):
            return os.environ[name]
    return "unknown"


@dataclass(frozen=True)
class Control:
    """Operator actions on one journal; ``rules`` give each module's plan."""

    journal: Journal
    rules: RuleSet

    def _cp(self, module: str) -> Checkpoint | None:
        try:
            return self.journal.checkpoint(module)
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.journal.path}: {err}") from err

    def kill_switch(self) -> bool:
        return bool(self.journal.setting("kill_switch", False))

    def act(self, action: str, module: str, now: float, actor: str, reason: str,
            stage: float | None = None) -> JournaledDecision:
        """Apply one of :data:`ACTIONS` to ``module``; IllegalTransition when not allowed.
        ``stage``: the traffic percentage of the stage ``set-stage`` puts it at.

        On PostgreSQL no lock keeps a daemon's tick (another host) from writing between
        our read and our write: the write is a compare-and-swap, and a lost race is
        decided again from the new checkpoint (a few times)."""
        for attempt in range(CAS_ATTEMPTS):
            try:
                return self._act(action, module, now, actor, reason, stage)
            except CheckpointConflict:
                if attempt == CAS_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def _act(self, action: str, module: str, now: float, actor: str, reason: str,
             stage: float | None) -> JournaledDecision:
        if not reason.strip():
            raise IllegalTransition("a reason is required for every manual action")
        owner = self._group_of(module)
        if owner is not None and self._cp(owner) is not None:
            # a member's flag follows its group's rollout (watchdog/groups): one of its
            # own would set the flag behind the group's back, its kill switch included.
            # (A group that never started may have members run alone: a daemon runs a
            # group only where all its members are configured modules.)
            raise IllegalTransition(f"module {module!r} is a member of group {owner!r}, "
                                    f"whose rollout sets its flag: {action} the group "
                                    f"instead")
        plan = self._plan(module)
        with state_lock(self.journal.path):
            cp = self._cp(module)
            if action == "start":
                if cp is not None:
                    raise IllegalTransition(f"cannot start module {module!r}: it already has "
                                            f"a rollout ({cp.phase.value})")
                if self.kill_switch():
                    raise IllegalTransition(f"cannot start module {module!r}: the kill "
                                            "switch is on")
                if module in self.rules.groups:
                    if self._group_killed(module):
                        raise IllegalTransition(f"cannot start group {module!r}: its kill "
                                                "switch is on")
                    new_cp, ds = group_machine.start(self.rules.groups[module], now, actor,
                                                     reason)
                    ids = self.journal.record(ds, new_cp, now, None, None,
                                              expect=Expected(None))
                    return JournaledDecision(ids[0], ds[0], now, None, None)
                new_cp, d = machine.start(module, plan, now, actor, reason)
                return self._record(d, new_cp, None, now)
            if cp is None:
                raise IllegalTransition(f"module {module!r} has no rollout yet; start one "
                                        "with `rollout-watchdog start`")
            if action in ("resume", "promote", "set-stage") and self.kill_switch():
                raise IllegalTransition(f"cannot {action} module {module!r}: the kill switch "
                                        "is on (V1 everywhere); turn it off first")
            if action in ("resume", "promote", "set-stage") and self._group_killed(module):
                raise IllegalTransition(f"cannot {action} group {module!r}: its kill switch "
                                        "is on (every member on V1); turn it off first")
            steps: dict[str, Callable[[], tuple[Checkpoint, Decision]]] = {
                "pause": lambda: machine.pause(cp, now, actor, reason),
                "resume": lambda: machine.resume(cp, plan, now, actor, reason),
                "promote": lambda: machine.promote(cp, plan, now, actor, reason),
                "rollback": lambda: machine.rollback(cp, now, actor, reason),
                "abort": lambda: machine.abort(cp, now, actor, reason),
                "step-back": lambda: stepback.step_back(cp, plan, now, actor, reason),
                "set-stage": lambda: stepback.set_stage(cp, plan, _stage(stage), now, actor,
                                                        reason),
                "approve": lambda: approval.approve(cp, plan, now, actor, reason)}
            if action not in steps:
                raise IllegalTransition(f"unknown action {action!r}")
            new_cp, d = steps[action]()
            if module in self.rules.groups:
                return self._record_group(module, d, new_cp, cp, now, actor, reason)[0]
            return self._record(d, new_cp, cp, now)

    def _record(self, d: Decision, cp: Checkpoint | None, before: Checkpoint | None,
                now: float) -> JournaledDecision:
        # compare-and-swap: on SQLite the state lock already excludes the daemon's tick; on
        # PostgreSQL (no lock across hosts) this is what keeps a tick from overwriting it
        (decision_id,) = self.journal.record([d], cp, now, None,
                                             before.alerts if before is not None else None,
                                             expect=Expected(before) if cp is not None
                                             else None)
        return JournaledDecision(decision_id, d, now, None, None)

    def set_kill_switch(self, on: bool, now: float, actor: str, reason: str,
                        modules: Sequence[str] = ()) -> list[JournaledDecision]:
        """Turn the global kill switch on (every module to V1: progressing ones are paused)
        or off (modules it paused resume; the others get their own traffic back)."""
        if not reason.strip():
            raise IllegalTransition("a reason is required for every manual action")
        done: list[JournaledDecision] = []
        with state_lock(self.journal.path):
            self.journal.set_setting("kill_switch", on)  # first: no tick advances meanwhile
            names = sorted({*modules, *(c.module for c in self.journal.checkpoints())})
            for name in names:
                cp = self._cp(name)
                if cp is None:
                    continue
                if on and cp.phase in ACTIVE:
                    new_cp, d = machine.pause(cp, now, actor, reason, kill_switch=True)
                    done += self._record_group(name, d, new_cp, cp, now, actor, reason)
                elif not on and cp.paused_by_kill_switch:
                    if self._group_killed(name):
                        continue  # its own kill switch still holds it
                    plan = self._plan(name)
                    new_cp, d = machine.resume(cp, plan, now, actor, reason)
                    done += self._record_group(name, d, new_cp, cp, now, actor, reason)
                else:  # the flags change, the rollout state does not
                    if not on and self._group_killed(name):
                        continue  # its own kill switch still holds its members on V1
                    done += self._flags_held(name, cp, on, now, actor,
                                             f"kill switch {'on' if on else 'off'}: {reason}")
        return done

    # module groups (watchdog/groups) ----------------------------------------------------

    def _plan(self, name: str) -> Any:
        group = self.rules.groups.get(name)
        return group.plan if group is not None else self.rules.for_module(name).plan

    def _group_killed(self, name: str) -> bool:
        return name in self.rules.groups and bool(
            self.journal.setting(group_kill_key(name), False))

    def _record_group(self, name: str, d: Decision, cp: Checkpoint, before: Checkpoint,
                      now: float, actor: str, reason: str) -> list[JournaledDecision]:
        """Record a transition; for a group, with a decision for each member whose flag
        it changes (in one transaction)."""
        group = self.rules.groups.get(name)
        if group is not None:
            cp = group_machine.settle(group, before, cp)
        decisions = [d] if group is None else [
            d, *member_decisions(group, before, cp, now, actor, (reason,))]
        ids = self.journal.record(decisions, cp, now, None, before.alerts,
                                  expect=Expected(before))
        return [JournaledDecision(i, x, now, None, None)
                for i, x in zip(ids, decisions, strict=True)]

    def set_group_kill_switch(self, name: str, on: bool, now: float, actor: str,
                              reason: str) -> list[JournaledDecision]:
        """A group's own kill switch: on, the group holds and every member's flag is off;
        off, it resumes (unless the global kill switch is on)."""
        if not reason.strip():
            raise IllegalTransition("a reason is required for every manual action")
        if name not in self.rules.groups:
            known = ", ".join(sorted(self.rules.groups)) or "none"
            raise IllegalTransition(f"no group named {name!r} (groups: {known})")
        with state_lock(self.journal.path):
            self.journal.set_setting(group_kill_key(name), on)
            cp = self._cp(name)
            if cp is None:
                return []
            if on and cp.phase in ACTIVE:
                new_cp, d = machine.pause(cp, now, actor, reason, kill_switch=True)
            elif not on and cp.paused_by_kill_switch and not self.kill_switch():
                new_cp, d = machine.resume(cp, self._plan(name), now, actor, reason)
            elif self.kill_switch() and not on:
                return []  # the global kill switch still holds every flag on V1
            else:  # paused by hand, rolled back, promoted...: the flags, not the state
                return self._flags_held(name, cp, on, now, actor,
                                        f"group kill switch {'on' if on else 'off'}: {reason}")
            return self._record_group(name, d, new_cp, cp, now, actor, reason)

    def _group_of(self, module: str) -> str | None:
        """The group ``module`` is a member of (None: none)."""
        return next((g.name for g in self.rules.groups.values() if module in g.names), None)

    def _flags_held(self, name: str, cp: Checkpoint, on: bool, now: float, actor: str,
                    why: str) -> list[JournaledDecision]:
        """A kill switch turned on or off where the rollout state stays: a hold that sets
        the flags (V1 when on, the rollout's own traffic when off), and for a group one
        per member whose flag is on by its checkpoint, in one transaction."""
        traffic = 0.0 if on else cp.traffic_percent
        decisions = [Decision(name, now, Action.HOLD, traffic, cp.stage, cp.stage, (why,),
                              actor=actor, kill_switch=on)]
        group = self.rules.groups.get(name)
        if group is not None:
            decisions += [Decision(m, now, Action.HOLD, 0.0 if on else group_machine.flag(cp, m),
                                   cp.stage, cp.stage, (f"{why} (group {name})",),
                                   actor=actor, kill_switch=on)
                          for m in group.names if group_machine.flag(cp, m) > 0]
        ids = self.journal.record(decisions, None, now)
        return [JournaledDecision(i, d, now, None, None)
                for i, d in zip(ids, decisions, strict=True)]

    # named snapshots of all rollout state ------------------------------------------------

    def snapshot_create(self, name: str, now: float, actor: str, reason: str) -> int:
        if not reason.strip():
            raise IllegalTransition("a reason is required for every manual action")
        with state_lock(self.journal.path):
            saved = [c.to_dict() for c in self.journal.checkpoints()]
            data = {"kill_switch": self.kill_switch(), "checkpoints": saved}
            try:
                self.journal.save_snapshot(name, now, actor, reason, data)
            except JournalConflict:
                raise IllegalTransition(f"a checkpoint named {name!r} exists already; "
                                        "choose another name") from None
        return len(saved)

    def snapshots(self) -> list[dict[str, Any]]:
        out = []
        for row in self.journal.snapshots():
            data = row.pop("data")
            out.append({**row, "kill_switch": data.get("kill_switch", False),
                        "modules": {c["module"]: f"{c['phase']} {c['traffic_percent']:g}%"
                                    for c in data.get("checkpoints", [])}})
        return out

    def snapshot_restore(self, name: str, now: float, actor: str, reason: str
                         ) -> list[JournaledDecision]:
        """Bring every module of the snapshot back to its state then: a decision per
        module that changes (timers restart; alert states start afresh)."""
        if not reason.strip():
            raise IllegalTransition("a reason is required for every manual action")
        rows = [s["data"] for s in self.journal.snapshots() if s["name"] == name]
        if not rows:
            known = ", ".join(s["name"] for s in self.snapshots()) or "none"
            raise IllegalTransition(f"no checkpoint named {name!r} (known: {known})")
        saved = [Checkpoint.from_dict(c) for c in rows[0]["checkpoints"]]
        done: list[JournaledDecision] = []
        with state_lock(self.journal.path):
            if self.kill_switch():
                raise IllegalTransition("cannot restore while the kill switch is on; turn "
                                        "it off first")
            for target in saved:
                current = self._cp(target.module)
                if current is not None and _shape(current) == _shape(target):
                    continue
                action = RESTORE_ACTION[target.phase]
                was = "no rollout" if current is None else _describe(current)
                d = Decision(target.module, now, action, target.traffic_percent,
                             None if current is None else current.stage,
                             None if target.phase in (Phase.ROLLED_BACK, Phase.ABORTED,
                                                      Phase.PROMOTED) else target.stage,
                             (f"{reason} (restore checkpoint {name!r}: {was} -> "
                              f"{_describe(target)})",), actor=actor)
                restored = replace(
                    target, stage_started_at=now, healthy_banked=0.0,
                    # the hold starts again at the restore wherever the state is judged
                    # (progressing, or awaiting an approval)
                    healthy_since=now if target.phase in ACTIVE else None,
                    inconclusive_since=None, inconclusive_alerted=False, hold_key="",
                    alerts={}, last_action=action, last_decision_at=now,
                    last_tick_at=None if current is None else current.last_tick_at)
                # a group: each member's flag as the restored checkpoint has it
                decisions = group_machine.with_members(self.rules.groups.get(target.module),
                                                       d, current, restored)
                ids = self.journal.record(decisions, restored, now, None,
                                          current.alerts if current is not None else None,
                                          expect=Expected(current))
                done += [JournaledDecision(i, x, now, None, None)
                         for i, x in zip(ids, decisions, strict=True)]
        return done


def _stage(stage: float | None) -> float:
    if stage is None:
        raise IllegalTransition("set-stage needs the stage: its traffic percentage")
    return stage


def _shape(cp: Checkpoint) -> tuple[Any, ...]:
    return cp.phase, cp.stage, cp.traffic_percent, cp.paused_by_kill_switch


def _describe(cp: Checkpoint) -> str:
    return f"{cp.phase.value} at stage {cp.stage + 1}, {cp.traffic_percent:g}%"


def apply_pending(journal_path: str, actuators: Sequence[Actuator]) -> tuple[int, int]:
    """Apply every pending decision now (``--apply``): (applied, still pending)."""
    outbox = Outbox(journal_path, actuators)
    try:
        applied = outbox.deliver(force=True)
        return applied, len(outbox.journal.decisions(unapplied_only=True))
    finally:
        outbox.close()
