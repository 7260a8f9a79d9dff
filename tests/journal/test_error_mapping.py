"""Every error class of each backend's library becomes one of ours (watchdog.errors), in
one place per backend: ``store.sqlite_error`` and ``pg_schema.pg_error``; and the real
failures (a lock held past the wait, a server that is not there, a database that is not
ours) raise the documented kinds."""

from __future__ import annotations

import inspect
import socket
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pge

from watchdog.errors import (
    JournalBusy,
    JournalConflict,
    JournalError,
    JournalUnavailable,
    SchemaError,
)
from watchdog.journal import open_journal
from watchdog.journal.base import Journal
from watchdog.journal.pg_schema import SCHEMA_VERSION, pg_error
from watchdog.journal.store import sqlite_error


def subclasses(root: type) -> set[type]:
    found = {root}
    for sub in root.__subclasses__():
        found |= subclasses(sub)
    return found


def test_every_sqlite3_error_class_is_mapped() -> None:
    classes = subclasses(sqlite3.Error)
    assert {sqlite3.OperationalError, sqlite3.IntegrityError, sqlite3.ProgrammingError,
            sqlite3.InterfaceError, sqlite3.DataError} <= classes
    for cls in classes:
        mapped = sqlite_error(cls("boom"), "journal x")
        assert isinstance(mapped, JournalError), cls
        assert "journal x" in str(mapped) and "boom" in str(mapped)
    assert type(sqlite_error(sqlite3.IntegrityError("UNIQUE constraint failed"), "")) \
        is JournalConflict
    assert type(sqlite_error(sqlite3.OperationalError("database is locked"), "")) \
        is JournalBusy
    assert type(sqlite_error(sqlite3.OperationalError("unable to open database file"), "")) \
        is JournalUnavailable
    assert type(sqlite_error(sqlite3.OperationalError("no such table: x"), "")) \
        is JournalError


def test_every_psycopg_error_class_is_mapped() -> None:
    classes = {c for c in vars(pge).values()
               if inspect.isclass(c) and issubclass(c, psycopg.Error)} | subclasses(
        psycopg.Error)
    assert len(classes) > 200  # every SQLSTATE class psycopg knows
    for cls in classes:
        mapped = pg_error(cls("boom"), "journal y")
        assert isinstance(mapped, JournalError), cls
        assert "journal y" in str(mapped)
    expected: dict[type[psycopg.Error], type[JournalError]] = {
        pge.LockNotAvailable: JournalBusy, pge.DeadlockDetected: JournalBusy,
        pge.SerializationFailure: JournalBusy, pge.QueryCanceled: JournalBusy,
        pge.UniqueViolation: JournalConflict, pge.CheckViolation: JournalConflict,
        psycopg.IntegrityError: JournalConflict,
        psycopg.OperationalError: JournalUnavailable, psycopg.InterfaceError:
            JournalUnavailable, pge.AdminShutdown: JournalUnavailable,
        pge.ConnectionFailure: JournalUnavailable, pge.TooManyConnections: JournalUnavailable,
        pge.UndefinedTable: SchemaError, pge.RaiseException: JournalError,
        psycopg.ProgrammingError: JournalError, psycopg.DataError: JournalError,
    }
    for cls, kind in expected.items():
        assert type(pg_error(cls("boom"), "")) is kind, cls


def test_a_lock_held_past_the_wait_is_journal_busy(journal_url: Callable[[], str],
                                                   open_backend: Callable[[], Journal]
                                                   ) -> None:
    holder = open_backend()
    waiter = open_journal(journal_url(), busy_timeout=0.2)
    try:
        with holder.transaction():
            holder.sql.execute("INSERT INTO settings (key, value) VALUES (?, ?)",
                               ("kill_switch", "true"))
            with pytest.raises(JournalBusy):
                waiter.set_setting("kill_switch", False)
        assert waiter.setting("kill_switch") is True
    finally:
        waiter.close()


def test_a_server_that_is_not_there_is_journal_unavailable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(JournalUnavailable) as raised:
        open_journal(f"postgresql://nobody:secret@127.0.0.1:{port}/none")
    assert "secret" not in str(raised.value)


def test_a_database_that_is_not_ours_is_refused(pg: object) -> None:
    url = pg.new_schema()  # type: ignore[attr-defined]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(SchemaError, match="no rollout-watchdog schema version"):
        open_journal(url)
    newer = pg.new_schema()  # type: ignore[attr-defined]
    open_journal(newer).close()
    with psycopg.connect(newer, autocommit=True) as conn:
        conn.execute("UPDATE watchdog_meta SET value = %s WHERE key = 'schema_version'",
                     (str(SCHEMA_VERSION + 1),))
    with pytest.raises(SchemaError, match="newer than this program"):
        open_journal(newer)


def test_a_password_never_shows_in_the_journal_path(pg: object) -> None:
    url = pg.new_schema().replace("postgres@", "postgres:s3cret@")  # type: ignore[attr-defined]
    j = open_journal(url)  # trust authentication: the password is not checked
    try:
        assert "s3cret" not in j.path and "***" in j.path
    finally:
        j.close()


def test_a_sqlite_file_that_is_not_ours_is_refused_as_it_was_found(tmp_path: Path) -> None:
    # opening it once switched it to WAL mode (bytes 18-19 of the header) before refusing
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    before = path.read_bytes()
    assert before[18:20] == b"\x01\x01"  # rollback-journal mode
    with pytest.raises(SchemaError, match="no rollout-watchdog schema version"):
        open_journal(str(path))
    assert path.read_bytes() == before
    assert not (tmp_path / "app.db-wal").exists()
