"""The PostgreSQL journal (psycopg 3), a backend of :class:`watchdog.journal.base.Journal`
with SQLite's semantics: decisions append-only, a decision and its checkpoint in one
transaction, compare-and-swap of checkpoints and fenced writes (both under a per-module
transaction advisory lock, so concurrent writers of one module queue up), leases whose
epoch only grows. Library errors become ours in :func:`watchdog.journal.pg_schema.pg_error`.

One connection per object, in autocommit mode outside :meth:`transaction`; psycopg
serialises its use across threads, but a transaction belongs to one thread: give another
thread its own (:meth:`reopen`). ``busy_timeout`` is PostgreSQL's ``lock_timeout``, and
also its ``idle_in_transaction_session_timeout``: a process paused (SIGSTOP, a VM frozen)
inside one of our transactions would hold its row locks (a lease's, a module's) for as
long as it stays paused, so the server ends its session once it has been idle in a
transaction longer than others wait for a lock; our transactions never wait on anything
but the database. A connection found closed (that, or a server restart) is replaced at
the next call outside a transaction; the call that found it raises JournalUnavailable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from watchdog.baseline import Baseline
from watchdog.errors import CheckpointConflict, JournalError
from watchdog.journal import records
from watchdog.journal.pg_leases import PgLeases
from watchdog.journal.pg_schema import migrate, pg_error
from watchdog.journal.pg_store import PgReads
from watchdog.journal.records import Expected, Lease
from watchdog.journal.sqlite_extra import check_modules
from watchdog.judge.alerts import INACTIVE, AlertPhase, AlertState
from watchdog.model import Decision
from watchdog.rollout.state import Checkpoint

BUSY_TIMEOUT = 30.0


def redact(url: str) -> str:
    """``url`` without its password."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


class QmarkConnection:
    """psycopg's connection taking the ``?`` placeholders of the portable SQL (our SQL
    never has a literal ``?`` or ``%``); its errors become ours. It follows the journal's
    connection when that one is replaced (see :meth:`PostgresJournal._connect`)."""

    def __init__(self, journal: PostgresJournal) -> None:
        self._journal = journal

    @property
    def _conn(self) -> psycopg.Connection[Any]:
        return self._journal._conn

    @property
    def in_transaction(self) -> bool:
        return self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any]:
        try:
            return self._conn.execute(sql.replace("?", "%s").encode(), tuple(parameters))
        except psycopg.Error as err:
            raise pg_error(err, "journal") from err


