"""What Slack told us: the open thread of each module's rollout, and the ``ts`` of every
message we posted for a notification key.

Each step of a delivery (post the parent, post the reply, edit the parent) is recorded
right after Slack confirms it, so a retry of the same notification redoes only the steps
that are missing: a reply already posted is never posted again. The one gap left is a
crash (or a lost response) between Slack accepting a post and the record being written;
that message may then be posted twice (at-least-once, see docs/slack.md).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, cast

from watchdog.journal import open_journal
from watchdog.journal.base import SqlConnection
from watchdog.journal.store import MappedConnection

if TYPE_CHECKING:
    import sqlite_utils


@dataclass(frozen=True)
class Thread:
    module: str
    channel: str  # the configured channel (name or id)
    channel_id: str  # the id Slack returned (chat.update needs the id, not the name)
    ts: str  # the parent message
    started_at: float
    opened_by: str  # the notification key that opened it
    closed_at: float | None = None


class SlackLedger(Protocol):
    def open_thread(self, module: str, channel: str) -> Thread | None: ...

    def start_thread(self, thread: Thread) -> None: ...

    def close_thread(self, thread: Thread, at: float) -> None: ...

    def step(self, key: str, step: str) -> str | None: ...

    def record_step(self, key: str, step: str, channel_id: str, ts: str, at: float) -> None: ...


class MemoryLedger:
    """For a notifier used without a journal (lost on restart)."""

    def __init__(self) -> None:
        self._threads: dict[tuple[str, str], Thread] = {}
        self._steps: dict[tuple[str, str], str] = {}
        self.closed: list[Thread] = []

    def open_thread(self, module: str, channel: str) -> Thread | None:
        return self._threads.get((module, channel))

    def start_thread(self, thread: Thread) -> None:
        self._threads[(thread.module, thread.channel)] = thread

    def close_thread(self, thread: Thread, at: float) -> None:
        if self._threads.pop((thread.module, thread.channel), None) is not None:
            self.closed.append(replace(thread, closed_at=at))

    def step(self, key: str, step: str) -> str | None:
        return self._steps.get((key, step))

    def record_step(self, key: str, step: str, channel_id: str, ts: str, at: float) -> None:
        self._steps[(key, step)] = ts


class SqliteLedger:
    """Threads and steps in the journal (tables ``slack_threads``, ``slack_messages``).

    Give it its own connection (see :meth:`for_path`) when it runs in a sender thread;
    every write is a single autocommitted statement, never held across a network call.
    """

    def __init__(self, db: sqlite_utils.Database | SqlConnection | None) -> None:
        """``db``: an SQLite database, or a journal's connection (:attr:`Journal.sql`, either
        backend: the SQL here is portable)."""
        # sqlite-utils is not imported for this (the daemon does not load it): a Database
        # exists only when something else has imported it
        utils = sys.modules.get("sqlite_utils")
        if utils is not None and isinstance(db, utils.Database):
            db = MappedConnection(db.conn, "slack ledger")
        self._conn: SqlConnection | None = cast(SqlConnection, db) if db is not None else None
        self._path: str | None = None
        self._lock = threading.Lock()

    @property
    def conn(self) -> SqlConnection:
        """The connection, opened at first use for a ledger made by :meth:`for_path` (so
        building the notifier, as ``run --check`` does, creates no journal)."""
        if self._conn is None:
            assert self._path is not None
            self._conn = open_journal(self._path).sql
        return self._conn

    @classmethod
    def for_path(cls, path: str) -> SqliteLedger:
        """Its own connection to the journal at ``path`` (a file or a PostgreSQL URL),
        opened when first used."""
        ledger = cls(None)
        ledger._path = path
        return ledger

    def open_thread(self, module: str, channel: str) -> Thread | None:
        with self._lock:
            row = self.conn.execute(
                "SELECT module, channel, channel_id, ts, started_at, opened_by FROM"
                " slack_threads WHERE module=? AND channel=? AND closed_at IS NULL",
                (module, channel)).fetchone()
        return Thread(*row) if row else None

    def start_thread(self, thread: Thread) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO slack_threads (module, channel, channel_id, ts, started_at,"
                " opened_by) VALUES (?,?,?,?,?,?)",
                (thread.module, thread.channel, thread.channel_id, thread.ts,
                 thread.started_at, thread.opened_by))

    def close_thread(self, thread: Thread, at: float) -> None:
        with self._lock:
            self.conn.execute("UPDATE slack_threads SET closed_at=? WHERE module=? AND"
                                 " channel=? AND ts=? AND closed_at IS NULL",
                                 (at, thread.module, thread.channel, thread.ts))

    def step(self, key: str, step: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT ts FROM slack_messages WHERE key=? AND step=?",
                                       (key, step)).fetchone()
        return str(row[0]) if row else None

    def record_step(self, key: str, step: str, channel_id: str, ts: str, at: float) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO slack_messages (key, step, channel_id, ts, at) VALUES (?,?,?,?,?)"
                " ON CONFLICT (key, step) DO UPDATE SET channel_id=excluded.channel_id,"
                " ts=excluded.ts, at=excluded.at", (key, step, channel_id, ts, at))

    def threads(self) -> list[Thread]:
        with self._lock:
            rows = self.conn.execute("SELECT module, channel, channel_id, ts, started_at,"
                                     " opened_by, closed_at FROM slack_threads ORDER BY id")
            return [Thread(*r) for r in rows.fetchall()]
