"""The notification queue: enqueue is a local SQLite insert; a sender thread delivers.

The decision path calls :meth:`NotificationQueue.enqueue` (idempotent on the key; inside
``journal.transaction()`` it joins that transaction, so a decision and its notification
commit together). Nothing there touches the network: a Slack outage or a hung connection
never delays a rollback. The sender (:meth:`start`/:meth:`stop`, or :meth:`drain_once`
from tests) takes the oldest pending row of each channel, sends it, and marks it sent in
one autocommitted UPDATE. A failure leaves the row pending with exponential backoff (or
the service's Retry-After) and holds back only its own channel, which keeps each channel
in order. Refused credentials pause the queue until the notifier is reconfigured;
nothing is dropped meanwhile. Noise control (dedupe, repeat interval, resolved) is in
:mod:`watchdog.notifiers.outbox`.

Delivery is at-least-once. A row is marked sent only after the notifier returned, so a
crash (or a lost response) between Slack accepting a message and the mark resends it
after a restart; a row marked sent is never sent again, and a key already in the outbox
is never queued again. We chose at-least-once over at-most-once because a lost rollback
alert costs more than a duplicate one. The Slack notifier narrows the window by recording
each message's ``ts`` the moment Slack returns it, so a retry redoes only missing steps.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from watchdog.clock import Clock, SystemClock
from watchdog.errors import JournalError, NotifierError
from watchdog.journal.base import Journal, SqlConnection
from watchdog.notifiers import Notification, Notifier
from watchdog.notifiers import outbox as ob
from watchdog.worker import PollingWorker

log = logging.getLogger(__name__)

# One lock per journal object: the daemon's queues share one journal connection and every
# module's tick thread enqueues through it. SQLite's transaction state belongs to the
# connection, not the thread, so unserialized enqueues ran BEGIN inside another thread's
# transaction ("cannot start a transaction within a transaction"), committed it, or joined
# it (a later COMMIT: "no transaction is active").
_LOCKS: weakref.WeakKeyDictionary[object, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def connection_lock(journal: object) -> threading.RLock:
    """The lock that serializes this process's queue transactions on ``journal``."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(journal)
        if lock is None:
            lock = _LOCKS[journal] = threading.RLock()
        return lock


@runtime_checkable
class Routed(Protocol):
    """A notifier that sends to several channels (ordering and rate limits are per channel)."""

    def channel_for(self, notification: Notification) -> str: ...


@dataclass
class QueueStats:
    """Counters for /metrics (monotonic within a process)."""

    enqueued: int = 0
    duplicates: int = 0
    suppressed: int = 0
    sent: int = 0
    failed_attempts: int = 0
    dead: int = 0
    enqueue_errors: int = 0
    auth_pauses: int = 0


