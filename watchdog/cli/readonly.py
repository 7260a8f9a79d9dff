"""What the read-only commands (``status``, ``history``, ``checkpoint list``, ``baseline
list|show``) stand on: the journal opened read-only, and the config read leniently.

A read-only command never creates a journal (SQLite ``mode=ro``): a journal that does not
exist is said to, with where the path came from. It needs only the journal: a config
whose rules do not parse (an incident is when someone edits them) gives a warning, and
the command works from the journal alone. Without a config it shows the modules the
journal knows, never the embedded demo config's ``checkout``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import click

from watchdog.config.loader import RuleSet
from watchdog.daemon.config import ClockConfig, config_text, load_config
from watchdog.errors import ConfigError, JournalError, JournalUnavailable
from watchdog.journal.schema import APPLICATION_ID, BUSY_TIMEOUT, SCHEMA_VERSION
from watchdog.journal.store import SqliteJournal
from watchdog.settings import load_settings


@dataclass(frozen=True)
class View:
    """What a read-only command knows besides the journal."""

    db: str
    db_from: str  # where the path came from, for "no journal at ..."
    modules: list[str] = field(default_factory=list)
    rules: RuleSet = field(default_factory=lambda: RuleSet(modules={}))
    clock: ClockConfig = field(default_factory=ClockConfig)


def view(config: str | None, db: str | None) -> View:
    """The journal's path and, when the config loads, its modules, rules and clock.

    ``--db`` wins; then the config's ``db``; then ``WATCHDOG_DB``; then the default file.
    A config that does not load is a warning on stderr (its first problems), not an
    error, unless the journal's path cannot be read from it either."""
    if config is None:
        if db is not None:
            return View(db, "--db")
        return View(str(load_settings().db), "WATCHDOG_DB or the default journal file "
                    "(no --config, WATCHDOG_CONFIG or --db given)")
    try:
        loaded = load_config(config)
    except ConfigError as err:
        try:
            path = db or _db_of(config)
        except ConfigError as unreadable:  # not even the journal's path can be read
            for issue in unreadable.issues:
                click.echo(f"error: {issue}", err=True)
            raise SystemExit(2) from None
        for issue in err.issues[:5]:
            click.echo(f"warning: {issue}", err=True)
        click.echo(f"warning: {config} does not load ({len(err.issues)} problem(s)); "
                   "showing the journal alone", err=True)
        return View(path, "--db" if db else f"db in {config}")
    return View(db or loaded.db, "--db" if db else f"{config}", loaded.module_names,
                loaded.rules, loaded.config.clock)


def _db_of(config: str) -> str:
    """The journal path a config names, read without validating anything else."""
    from watchdog.config.yamlload import load_yaml

    file, text = config_text(config)  # a config that cannot be read at all: ConfigError
    data = load_yaml(text, file).data
    named = data.get("db") if isinstance(data, dict) else None
    if not isinstance(named, str) or not named:
        return str(load_settings().db)
    path = Path(named)
    return str(path if path.is_absolute() or "://" in named else Path(file).parent / path)


class ReadOnlyJournal(SqliteJournal):
    """The SQLite journal opened with ``mode=ro``: never created, never migrated; every
    write fails (as a JournalError)."""

    def __init__(self, path: str | Path, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path, self.busy_timeout = str(path), busy_timeout
        self._parsed = {}
        self._written = {}
        uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=busy_timeout,
                                   check_same_thread=False)
            app_id, version = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                               for p in ("application_id", "user_version"))
        except sqlite3.Error as err:
            raise JournalUnavailable(f"cannot open journal {path} read-only: {err}") from err
        if app_id != APPLICATION_ID:
            conn.close()
            raise JournalError(f"{path} is not a rollout-watchdog journal")
        if version != SCHEMA_VERSION:
            conn.close()
            raise JournalError(
                f"journal {path} has schema version {version}; this program reads version "
                f"{SCHEMA_VERSION}: " + ("upgrade rollout-watchdog" if version > SCHEMA_VERSION
                                         else "the daemon migrates it when it starts"))
        self._conn = conn


def open_read_only(where: View) -> SqliteJournal:
    """The journal ``where`` names, read-only; a clear ``error:`` and exit 2 when there is
    none (nothing is created)."""
    from watchdog.journal import is_postgres, open_journal

    try:
        if is_postgres(where.db):
            return open_journal(where.db)  # type: ignore[return-value]
        path = where.db.removeprefix("sqlite:///")
        if not Path(path).is_file():
            raise JournalUnavailable(
                f"no journal at {path} (from {where.db_from}): nothing has been journaled "
                "there. Give the daemon's config (--config FILE or WATCHDOG_CONFIG) or its "
                "journal (--db FILE)")
        return ReadOnlyJournal(path)
    except JournalError as err:
        click.echo(f"error: {err}", err=True)
        raise SystemExit(2) from None
