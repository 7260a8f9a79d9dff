"""Copying a journal with its history to another backend (``rollout-watchdog journal
migrate``): every table row for row, ids kept (decisions keep their ids and order), in one
transaction of the target, from one consistent read of the source.

The two schemas have the same tables and columns (SQLite version 6, PostgreSQL version 1
and later), so a copy needs no conversion. The target must be empty unless ``force``:
then its rows are replaced (the append-only guards are lifted for that transaction only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from watchdog.errors import JournalError
from watchdog.journal import is_postgres, open_journal
from watchdog.journal.base import Journal

#: every table, in an order that keeps references valid, with the key that orders it
TABLES: tuple[tuple[str, str], ...] = (
    ("decisions", "id"), ("checkpoints", "module"), ("alerts", "id"), ("baselines", "id"),
    ("settings", "key"), ("snapshots", "name"), ("notification_outbox", "id"),
    ("slack_threads", "id"), ("slack_messages", "key, step"), ("api_audit", "id"),
    ("leases", "module"))
IDENTITY = ("decisions", "alerts", "baselines", "notification_outbox", "slack_threads",
            "api_audit")


class TargetNotEmpty(JournalError):
    """The target journal holds rows and ``force`` was not given."""


@dataclass
class Copied:
    rows: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        return ", ".join(f"{n} {table}" for table, n in self.rows.items())


def counts(journal: Journal) -> dict[str, int]:
    return {table: int(journal.sql.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            for table, _ in TABLES}


def migrate(source_url: str, target_url: str, force: bool = False) -> Copied:
    """Copy the journal at ``source_url`` into ``target_url`` (created and migrated if
    needed). Raises TargetNotEmpty, JournalError (nothing written to the target then)."""
    if str(source_url) == str(target_url):
        raise JournalError("the source and the target are the same journal")
    if not is_postgres(source_url):
        path = str(source_url).removeprefix("sqlite:///")
        if path != ":memory:" and not Path(path).is_file():
            raise JournalError(f"no journal at {path} (the source must exist)")
    source = open_journal(source_url)
    try:
        target = open_journal(target_url)
        try:
            return _copy(source, target, is_postgres(source_url), is_postgres(target_url),
                         force)
        finally:
            target.close()
    finally:
        source.close()


def _copy(source: Journal, target: Journal, source_pg: bool, target_pg: bool,
          force: bool) -> Copied:
    found = {t: n for t, n in counts(target).items() if n}
    if found and not force:
        raise TargetNotEmpty(
            f"the target journal {target.path} is not empty ("
            + ", ".join(f"{n} {t}" for t, n in found.items())
            + "); use --force to replace its contents")
    copied = Copied()
    with source.transaction():
        if source_pg:  # one snapshot of every table
            source.sql.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with target.transaction():
            if found:
                _clear(target, target_pg)
            for table, key in TABLES:
                copied.rows[table] = _table(source, target, table, key)
            if target_pg:
                for table in IDENTITY:
                    target.sql.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)")
    return copied


def _table(source: Journal, target: Journal, table: str, key: str) -> int:
    cur = source.sql.execute(f"SELECT * FROM {table} ORDER BY {key}")
    names = [c[0] for c in cur.description]
    columns = ", ".join(f'"{n}"' for n in names)
    insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(names))})"
    n = 0
    for row in cur.fetchall():
        target.sql.execute(insert, tuple(row))
        n += 1
    return n


def _clear(target: Journal, target_pg: bool) -> None:
    names = ", ".join(t for t, _ in TABLES)
    if target_pg:  # TRUNCATE does not fire the row triggers that keep rows
        target.sql.execute(f"TRUNCATE {names} RESTART IDENTITY")
        return
    triggers = target.sql.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for name, _ in triggers:
        target.sql.execute(f"DROP TRIGGER {name}")
    for table, _ in TABLES:
        target.sql.execute(f"DELETE FROM {table}")
    target.sql.execute("DELETE FROM sqlite_sequence")
    for _, sql in triggers:
        target.sql.execute(sql)
