"""Opening the database: WAL, a schema version, and forward migrations.

Each migration runs once, in order, inside one transaction with the version bump, so a
crash mid-migration leaves the previous version intact. A database whose version is
newer than this program knows is refused rather than guessed at.

The daemon speaks sqlite3 directly (:func:`connect`): sqlite-utils, with what it imports
(python-dateutil, pluggy, its plugins' entry points), costs the process about 2.5 MiB
resident for nothing it uses. :func:`open_database` wraps the same connection in a
``sqlite_utils.Database`` for the tools and tests that want its API.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.errors import JournalError, SchemaError

if TYPE_CHECKING:
    import sqlite_utils

APPLICATION_ID = 0x52575444  # "RWTD"


def _v1(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE decisions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        module TEXT NOT NULL, at REAL NOT NULL, action TEXT NOT NULL,
        traffic_percent REAL NOT NULL, from_stage INTEGER, to_stage INTEGER,
        kill_switch INTEGER NOT NULL DEFAULT 0, actor TEXT NOT NULL,
        reasons TEXT NOT NULL, evidence TEXT NOT NULL,
        journaled_at REAL NOT NULL, applied_at REAL, apply_error TEXT)""")
    db.execute("CREATE INDEX decisions_module_at ON decisions(module, at)")
    db.execute("""CREATE TRIGGER decisions_append_only BEFORE DELETE ON decisions
        BEGIN SELECT RAISE(ABORT, 'decisions are append-only'); END""")
    db.execute("""CREATE TABLE checkpoints (
        module TEXT PRIMARY KEY, phase TEXT NOT NULL, stage INTEGER NOT NULL,
        traffic_percent REAL NOT NULL, updated_at REAL NOT NULL, data TEXT NOT NULL)""")
    db.execute("""CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, module TEXT NOT NULL, rule TEXT NOT NULL,
        state TEXT NOT NULL, active_at REAL NOT NULL, fired_at REAL, resolved_at REAL,
        summary TEXT NOT NULL DEFAULT '')""")
    db.execute("CREATE INDEX alerts_module_rule ON alerts(module, rule, active_at)")
    db.execute("""CREATE TABLE baselines (
        id INTEGER PRIMARY KEY AUTOINCREMENT, module TEXT NOT NULL, metric TEXT NOT NULL,
        window_from REAL NOT NULL, window_to REAL NOT NULL, source TEXT NOT NULL,
        captured_at REAL NOT NULL, count INTEGER NOT NULL, mean REAL NOT NULL,
        stddev REAL NOT NULL, p50 REAL NOT NULL, p90 REAL NOT NULL, p95 REAL NOT NULL,
        p99 REAL NOT NULL, min REAL NOT NULL, max REAL NOT NULL, samples TEXT NOT NULL,
        pinned INTEGER NOT NULL DEFAULT 0, expires_at REAL)""")
    db.execute("CREATE INDEX baselines_module_metric ON baselines(module, metric, captured_at)")
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _v2(db: sqlite3.Connection) -> None:
    db.execute("""CREATE TABLE snapshots (
        name TEXT PRIMARY KEY, created_at REAL NOT NULL, actor TEXT NOT NULL,
        reason TEXT NOT NULL, data TEXT NOT NULL)""")


def _v3(db: sqlite3.Connection) -> None:
    """The notification outbox, and what Slack returned for each message (threads, ts)."""
    db.execute("""CREATE TABLE notification_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, notifier TEXT NOT NULL, key TEXT NOT NULL,
        module TEXT NOT NULL, kind TEXT NOT NULL, severity TEXT NOT NULL,
        channel TEXT NOT NULL, identity TEXT NOT NULL, payload TEXT NOT NULL,
        state TEXT NOT NULL, at REAL NOT NULL, enqueued_at REAL NOT NULL,
        episode_start REAL, repeat INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0, refusals INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT, sent_at REAL, UNIQUE (notifier, key))""")
    db.execute("CREATE INDEX notification_outbox_pending"
               " ON notification_outbox(notifier, state, channel, id)")
    db.execute("CREATE INDEX notification_outbox_identity"
               " ON notification_outbox(notifier, identity, id)")
    db.execute("""CREATE TABLE slack_threads (
        id INTEGER PRIMARY KEY AUTOINCREMENT, module TEXT NOT NULL, channel TEXT NOT NULL,
        channel_id TEXT NOT NULL, ts TEXT NOT NULL, started_at REAL NOT NULL,
        opened_by TEXT NOT NULL, closed_at REAL)""")
    db.execute("CREATE UNIQUE INDEX slack_threads_open ON slack_threads(module, channel)"
               " WHERE closed_at IS NULL")
    db.execute("""CREATE TABLE slack_messages (
        key TEXT NOT NULL, step TEXT NOT NULL, channel_id TEXT NOT NULL, ts TEXT NOT NULL,
        at REAL NOT NULL, PRIMARY KEY (key, step))""")