class PostgresJournal(PgLeases, PgReads):
    def __init__(self, url: str, busy_timeout: float | None = None) -> None:
        self.url = url
        self.path = redact(url)
        self.busy_timeout = BUSY_TIMEOUT if busy_timeout is None else busy_timeout
        self._depth = 0  # inside transaction(): never replace the connection
        self._c = self._connect(migrating=True)

    def _connect(self, migrating: bool = False) -> psycopg.Connection[Any]:
        try:
            conn: psycopg.Connection[Any] = psycopg.connect(self.url, autocommit=True,
                                                             connect_timeout=10)
        except psycopg.Error as err:
            raise pg_error(err, f"cannot open journal {self.path}") from err
        try:
            ms = max(1, round(self.busy_timeout * 1000))
            conn.execute(f"SET lock_timeout = {ms}".encode())
            conn.execute(f"SET idle_in_transaction_session_timeout = {max(ms, 250)}".encode())
            if migrating:
                migrate(conn, self.path)
        except psycopg.Error as err:
            conn.close()
            raise pg_error(err, f"cannot open journal {self.path}") from err
        except BaseException:
            conn.close()
            raise
        return conn

    @property
    def _conn(self) -> psycopg.Connection[Any]:
        if self._c.closed and self._depth == 0:
            self._c = self._connect()
        return self._c

    def close(self) -> None:
        self._c.close()

    def reopen(self) -> PostgresJournal:
        return PostgresJournal(self.url, self.busy_timeout)

    @property
    def sql(self) -> QmarkConnection:
        return QmarkConnection(self)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        conn = self._conn
        self._depth += 1
        try:
            with conn.transaction():
                yield
        except psycopg.Error as err:
            raise pg_error(err, f"journal {self.path}") from err
        finally:
            self._depth -= 1

    def _lock_module(self, module: str) -> None:
        """Inside a transaction: writers of ``module`` queue here until it ends."""
        self._conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                           (f"module:{module}",))

    # decisions -------------------------------------------------------------------------

    def record(self, decisions: list[Decision], checkpoint: Checkpoint | None,
               journaled_at: float, alert_summaries: Mapping[str, str] | None = None,
               previous_alerts: Mapping[str, AlertState] | None = None, *,
               expect: Expected | None = None, fence: Lease | None = None) -> list[int]:
        modules = {d.module for d in decisions} | (
            {checkpoint.module} if checkpoint is not None else set())
        if fence is not None:
            check_modules(fence, modules)
        with self.transaction():
            for module in sorted(modules):
                self._lock_module(module)
            if fence is not None:
                self._check_fence(fence, share=True)
            if expect is not None and checkpoint is not None:
                current = self.checkpoint(checkpoint.module)
                if current != expect.checkpoint:
                    raise CheckpointConflict(
                        f"module {checkpoint.module}: the checkpoint changed since it was "
                        "read; nothing written", current)
            ids = [self._insert(d, journaled_at) for d in decisions]
            if checkpoint is not None:
                self._upsert_checkpoint(checkpoint, journaled_at)
                if previous_alerts is not None:
                    self._alert_changes(checkpoint.module, previous_alerts, checkpoint.alerts,
                                        alert_summaries or {}, journaled_at)
        return ids

    def _insert(self, d: Decision, journaled_at: float) -> int:
        row = self._conn.execute(
            f"INSERT INTO decisions ({records.DECISION_COLUMNS}) VALUES"
            " (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id".encode(),
            records.decision_values(d, journaled_at)).fetchone()
        assert row is not None
        return int(row[0])

    def mark_applied(self, decision_id: int, at: float, error: str | None = None) -> None:
        if error is None:
            self._exec("UPDATE decisions SET applied_at=%s, apply_error=NULL WHERE id=%s",
                       (at, decision_id))
        else:
            self._exec("UPDATE decisions SET apply_error=%s WHERE id=%s", (error, decision_id))

    # checkpoints -----------------------------------------------------------------------

    def _upsert_checkpoint(self, cp: Checkpoint, at: float) -> None:
        self._conn.execute(
            "INSERT INTO checkpoints (module, phase, stage, traffic_percent, updated_at, data)"
            " VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (module) DO UPDATE SET"
            " phase=excluded.phase, stage=excluded.stage,"
            " traffic_percent=excluded.traffic_percent, updated_at=excluded.updated_at,"
            " data=excluded.data",
            (cp.module, cp.phase.value, cp.stage, cp.traffic_percent, at,
             json.dumps(cp.to_dict())))

    def save_checkpoint(self, cp: Checkpoint, at: float, *,
                        fence: Lease | None = None) -> None:
        self.record([], cp, at, fence=fence)

    def _alert_changes(self, module: str, before: Mapping[str, AlertState],
                       after: Mapping[str, AlertState], summaries: Mapping[str, str],
                       at: float) -> None:
        for rule in sorted({*before, *after}):
            old, new = before.get(rule, INACTIVE), after.get(rule, INACTIVE)
            if old == new:
                continue
            summary = summaries.get(rule, "")
            if old.phase is AlertPhase.INACTIVE and new.phase is not AlertPhase.INACTIVE:
                self._conn.execute(
                    "INSERT INTO alerts (module, rule, state, active_at, fired_at, summary)"
                    " VALUES (%s,%s,%s,%s,%s,%s)",
                    (module, rule, new.phase.value, new.active_at, new.fired_at, summary))
            elif new.phase is AlertPhase.FIRING and old.phase is AlertPhase.PENDING:
                self._conn.execute(
                    "UPDATE alerts SET state='firing', fired_at=%s, summary=%s WHERE"
                    " module=%s AND rule=%s AND active_at=%s",
                    (new.fired_at, summary, module, rule, old.active_at))
            elif new.phase is AlertPhase.INACTIVE and old.phase is not AlertPhase.INACTIVE:
                ended = new.resolved_at if (old.phase is AlertPhase.FIRING
                                            and new.resolved_at is not None) else at
                self._conn.execute(
                    "UPDATE alerts SET state='resolved', resolved_at=%s WHERE module=%s AND"
                    " rule=%s AND active_at=%s", (ended, module, rule, old.active_at))

    # baselines -------------------------------------------------------------------------

    def save_baseline(self, b: Baseline) -> Baseline:
        with self.transaction():
            row = self._conn.execute(
                f"INSERT INTO baselines ({records.BASELINE_COLUMNS}) VALUES"
                f" ({','.join(['%s'] * 18)}) RETURNING id".encode(),
                records.baseline_values(b)).fetchone()
        assert row is not None
        found = self.baseline(int(row[0]))
        assert found is not None
        return found

    def pin_baseline(self, baseline_id: int) -> Baseline:
        found = self.baseline(baseline_id)
        if found is None:
            raise JournalError(f"no baseline with id {baseline_id}")
        with self.transaction():
            self._conn.execute("UPDATE baselines SET pinned=0 WHERE module=%s AND metric=%s",
                               (found.module, found.metric))
            self._conn.execute("UPDATE baselines SET pinned=1 WHERE id=%s", (baseline_id,))
        pinned = self.baseline(baseline_id)
        assert pinned is not None
        return pinned

    # settings and snapshots ------------------------------------------------------------

    def set_setting(self, key: str, value: Any) -> None:
        self._exec("INSERT INTO settings (key, value) VALUES (%s, %s) ON CONFLICT (key)"
                   " DO UPDATE SET value=excluded.value", (key, json.dumps(value)))

    def save_snapshot(self, name: str, created_at: float, actor: str, reason: str,
                      data: Mapping[str, Any]) -> None:
        self._exec("INSERT INTO snapshots (name, created_at, actor, reason, data) VALUES"
                   " (%s,%s,%s,%s,%s)", (name, created_at, actor, reason,
                                          json.dumps(dict(data))))

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> psycopg.Cursor[Any]:
        try:
            return self._conn.execute(sql.encode(), args)
        except psycopg.Error as err:
            raise pg_error(err, f"journal {self.path}") from err

    def _dicts(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        try:
            with self._conn.cursor(row_factory=dict_row) as cur:
                return cur.execute(sql.encode(), args).fetchall()
        except psycopg.Error as err:
            raise pg_error(err, f"journal {self.path}") from err
