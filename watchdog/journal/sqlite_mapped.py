"""Where sqlite3's errors become ours (:func:`sqlite_error`), for the SQLite journal
(:mod:`watchdog.journal.store`): its methods (:func:`_mapped`) and the connection it lends
to the portable SQL (:class:`MappedConnection`)."""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from watchdog.errors import JournalBusy, JournalConflict, JournalError, JournalUnavailable
from watchdog.journal.gate import write_gate
from watchdog.journal.sqlite_extra import SqliteExtras

_BUSY = ("locked", "busy")
_UNAVAILABLE = ("unable to open", "disk i/o", "readonly", "read-only")
_WRITES = ("INSERT", "UPDATE", "DELETE")


def sqlite_error(err: sqlite3.Error, what: str) -> JournalError:
    """The one place where sqlite3's errors become ours."""
    text = str(err).lower()
    if isinstance(err, sqlite3.IntegrityError):
        return JournalConflict(f"{what}: {err}")
    if isinstance(err, sqlite3.OperationalError) and any(w in text for w in _BUSY):
        return JournalBusy(f"{what}: {err}")
    if isinstance(err, sqlite3.OperationalError) and any(w in text for w in _UNAVAILABLE):
        return JournalUnavailable(f"{what}: {err}")
    return JournalError(f"{what}: {err}")


F = TypeVar("F", bound=Callable[..., Any])


def _mapped(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: SqliteExtras, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as err:
            raise sqlite_error(err, f"journal {self.path}: {method.__name__}") from err
    return wrapper  # type: ignore[return-value]


class MappedConnection:
    """The journal's connection for the portable SQL: sqlite3's errors become ours."""

    def __init__(self, conn: sqlite3.Connection, path: str, wait: float | None = None
                 ) -> None:
        """``wait``: a journal's busy timeout; its writes then queue at the file's gate."""
        self._conn, self._path, self._wait = conn, path, wait

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> sqlite3.Cursor:
        try:
            if self._wait is None or self._conn.in_transaction or \
                    sql.lstrip()[:6].upper() not in _WRITES:
                return self._conn.execute(sql, parameters)
            with write_gate(self._path, self._wait):  # a write, its own transaction
                return self._conn.execute(sql, parameters)
        except sqlite3.Error as err:
            raise sqlite_error(err, f"journal {self._path}") from err
