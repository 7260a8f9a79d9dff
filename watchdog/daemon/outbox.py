"""The actuation outbox: journaled decisions are applied, read back, then marked applied.

A decision is journaled before anything acts on it (the journal's ``decisions`` table is
the outbox). The tick only journals and wakes the outbox: evaluation never waits on an
actuator. Each round (:meth:`Outbox.deliver`) reads the pending decisions (``applied_at``
empty) and hands each module's *latest* one to every actuator's lane
(:mod:`watchdog.daemon.lanes`: its own thread, a deadline per call, backoff). Once every
lane confirmed it (each actuator writes, reads back, and raises on a mismatch), the older
pending decisions of the module are marked applied as superseded, and then it is (in that
order: a crash in between leaves the newest pending, never an older one). A decision's
effect is a complete flag state (module, version, traffic, kill switch), so the latest
contains theirs, and a new rollback never queues behind a stale advance. Rounds run:

* in the worker thread, woken by the tick right after it journaled, by a lane that
  finished a call, and at least every ``poll_interval`` (<= 0.25 s): decisions written by
  another process (the CLI: pause, kill switch...) and retries;
* at start-up, before the first tick, waiting for the lanes (each call bounded by its
  deadline): whatever a crash left unconfirmed is applied again;
* at shutdown, and from ``rollout-watchdog apply``, the same way.

Idempotent: a decision's effect is keyed by the decision id, so applying it twice after a
crash has one effect. While the global kill switch is on, every effect is forced to V1.

A rollback the journal could not take (:meth:`apply_unjournaled`) is held in memory and
wins over anything journaled for its module until the engine has written its record
(:meth:`journaled`); the record is then applied again (same flags, idempotent).

A failing actuator: the decision stays pending with its error in ``apply_error``, is
retried with exponential backoff, and every failed attempt is an alert (an ERROR log
line, :attr:`OutboxStats.failures`, ``on_failure``). A safety action (rollback, abort,
kill switch) not applied ``stuck_after`` seconds after it was handed over is announced
(:mod:`watchdog.daemon.stuck`) with the actuators' error, and again once it is applied.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

from watchdog.actuators import Actuator, FlagState
from watchdog.clock import Clock, SystemClock
from watchdog.daemon.lanes import Attempt, Lane
from watchdog.daemon.stuck import OnStuck, StuckWatch
from watchdog.errors import JournalError
from watchdog.journal import open_journal
from watchdog.journal.records import JournaledDecision
from watchdog.model import Decision
from watchdog.worker import PollingWorker

log = logging.getLogger(__name__)

OnApplied = Callable[[JournaledDecision], None]
# the outbox's own journal connection never waits longer for a lock: a round blocked on
# marking a decision applied would delay the next round, a rollback's (marks are retried)
JOURNAL_WAIT = 0.1


@dataclass
class OutboxStats:
    """Counters (monotonic within a process) for logs and /metrics."""

    applied: int = 0  # decisions confirmed by every actuator
    superseded: int = 0  # pending decisions replaced by a newer confirmed one
    failures: int = 0  # failed attempts (a call past its deadline too); each one alerted
    unjournaled: int = 0  # rollbacks handed over while the journal could not record them
    passes: int = 0  # deliver() rounds


def effect(decision: Decision, decision_id: int | str, kill_switch: bool) -> FlagState:
    """The flag state a decision asks for (V1 everywhere while the kill switch is on)."""
    state = FlagState.of(decision, decision_id)
    if kill_switch and not state.kill_switch:
        return FlagState(state.module, "v1", 0.0, True, state.decision_id)
    return state


def describe(jd: JournaledDecision) -> str:
    d = jd.decision
    stages = "" if d.from_stage is None and d.to_stage is None else \
        f" stage={_stage(d.from_stage)}->{_stage(d.to_stage)}"
    kill = " kill_switch=on" if d.kill_switch else ""
    return (f"decision #{jd.id} module={d.module} action={d.action.value} "
            f"traffic={d.traffic_percent:g}%{stages}{kill} actor={d.actor} "
            f"reasons={'; '.join(d.reasons)!r}")


def _stage(index: int | None) -> str:
    return "none" if index is None else str(index + 1)


@dataclass
class _Want:
    key: str
    decision: Decision
    jd: JournaledDecision | None  # None: held in memory, not journaled yet
    older: tuple[JournaledDecision, ...]  # pending ones of the module it supersedes


class Outbox:
    def __init__(self, journal_path: str, actuators: Sequence[Actuator], *,
                 clock: Clock | None = None, poll_interval: float = 0.25,
                 backoff: float = 0.5, max_backoff: float = 60.0, deadline: float = 10.0,
                 stuck_after: float = 5.0, on_applied: OnApplied | None = None,
                 on_failure: Callable[[str], None] | None = None,
                 on_stuck: OnStuck | None = None, on_unstuck: OnStuck | None = None,
                 owns: Callable[[str], bool] | None = None) -> None:
        # its own connection, used under the lock; a locked journal costs a round at most
        # JOURNAL_WAIT, and what it could not mark is marked on a later round
        self.journal = open_journal(journal_path, busy_timeout=JOURNAL_WAIT)
        # several instances on one journal (watchdog.daemon.leases): only the decisions of
        # the modules this one guards are applied here
        self.owns = owns
        self.clock: Clock = clock or SystemClock()
        self.backoff, self.max_backoff, self.deadline = backoff, max_backoff, deadline
        self.stuck = StuckWatch(self.clock, stuck_after, on_stuck, on_unstuck)
        self.on_applied, self.on_failure = on_applied, on_failure  # on_failure(actuator)
        self.stats = OutboxStats()
        self._retry: dict[int, tuple[int, float]] = {}  # id -> (attempts, next try)
        self._lock = threading.RLock()
        self._worker = PollingWorker("outbox", lambda: self.deliver(wait=False),
                                     min(poll_interval, 0.25), "outbox worker failed")
        self.lanes: tuple[Lane, ...] = ()
        self.set_actuators(actuators)
        self._memory: dict[str, tuple[str, Decision]] = {}  # module -> unjournaled rollback
        self._said: set[str] = set()  # unjournaled rollbacks logged as applied
        self._kill = False
        self._read_failing = False
        self._unmarked: set[int] = set()  # decisions whose outcome the journal refused

    @property
    def actuators(self) -> tuple[Actuator, ...]:
        return tuple(lane.actuator for lane in self.lanes)

    def set_actuators(self, actuators: Sequence[Actuator]) -> None:
        with self._lock:
            kept = {id(lane.actuator): lane for lane in self.lanes}
            lanes = tuple(kept.pop(id(a)) if id(a) in kept else
                          Lane(a, clock=self.clock, deadline=self.deadline,
                               backoff=self.backoff, max_backoff=self.max_backoff,
                               on_event=self._worker.wake) for a in actuators)
            for lane in kept.values():
                lane.stop(0.0)
            self.lanes = lanes

    def failing(self) -> dict[int, int]:
        """Pending decisions that failed, with their failed attempts so far."""
        with self._lock:
            return {i: n for i, (n, _) in self._retry.items()}

    # handing over ----------------------------------------------------------------------

    def wake(self) -> None:
        """A decision was journaled: a round now (the caller never waits for it)."""
        self._worker.wake()

    def apply_unjournaled(self, decision: Decision) -> None:
        """A rollback the journal could not take: apply it now, keyed by module and time."""
        with self._lock:
            key = f"unjournaled:{decision.module}:{decision.at:g}"
            self._memory[decision.module] = (key, decision)
            self.stats.unjournaled += 1
            for lane in self.lanes:
                lane.want(decision.module, key, effect(decision, key, False))
        log.error("ALERT applying an unjournaled %s of %s (traffic %g%%); its journal record "
                  "follows when the journal takes writes again", decision.action.value,
                  decision.module, decision.traffic_percent)
        self._worker.wake()

    def journaled(self, module: str) -> None:
        """The engine wrote the records of ``module``'s unjournaled rollback."""
        with self._lock:
            self._memory.pop(module, None)
        self._worker.wake()

    # a round ---------------------------------------------------------------------------

    def deliver(self, force: bool = False, wait: bool = True) -> int:
        """One round; with ``wait``, until the lanes are done (each call bounded by its
        deadline). ``force`` ignores backoff. Returns the decisions confirmed. Never raises.
        """
        with self._lock:
            self.stats.passes += 1
            wants = self._wants()
            for w in wants.values():
                state = effect(w.decision, w.key, self._kill) if w.jd is not None \
                    else effect(w.decision, w.key, False)
                for lane in self.lanes:
                    lane.want(w.decision.module, w.key, state, force)
        if wait:
            self._settle()
        with self._lock:
            for lane in self.lanes:
                lane.check()
            for attempt in [a for lane in self.lanes for a in lane.events()]:
                if not attempt.ok:
                    self._failed(attempt, wants.get(attempt.module))
            self.stuck.wanted(w.key for w in wants.values())
            return sum(self._confirm(w) for w in wants.values())

    def _wants(self) -> dict[str, _Want]:
        """Per module, the latest pending decision (a rollback in memory first)."""
        self._kill = False
        try:
            pending = self.journal.decisions(unapplied_only=True)
            self._kill = bool(self.journal.setting("kill_switch", False)) if pending else False
            self._read_failing = False
        except (sqlite3.Error, JournalError) as err:
            if not self._read_failing:
                log.error("outbox: cannot read the journal (%s); retrying", err)
            self._read_failing = True
            pending = []
        by_module: dict[str, list[JournaledDecision]] = {}
        if self.owns is not None:
            pending = [jd for jd in pending if self.owns(jd.decision.module)]
        for jd in pending:
            by_module.setdefault(jd.decision.module, []).append(jd)
        wants = {m: _Want(str(jds[-1].id), jds[-1].decision, jds[-1], tuple(jds[:-1]))
                 for m, jds in by_module.items()}
        for module, (key, decision) in self._memory.items():
            wants[module] = _Want(key, decision, None, tuple(by_module.get(module, ())))
        return wants

    def _settle(self) -> None:
        limit = time.monotonic() + self.deadline + 1.0
        while time.monotonic() < limit:
            for lane in self.lanes:
                lane.check()
            if all(lane.settled() for lane in self.lanes):
                return
            time.sleep(0.005)

    def _failed(self, attempt: Attempt, want: _Want | None) -> None:
        if self.on_failure is not None:
            self.on_failure(attempt.actuator)
        self.stats.failures += 1
        delay = max(0.0, attempt.next_try - self.clock.monotonic())
        what = f"{attempt.module} {attempt.key}"
        if want is not None and want.key == attempt.key and want.jd is not None:
            what = describe(want.jd)
            self._retry[want.jd.id] = (attempt.attempts, attempt.next_try)
            self._mark(want.jd.id, f"{attempt.actuator}: {attempt.error}")
        log.error("ALERT actuation failed (attempt %d, actuator %s), retrying in %.3gs; "
                  "%s stays pending: %s", attempt.attempts, attempt.actuator, delay, what,
                  attempt.error)

    def _confirm(self, w: _Want) -> bool:
        module = w.decision.module
        errors = partial(self._errors, module)
        if not all(lane.confirmed(module, w.key) for lane in self.lanes):
            self.stuck.check(w.key, w.decision, errors)
            return False
        if w.jd is None:
            if w.key not in self._said:
                self._said.add(w.key)
                log.warning("applied the unjournaled %s of %s", w.decision.action.value, module)
                self.stuck.applied(w.key, w.decision, errors)
            if self.owns is not None and not self.owns(module):
                self._memory.pop(module, None)  # claimed for the module's new guard
            return False
        # the older decisions first: a crash between the marks then leaves the newest
        # pending (applied again on restart, idempotent), never an older one pending
        # behind an applied newer one, which the next round would apply over it
        for old in w.older:
            if not self._mark(old.id, None):
                return False
            self.stats.superseded += 1
            self._retry.pop(old.id, None)
            log.info("decision #%d superseded by #%d (applied)", old.id, w.jd.id)
        if not self._mark(w.jd.id, None):
            return False
        self._retry.pop(w.jd.id, None)
        self.stats.applied += 1
        log.info("%s; applied", describe(w.jd))
        self.stuck.applied(w.key, w.decision, errors)
        if self.on_applied is not None:
            try:
                self.on_applied(w.jd)
            except Exception:
                log.exception("after applying decision #%d", w.jd.id)
        return True

    def _errors(self, module: str) -> str:
        return "; ".join(f"{lane.name}: {lane.error(module)}" for lane in self.lanes
                         if lane.error(module))

    def _mark(self, decision_id: int, error: str | None) -> bool:
        try:
            self.journal.mark_applied(decision_id, self.clock.now(), error)
        except JournalError as err:  # marked on a later round; applying again is idempotent
            # once per decision, not per round: with many modules the journal is often
            # busy for the outbox's short wait, and every round would log it again
            if decision_id not in self._unmarked:
                self._unmarked.add(decision_id)
                log.warning("decision #%d: cannot record the outcome of its actuation yet "
                            "(retried every round): %s", decision_id, err)
            return False
        if decision_id in self._unmarked:
            self._unmarked.discard(decision_id)
            log.info("decision #%d: outcome recorded", decision_id)
        return True

    # the worker ------------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()

    def alive(self) -> bool:
        return self._worker.alive()

    def healthy(self, within: float) -> bool:
        """The worker runs and finished a round less than ``within`` seconds ago."""
        return self._worker.alive() and self._worker.since_round() < within

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the worker after its current round; False if it is still busy."""
        return self._worker.stop(timeout)

    def close(self) -> None:
        stopped = self.stop()
        for lane in self.lanes:
            lane.stop(1.0)
        if stopped:
            with self._lock:
                self.journal.close()
