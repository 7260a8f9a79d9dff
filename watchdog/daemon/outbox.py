"""The actuation outbox: journaled decisions are applied, read back, then marked applied.

A decision is journaled before anything acts on it (the journal's ``decisions`` table is
the outbox). :meth:`Outbox.deliver` applies every decision whose ``applied_at`` is empty,
in journal order, through every actuator (each one writes, reads back and raises
:class:`~watchdog.errors.ActuatorError` on a mismatch), and only then marks it applied.
It runs:

* in the tick, right after the tick journaled its decisions (a rollback is acted on at
  once, not on the worker's next round);
* at start-up, before the first tick: whatever a crash left unconfirmed is applied again;
* in the worker thread every ``poll_interval`` (<= 0.25 s): decisions written by another
  process (the CLI: pause, kill switch...) and retries.

Idempotent: a decision's effect is a complete flag state (module, version, traffic, kill
switch) keyed by the decision id, so applying it twice after a crash has one effect.
While the global kill switch is on, every effect is forced to V1 (traffic 0).

A failing actuator: the decision stays pending with its error in ``apply_error``, is
retried with exponential backoff, and every failed attempt is an alert (an ERROR log
line and :attr:`OutboxStats.failures`). A newer decision of the same module is not held
up behind it: it is tried, and once it is confirmed the older ones it replaces are
marked applied as superseded (its flag state contains theirs).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from watchdog.actuators import Actuator, FlagState
from watchdog.clock import Clock, SystemClock
from watchdog.errors import JournalError
from watchdog.journal.store import Journal, JournaledDecision
from watchdog.model import Decision
from watchdog.worker import PollingWorker

log = logging.getLogger(__name__)

OnApplied = Callable[[JournaledDecision], None]


@dataclass
class OutboxStats:
    """Counters (monotonic within a process) for logs and /metrics."""

    applied: int = 0  # decisions confirmed by every actuator
    superseded: int = 0  # pending decisions replaced by a newer confirmed one
    failures: int = 0  # failed attempts; each one is alerted
    unjournaled: int = 0  # rollbacks applied while the journal could not record them
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


class Outbox:
    def __init__(self, journal_path: str, actuators: Sequence[Actuator], *,
                 clock: Clock | None = None, poll_interval: float = 0.25,
                 backoff: float = 0.5, max_backoff: float = 60.0,
                 on_applied: OnApplied | None = None,
                 on_failure: Callable[[str], None] | None = None) -> None:
        self.journal = Journal(journal_path)  # its own connection, used under the lock
        self.actuators: tuple[Actuator, ...] = tuple(actuators)
        self.clock: Clock = clock or SystemClock()
        self.backoff, self.max_backoff = backoff, max_backoff
        self.on_applied = on_applied
        self.on_failure = on_failure  # called with the failing actuator's name
        self.stats = OutboxStats()
        self._retry: dict[int, tuple[int, float]] = {}  # id -> (attempts, next try, monotonic)
        self._lock = threading.RLock()
        self._worker = PollingWorker("outbox", self.deliver, min(poll_interval, 0.25),
                                     "outbox worker failed")
        self._read_failing = False

    # applying --------------------------------------------------------------------------

    def set_actuators(self, actuators: Sequence[Actuator]) -> None:
        with self._lock:
            self.actuators = tuple(actuators)

    def failing(self) -> dict[int, int]:
        """Pending decisions that failed, with their failed attempts so far."""
        with self._lock:
            return {i: n for i, (n, _) in self._retry.items()}

    def deliver(self, force: bool = False) -> int:
        """Apply what is pending, oldest first; ``force`` ignores backoff. Never raises."""
        with self._lock:
            self.stats.passes += 1
            try:
                pending = self.journal.decisions(unapplied_only=True)
                kill = bool(self.journal.setting("kill_switch", False)) if pending else False
            except (sqlite3.Error, JournalError) as err:
                if not self._read_failing:
                    log.error("outbox: cannot read the journal (%s); retrying", err)
                self._read_failing = True
                return 0
            self._read_failing = False
            last = {jd.decision.module: jd.id for jd in pending}
            blocked: set[str] = set()
            passed: dict[str, list[JournaledDecision]] = {}
            done = 0
            for jd in pending:
                module = jd.decision.module
                if module in blocked:
                    continue
                newer = last[module] != jd.id
                _, next_try = self._retry.get(jd.id, (0, 0.0))
                if (force or next_try <= self.clock.monotonic()) and self._apply(jd, kill):
                    done += 1
                    for old in passed.pop(module, []):
                        self._mark(old.id, None)
                        self._retry.pop(old.id, None)
                        self.stats.superseded += 1
                        log.info("decision #%d superseded by #%d (applied)", old.id, jd.id)
                elif newer:
                    passed.setdefault(module, []).append(jd)  # try the newer one
                else:
                    blocked.add(module)
            return done

    def _apply(self, jd: JournaledDecision, kill: bool) -> bool:
        state = effect(jd.decision, jd.id, kill)
        name = "-"
        try:
            for actuator in self.actuators:
                name = getattr(actuator, "name", type(actuator).__name__)
                actuator.apply(state)
        except Exception as err:  # ActuatorError, or a plugin's bug: retried the same way
            if self.on_failure is not None:
                self.on_failure(name)
            attempts = self._retry.get(jd.id, (0, 0.0))[0] + 1
            delay = min(self.max_backoff, self.backoff * 2 ** (attempts - 1))
            self._retry[jd.id] = (attempts, self.clock.monotonic() + delay)
            self.stats.failures += 1
            text = f"{type(err).__name__}: {err}"[:500]
            log.error("ALERT actuation failed (attempt %d, actuator %s), retrying in %.3gs; "
                      "%s stays pending: %s", attempts, name, delay, describe(jd), text)
            self._mark(jd.id, text)
            return False
        self._mark(jd.id, None)
        self._retry.pop(jd.id, None)
        self.stats.applied += 1
        log.info("%s; applied", describe(jd))
        if self.on_applied is not None:
            try:
                self.on_applied(jd)
            except Exception:
                log.exception("after applying decision #%d", jd.id)
        return True

    def _mark(self, decision_id: int, error: str | None) -> None:
        try:
            self.journal.mark_applied(decision_id, self.clock.now(), error)
        except JournalError as err:  # applied again later: idempotent
            log.error("decision #%d: cannot record the outcome of its actuation: %s",
                      decision_id, err)

    def apply_unjournaled(self, decision: Decision) -> bool:
        """A rollback the journal could not take: act now, keyed by module and time."""
        with self._lock:
            key = f"unjournaled:{decision.module}:{decision.at:g}"
            state = effect(decision, key, False)
            try:
                for actuator in self.actuators:
                    actuator.apply(state)
            except Exception as err:
                self.stats.failures += 1
                log.error("ALERT actuation of an unjournaled %s of %s failed: %s",
                          decision.action.value, decision.module, err)
                return False
            self.stats.unjournaled += 1
            log.warning("applied an unjournaled %s of %s (traffic %g%%); the journal record "
                        "follows when the journal is back", decision.action.value,
                        decision.module, decision.traffic_percent)
            return True

    # the worker ------------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()

    def wake(self) -> None:
        self._worker.wake()

    def alive(self) -> bool:
        return self._worker.alive()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the worker after its current round; False if it is still busy."""
        return self._worker.stop(timeout)

    def close(self) -> None:
        if self.stop():
            with self._lock:
                self.journal.close()