def _v4(db: sqlite3.Connection) -> None:
    """Control requests the HTTP API received, refused ones included (watchdog.api.audit)."""
    db.execute("""CREATE TABLE api_audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, client TEXT NOT NULL,
        method TEXT NOT NULL, path TEXT NOT NULL, action TEXT NOT NULL, module TEXT,
        status INTEGER NOT NULL, outcome TEXT NOT NULL)""")
    db.execute("CREATE INDEX api_audit_at ON api_audit(at)")
    db.execute("""CREATE TRIGGER api_audit_append_only BEFORE DELETE ON api_audit
        BEGIN SELECT RAISE(ABORT, 'the API audit is append-only'); END""")


def _v5(db: sqlite3.Connection) -> None:
    """Refused API requests are aggregated, one row per client, route and reason per time
    bucket (watchdog.api.audit): how many requests a row stands for, and the last one."""
    db.execute("ALTER TABLE api_audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE api_audit ADD COLUMN last_at REAL")
    db.execute("UPDATE api_audit SET last_at = at")


def _v6(db: sqlite3.Connection) -> None:
    """Leases: which instance guards each module, until when, and the fencing epoch
    (one more at every change of holder; the row is never deleted, so it never goes back)."""
    db.execute("""CREATE TABLE leases (
        module TEXT PRIMARY KEY, holder TEXT NOT NULL, epoch INTEGER NOT NULL,
        expires_at REAL NOT NULL, acquired_at REAL NOT NULL)""")
    db.execute("""CREATE TRIGGER leases_keep BEFORE DELETE ON leases
        BEGIN SELECT RAISE(ABORT, 'lease rows keep their epoch: release, never delete'); END""")
    db.execute("""CREATE TRIGGER leases_epoch_monotonic BEFORE UPDATE OF epoch ON leases
        WHEN NEW.epoch < OLD.epoch
        BEGIN SELECT RAISE(ABORT, 'a lease epoch never decreases'); END""")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6]
SCHEMA_VERSION = len(MIGRATIONS)


BUSY_TIMEOUT = 30.0  # seconds a connection waits for another writer's lock, by default


def set_busy_timeout(conn: sqlite3.Connection, seconds: float) -> None:
    """How long a write on ``conn`` waits for another connection's lock before it fails
    with "database is locked". The daemon's tick uses a short one (a fraction of the
    module's interval, see :func:`watchdog.engine.journal_wait`) so that a journal held
    by another process fails the write in time for the rollback to go ahead anyway."""
    conn.execute(f"PRAGMA busy_timeout = {max(0, round(seconds * 1000))}")


def open_database(path: str | Path, migrate_to: int = SCHEMA_VERSION,
                  busy_timeout: float = BUSY_TIMEOUT) -> sqlite_utils.Database:
    """:func:`connect`, wrapped in a ``sqlite_utils.Database`` (imported here, not by the
    daemon)."""
    import sqlite_utils

    return sqlite_utils.Database(connect(path, migrate_to, busy_timeout))


def connect(path: str | Path, migrate_to: int = SCHEMA_VERSION,
            busy_timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the journal at ``path`` (":memory:" allowed).

    Opening and migrating wait up to :data:`BUSY_TIMEOUT` for a lock; ``busy_timeout`` is
    what the connection waits afterwards. It autocommits (transactions are explicit), may
    be used from any thread, and has ``recursive_triggers`` on, as sqlite-utils set it."""
    try:
        if str(path) == ":memory:":
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT,
                                   check_same_thread=False)
        try:
            version = _ours(conn, path)
        except SchemaError:
            conn.close()
            raise
        # only a database that is ours (or empty) is switched to WAL: a foreign one is
        # refused as it was found (WAL mode is written into the file's header)
        if str(path) != ":memory:":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA recursive_triggers=on")
        for number in range(version + 1, migrate_to + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS[number - 1](conn)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if busy_timeout != BUSY_TIMEOUT:
            set_busy_timeout(conn, busy_timeout)
        return conn
    except sqlite3.Error as err:
        raise JournalError(f"cannot open journal {path}: {err}") from err


def _ours(conn: sqlite3.Connection, path: str | Path) -> int:
    """The schema version of a database that is a rollout-watchdog journal (0: empty, a
    new one); SchemaError for anything else. Reads only."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if app_id not in (0, APPLICATION_ID):
        raise SchemaError(f"{path} is not a rollout-watchdog journal "
                          f"(application_id {app_id:#x})")
    if app_id == 0 and version == 0 and conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").fetchone():
        raise SchemaError(f"{path} holds tables but no rollout-watchdog schema version")
    if app_id == 0 and version != 0:
        # every migration stamps our application_id with the version: this is not ours
        raise SchemaError(f"{path} is not a rollout-watchdog journal (schema version "
                          f"{version} without the rollout-watchdog application_id)")
    if version > SCHEMA_VERSION:
        raise SchemaError(f"{path} has schema version {version}, newer than this program "
                          f"knows ({SCHEMA_VERSION}); upgrade rollout-watchdog")
    return version


def schema_version(db: sqlite_utils.Database | sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])