class NotificationQueue:
    def __init__(self, journal: Journal, notifier: Notifier, *, clock: Clock | None = None,
                 repeat_interval: float = 4 * 3600.0, backoff: float = 2.0,
                 max_backoff: float = 300.0, max_refusals: int = 5,
                 poll_interval: float = 1.0) -> None:
        self.journal = journal
        self.notifier = notifier
        self.clock = clock or SystemClock()
        self.repeat_interval = repeat_interval
        self.backoff, self.max_backoff, self.max_refusals = backoff, max_backoff, max_refusals
        self.stats = QueueStats()
        # The sender has its own connection: the caller's may be inside a transaction.
        self._sender = journal.reopen()  # the same object for ":memory:"
        self._own_db = self._sender is not journal
        self._conn = self._sender.sql
        self._lock = connection_lock(journal)  # shared by every queue on this journal
        self._sender_lock = connection_lock(self._sender)  # the same lock for ":memory:"
        # waiting for the other enqueuers is bounded like waiting for SQLite's write lock
        self._lock_wait = float(getattr(journal, "busy_timeout", 1.0))
        self._paused = False
        self._overflow: deque[Notification] = deque()  # enqueues the journal refused
        self._unmarked: set[int] = set()  # sent, but marking failed: never resend them
        self._drain_lock = threading.Lock()
        self._worker = PollingWorker(f"notify-{notifier.name}", self.drain_once, poll_interval,
                                     "notification sender failed")

    # the decision path -----------------------------------------------------------------

    def enqueue(self, n: Notification) -> bool:
        """Queue ``n``; True when it will be sent, False for a duplicate or suppressed one.

        Never raises for a journal failure: the notification is then held in memory and
        the sender retries the insert (and sends it directly if the journal stays down).
        """
        if not self._lock.acquire(timeout=self._lock_wait):
            return self._hold(n, "other enqueues on this journal connection are still waiting")
        try:
            conn = self.journal.sql
            # under the lock no other enqueue is inside a transaction on this connection: an
            # open one is the caller's (a connection shared between threads is the daemon's,
            # and there only queues begin transactions)
            if conn.in_transaction:
                state = self._insert(conn, n)
            else:
                with self.journal.transaction():
                    state = self._insert(conn, n)
        except (sqlite3.Error, JournalError) as err:
            return self._hold(n, str(err))
        finally:
            self._lock.release()
        if state == ob.PENDING:
            self._worker.wake()
        return state == ob.PENDING

    def _hold(self, n: Notification, why: str) -> bool:
        self.stats.enqueue_errors += 1
        log.warning("cannot queue notification %s in the journal (%s); holding it in memory",
                    n.key, why)
        self._overflow.append(n)
        self._worker.wake()
        return True

    def _insert(self, conn: SqlConnection, n: Notification) -> str:
        state = ob.insert(conn, self.notifier.name, n, self.clock.now(), self.repeat_interval,
                          self._route)
        if state == ob.DUPLICATE:
            self.stats.duplicates += 1
        elif state == ob.SUPPRESSED:
            self.stats.suppressed += 1
        else:
            self.stats.enqueued += 1
        return state

    def _route(self, n: Notification) -> str:
        return self.notifier.channel_for(n) if isinstance(self.notifier, Routed) else ""

    # the sender ------------------------------------------------------------------------

    def drain_once(self) -> int:
        """Send what is due, oldest first per channel; returns how many were sent."""
        with self._drain_lock:
            self._flush_overflow()
            if self._paused:
                if getattr(self.notifier, "disabled", True) is not False:
                    return 0
                self._paused = False
                log.info("notifier %s reconfigured; sending queued notifications",
                         self.notifier.name)
            sent = 0
            while not self._worker.stopping:
                now = self.clock.now()
                due = [r for r in ob.heads(self._conn, self.notifier.name)
                       if r["next_attempt_at"] <= now]
                if not due:
                    break
                for row in due:
                    sent += self._deliver(row)
                    if self._paused or self._worker.stopping:
                        return sent
            return sent

    def _deliver(self, row: dict[str, Any]) -> bool:
        if row["id"] not in self._unmarked:
            try:
                self.notifier.send(ob.for_send(row))
            except NotifierError as err:
                if err.auth:
                    self._pause(err)
                else:
                    self._failed(row, err, err.permanent, err.retry_after)
                return False
            except Exception as err:  # a plugin's bug or a library error: retry later
                self._failed(row, err, False, None)
                return False
        try:
            with self._sender_lock:
                ob.mark_sent(self._conn, row["id"], self.clock.now())
            self._unmarked.discard(row["id"])
        except (sqlite3.Error, JournalError) as err:
            self._unmarked.add(row["id"])
            log.error("notification %s was sent but cannot be marked (%s); it will not be "
                      "resent by this process", row["key"], err)
        self.stats.sent += 1
        return True

    def _failed(self, row: dict[str, Any], err: Exception, permanent: bool,
                retry_after: float | None) -> None:
        self.stats.failed_attempts += 1
        attempts, refusals = row["attempts"] + 1, row["refusals"] + int(permanent)
        delay = retry_after if retry_after is not None else min(
            self.max_backoff, self.backoff * 2 ** (attempts - 1))
        state = ob.DEAD if permanent and refusals >= self.max_refusals else ob.PENDING
        text = f"{type(err).__name__}: {err}"[:500]
        with self._sender_lock:
            ob.mark_failed(self._conn, row["id"], state, attempts, refusals,
                           self.clock.now() + delay, text)
        if state == ob.DEAD:
            self.stats.dead += 1
            log.error("giving up on notification %s after %d refusals: %s", row["key"],
                      refusals, text)
        elif attempts == 1:
            log.warning("notification %s not delivered (%s); retrying in %.3gs", row["key"],
                        text, delay)
        else:
            log.debug("notification %s attempt %d failed: %s", row["key"], attempts, text)

    def _pause(self, err: NotifierError) -> None:
        if not self._paused:
            self._paused = True
            self.stats.auth_pauses += 1
            logged = hasattr(self.notifier, "disabled")  # ours log the refusal themselves
            log.log(logging.DEBUG if logged else logging.ERROR,
                    "notifier %s refused its credentials (%s); queue paused",
                    self.notifier.name, err.code)

    def _flush_overflow(self) -> None:
        while self._overflow:
            n = self._overflow[0]
            try:
                with self._sender_lock, self._sender.transaction():
                    self._insert(self._conn, n)
            except (sqlite3.Error, JournalError):
                try:  # the journal is still down: deliver from memory rather than sit on it
                    self.notifier.send(n)
                except Exception as err:
                    log.debug("held notification %s not sent yet: %s", n.key, err)
                    return
            self._overflow.popleft()

    # worker thread ---------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the sender; False if it is still inside a send after ``timeout``."""
        return self._worker.stop(timeout)

    def close(self) -> None:
        if self.stop() and self._own_db:
            self._sender.close()

    # inspection and operator actions ---------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    def resume(self) -> None:
        self._paused = False
        self._worker.wake()

    def pending(self) -> int:
        return ob.count(self._conn, self.notifier.name, ob.PENDING) + len(self._overflow)

    def rows(self, state: str | None = None) -> list[dict[str, Any]]:
        return ob.rows(self._conn, self.notifier.name, state)

    def prune(self, before: float) -> int:
        """Forget sent and suppressed rows enqueued before ``before`` (the dedupe window)."""
        return ob.prune(self._conn, self.notifier.name, before)

    def requeue_dead(self) -> int:
        """Give notifications that were given up on another round (after fixing config)."""
        found = ob.requeue_dead(self._conn, self.notifier.name, self.clock.now())
        self._worker.wake()
        return found
