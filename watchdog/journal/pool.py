"""A few PostgreSQL connections shared by many users: the daemon's module engines.

With SQLite every module's engine has its own connection (a file handle). With PostgreSQL
that would be one server process per module and instance, so the engines of one daemon
share a :class:`JournalPool` instead: each call of a :class:`~watchdog.journal.base.Journal`
method borrows a connection for that call (every method is one transaction), so two
threads never share a transaction. ``sql`` and ``transaction()`` span several calls and
are refused: take a connection of your own (:func:`watchdog.journal.open_journal`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, cast

from watchdog.journal.base import Journal
from watchdog.journal.postgres import PostgresJournal, redact

SPANNING = ("sql", "transaction")


class JournalPool:
    def __init__(self, url: str, size: int = 4, busy_timeout: float | None = None) -> None:
        self.url, self.size, self.busy_timeout = url, size, busy_timeout
        self.path = redact(url)
        self._free: queue.LifoQueue[PostgresJournal] = queue.LifoQueue()
        self._all: list[PostgresJournal] = []
        self._lock = threading.Lock()
        self._put(self._open())  # fails here when the server cannot be reached

    def _open(self) -> PostgresJournal:
        j = PostgresJournal(self.url, busy_timeout=self.busy_timeout)
        with self._lock:
            self._all.append(j)
        return j

    def _get(self) -> PostgresJournal:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            grow = len(self._all) < self.size
        return self._open() if grow else self._free.get()

    def _put(self, j: PostgresJournal) -> None:
        self._free.put(j)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_") or name in SPANNING or not callable(
                getattr(PostgresJournal, name, None)):
            raise AttributeError(f"{type(self).__name__} has no {name!r} (for sql and "
                                 "transaction(), open a journal of your own)")

        def call(*args: Any, **kwargs: Any) -> Any:
            j = self._get()
            try:
                return getattr(j, name)(*args, **kwargs)
            finally:
                self._put(j)
        return call

    def close(self) -> None:
        with self._lock:
            opened, self._all = self._all, []
        for j in opened:
            j.close()

    def reopen(self) -> Journal:
        return PostgresJournal(self.url, busy_timeout=self.busy_timeout)

    def as_journal(self) -> Journal:
        return cast(Journal, self)
