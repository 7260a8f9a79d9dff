"""One lane per actuator: its own thread applies the latest wanted flag state of each
module, one call at a time, each call under a deadline.

The outbox (:mod:`watchdog.daemon.outbox`) says what each module's flags should be
(:meth:`Lane.want`); the lane's thread applies it and reports back. Nothing here ever
blocks the caller: the tick and the outbox only hand states over.

* Latest wins: a module has one wanted state (a decision's effect is a complete flag
  state), so a new rollback replaces a pending advance instead of queueing behind it.
* A call that has not returned ``deadline`` seconds after it started is abandoned: counted
  as a failed attempt, retried with backoff, and the lane goes on in a new thread (Python
  cannot stop the hung one). A call whose state was replaced meanwhile (same module), or
  an advance in flight while a rollback of any module waits, is abandoned sooner, after
  ``PREEMPT_AFTER`` (1 s, or the deadline if shorter), and not counted as a failure: a
  healthy actuator finishes well within that, so calls to it stay one at a time and in
  order, while a hanging one holds a rollback up for about a second, not a deadline.
  When an abandoned call finally returns, the module's latest state is applied again:
  the late call may have overwritten it (applying is idempotent).
* At most ``MAX_HUNG`` abandoned calls may still be running; beyond that the lane waits
  for one of them rather than pile up threads against a dead endpoint.

The deadline is real (monotonic) time; backoff uses the injected clock, so tests can
step it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from watchdog.actuators import Actuator, FlagState
from watchdog.clock import Clock

log = logging.getLogger(__name__)

MAX_HUNG = 8
PREEMPT_AFTER = 1.0  # seconds a call runs before a waiting replacement or rollback preempts it
IDLE_WAIT = 0.25  # seconds between checks of due retries while something is pending


def safe(state: FlagState) -> bool:
    """The safe direction: no traffic to V2 (a rollback, an abort, the kill switch)."""
    return state.kill_switch or state.traffic_percent == 0.0


@dataclass
class Attempt:
    """A finished (or abandoned) application, for the outbox to log and record."""

    actuator: str
    module: str
    key: str
    ok: bool
    error: str = ""
    attempts: int = 0  # failed attempts so far for this key
    next_try: float = 0.0  # clock.monotonic() of the next try after a failure


@dataclass
class _Slot:
    key: str
    state: FlagState
    done: bool = False
    attempts: int = 0
    next_try: float = 0.0
    error: str = ""


@dataclass
class _Call:
    module: str
    slot: _Slot
    started: float  # time.monotonic()
    generation: int


class Lane:
    def __init__(self, actuator: Actuator, *, clock: Clock, deadline: float, backoff: float,
                 max_backoff: float, on_event: Callable[[], None]) -> None:
        self.actuator = actuator
        self.name: str = getattr(actuator, "name", type(actuator).__name__)
        self.clock, self.deadline = clock, deadline
        self.backoff, self.max_backoff = backoff, max_backoff
        self._on_event = on_event
        self._slots: dict[str, _Slot] = {}
        self._events: list[Attempt] = []
        self._cond = threading.Condition()
        self._generation = 0
        self._current: _Call | None = None
        self._thread: threading.Thread | None = None
        self._hung = 0  # abandoned calls still running
        self._stopped = False
        self.abandoned = 0  # calls abandoned so far (deadline, superseded, preempted)

    # what the outbox calls -------------------------------------------------------------

    def want(self, module: str, key: str, state: FlagState, force: bool = False) -> None:
        """``module``'s flags should be ``state`` (keyed ``key``); ``force`` skips backoff."""
        with self._cond:
            slot = self._slots.get(module)
            if slot is None or slot.key != key or slot.state != state:
                self._slots[module] = _Slot(key, state)
            elif force and not slot.done:
                slot.next_try = 0.0
            self._start()
            self._cond.notify_all()

    def forget(self, module: str) -> None:
        with self._cond:
            self._slots.pop(module, None)

    def confirmed(self, module: str, key: str) -> bool:
        with self._cond:
            slot = self._slots.get(module)
            return slot is not None and slot.key == key and slot.done

    def error(self, module: str) -> str:
        with self._cond:
            slot = self._slots.get(module)
            return slot.error if slot is not None else ""

    def check(self) -> None:
        """Abandon the call in flight once it is past its deadline (counted as a failure),
        or past ``PREEMPT_AFTER`` while a newer state of its module or a rollback waits."""
        with self._cond:
            cur = self._current
            if cur is None:
                return
            ran = time.monotonic() - cur.started
            if ran > self.deadline:
                text = f"no answer within the {self.deadline:g}s deadline; abandoned"
                self._failed(cur.module, cur.slot, text)
                self._abandon("past its deadline")
            elif ran > min(PREEMPT_AFTER, self.deadline) and self._behind(cur):
                self._abandon(f"{ran:.1f}s old while a newer state or a rollback waits")
            else:
                return
            self._start()
            self._cond.notify_all()

    def settled(self) -> bool:
        """Nothing in flight and nothing due now."""
        with self._cond:
            return self._current is None and self._due() is None

    def events(self) -> list[Attempt]:
        with self._cond:
            out, self._events = self._events, []
            return out

    def stop(self, timeout: float) -> bool:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    # the thread ------------------------------------------------------------------------

    def _start(self) -> None:
        """(Under the condition.) A worker thread for the current generation."""
        if self._stopped or self._hung >= MAX_HUNG:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, args=(self._generation,),
                                            name=f"actuator-{self.name}", daemon=True)
            self._thread.start()

    def _abandon(self, why: str) -> None:
        """(Under the condition.) Leave the call in flight to its thread; go on in a new one."""
        cur = self._current
        if cur is None:
            return
        log.warning("actuator %s: call for %s (%s) %s; going on without it", self.name,
                    cur.module, cur.slot.key, why)
        self.abandoned += 1
        self._hung += 1
        self._generation += 1
        self._current = None
        self._thread = None

    def _behind(self, cur: _Call) -> bool:
        """A newer state of the call's module, or a rollback while it is not one, waits."""
        if self._slots.get(cur.module) is not cur.slot:
            return True
        return not safe(cur.slot.state) and any(
            safe(s.state) and not s.done for s in self._slots.values() if s is not cur.slot)

    def _due(self) -> tuple[str, _Slot] | None:
        now = self.clock.monotonic()
        due = [(m, s) for m, s in self._slots.items() if not s.done and s.next_try <= now]
        due.sort(key=lambda ms: not safe(ms[1].state))  # rollbacks first
        return due[0] if due else None

    def _run(self, generation: int) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stopped or generation != self._generation:
                        return
                    picked = self._due()
                    if picked is not None:
                        break
                    pending = any(not s.done for s in self._slots.values())
                    self._cond.wait(IDLE_WAIT if pending else None)
                module, slot = picked
                self._current = _Call(module, slot, time.monotonic(), generation)
            error = ""
            try:
                self.actuator.apply(slot.state)
            except Exception as err:  # ActuatorError, or a plugin's bug: retried the same way
                error = f"{type(err).__name__}: {err}"[:500]
            with self._cond:
                if generation != self._generation:  # abandoned meanwhile
                    self._hung -= 1
                    latest = self._slots.get(module)
                    if latest is not None and latest.done:
                        latest.done = False  # the late call may have overwritten it
                        latest.next_try = 0.0
                    self._start()
                    self._cond.notify_all()
                    return
                self._current = None
                if self._slots.get(module) is slot:  # still the wanted state
                    if error:
                        self._failed(module, slot, error)
                    else:
                        slot.done, slot.error = True, ""
                        self._events.append(Attempt(self.name, module, slot.key, True))
            self._on_event()

    def _failed(self, module: str, slot: _Slot, error: str) -> None:
        slot.attempts += 1
        delay = min(self.max_backoff, self.backoff * 2 ** (slot.attempts - 1))
        slot.next_try, slot.error = self.clock.monotonic() + delay, error
        self._events.append(Attempt(self.name, module, slot.key, False, error,
                                    slot.attempts, slot.next_try))
