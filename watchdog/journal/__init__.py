"""The journal: decisions (append-only), checkpoints, alert states, baselines, leases.

:func:`open_journal` opens a backend of the :class:`watchdog.journal.base.Journal`
Protocol from a path or URL. The PostgreSQL driver is imported only for a PostgreSQL URL,
so the SQLite daemon does not load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from watchdog.journal.base import Journal

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url_or_path: str | Path) -> bool:
    return str(url_or_path).startswith(POSTGRES_SCHEMES)


def open_journal(url_or_path: str | Path, busy_timeout: float | None = None) -> Journal:
    """``postgresql://...`` (or ``postgres://``): PostgreSQL; ``sqlite:///REL/PATH``,
    ``sqlite:////ABS/PATH``, ``sqlite:///:memory:`` or a plain path: SQLite.

    ``busy_timeout``: seconds a write waits for another writer's lock (default: the
    backend's). Raises ValueError for another scheme, JournalError when it cannot open."""
    text = str(url_or_path)
    if is_postgres(text):
        from watchdog.journal.postgres import PostgresJournal

        return PostgresJournal(text, busy_timeout=busy_timeout)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///"):] or ":memory:"  # sqlite:////abs, sqlite:///rel
    elif "://" in text:
        raise ValueError(f"unknown journal URL scheme in {text!r}: use a path, "
                         "sqlite:///PATH or postgresql://...")
    from watchdog.journal.store import SqliteJournal

    if busy_timeout is None:
        return SqliteJournal(text)
    return SqliteJournal(text, busy_timeout=busy_timeout)


def _conforms() -> None:  # pragma: no cover - for mypy: both backends are Journals
    from watchdog.journal.postgres import PostgresJournal
    from watchdog.journal.store import SqliteJournal

    backends: list[type[Journal]] = [SqliteJournal, PostgresJournal]
    del backends
