"""The SQLite journal (the embedded default backend of :class:`watchdog.journal.base.
Journal`). Decisions are append-only; checkpoints are upserted.

A decision and the checkpoint it produced are written in one transaction, so a reader
(or a restart) never sees one without the other. Library errors become ours in one place,
:func:`sqlite_error`.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from watchdog.errors import CheckpointConflict
from watchdog.journal import records
from watchdog.journal.gate import write_gate
from watchdog.journal.records import Expected, JournaledDecision, Lease
from watchdog.journal.schema import BUSY_TIMEOUT, connect, set_busy_timeout
from watchdog.journal.sqlite_baselines import SqliteBaselines
from watchdog.journal.sqlite_extra import SqliteExtras, check_modules
from watchdog.journal.sqlite_mapped import MappedConnection, _mapped, sqlite_error
from watchdog.judge.alerts import INACTIVE, AlertPhase, AlertState
from watchdog.model import Decision
from watchdog.rollout.state import Checkpoint

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["Journal", "JournaledDecision", "MappedConnection", "SqliteJournal", "sqlite_error"]


class SqliteJournal(SqliteBaselines):
    def __init__(self, path: str | Path, busy_timeout: float = BUSY_TIMEOUT) -> None:
        """``busy_timeout``: seconds a write waits for another writer's lock, then fails."""
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection = connect(path, busy_timeout=busy_timeout)
        # per module, the checkpoint's JSON as last read and what it parsed to: the engine
        # reads the checkpoint several times a tick, and it mostly has not changed
        self._parsed: dict[str, tuple[str, Checkpoint]] = {}
        # per module, the JSON last written and the plain values it was made from
        self._written: dict[str, tuple[str, dict[str, Any]]] = {}

    @functools.cached_property
    def db(self) -> sqlite_utils.Database:
        """The connection as a ``sqlite_utils.Database``, for tools and tests: the journal
        itself uses sqlite3 (sqlite-utils is imported on first use, never by the daemon)."""
        import sqlite_utils

        return sqlite_utils.Database(self._conn)

    def close(self) -> None:
        self._conn.close()

    def reopen(self) -> SqliteJournal:
        if self.path == ":memory:":
            return self  # a second connection would be another, empty database
        return SqliteJournal(self.path, self.busy_timeout)

    @property
    def sql(self) -> MappedConnection:
        return MappedConnection(self._conn, self.path, self.busy_timeout)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Queued behind this process's other writers of the file (:mod:`.gate`), then
        SQLite's write lock, within the busy timeout in all."""
        with write_gate(self.path, self.busy_timeout) as left:
            try:
                self._begin(left)
            except sqlite3.Error as err:
                raise sqlite_error(err, f"journal {self.path}") from err
            try:
                yield
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as err:
                raise sqlite_error(err, f"journal {self.path}: commit failed") from err

    def _begin(self, left: float) -> None:
        if left >= self.busy_timeout - 0.001:
            self._conn.execute("BEGIN IMMEDIATE")
            return
        set_busy_timeout(self._conn, left)  # the time the gate took counts
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        finally:
            set_busy_timeout(self._conn, self.busy_timeout)

    # decisions -------------------------------------------------------------------------

    def record(self, decisions: list[Decision], checkpoint: Checkpoint | None,
               journaled_at: float, alert_summaries: Mapping[str, str] | None = None,
               previous_alerts: Mapping[str, AlertState] | None = None, *,
               expect: Expected | None = None, fence: Lease | None = None) -> list[int]:
        """Append decisions and upsert the checkpoint (and alert changes) atomically."""
        if fence is not None:
            check_modules(fence, {d.module for d in decisions} | (
                {checkpoint.module} if checkpoint is not None else set()))
        try:
            with self.transaction():
                if fence is not None:
                    self._check_fence(fence)
                if expect is not None and checkpoint is not None:
                    current = self.checkpoint(checkpoint.module)
                    if current != expect.checkpoint:
                        raise CheckpointConflict(
                            f"module {checkpoint.module}: the checkpoint changed since it "
                            "was read; nothing written", current)
                ids = [self._insert(d, journaled_at) for d in decisions]
                if checkpoint is not None:
                    self._upsert_checkpoint(checkpoint, journaled_at)
                    if previous_alerts is not None:
                        self._alert_changes(checkpoint.module, previous_alerts,
                                            checkpoint.alerts, alert_summaries or {},
                                            journaled_at)
            return ids
        except sqlite3.Error as err:
            raise sqlite_error(err, f"journal {self.path}: cannot record") from err

    def _insert(self, d: Decision, journaled_at: float) -> int:
        cur = self._conn.execute(f"INSERT INTO decisions ({records.DECISION_COLUMNS})"
                                 " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                                 records.decision_values(d, journaled_at))
        return int(cur.lastrowid or 0)

    @_mapped
    def mark_applied(self, decision_id: int, at: float, error: str | None = None) -> None:
        with self.transaction():
            self._mark_applied(decision_id, at, error)

    def _mark_applied(self, decision_id: int, at: float, error: str | None) -> None:
        if error is None:
            self._conn.execute("UPDATE decisions SET applied_at=?, apply_error=NULL "
                               "WHERE id=?", (at, decision_id))
        else:
            self._conn.execute("UPDATE decisions SET apply_error=? WHERE id=?",
                               (error, decision_id))

    @_mapped
    def decisions(self, module: str | None = None, since: float | None = None,
                  until: float | None = None, limit: int | None = None,
                  unapplied_only: bool = False) -> list[JournaledDecision]:
        where: list[str] = []
        args: list[Any] = []
        for cond, value in (("module = ?", module), ("at >= ?", since), ("at <= ?", until)):
            if value is not None:
                where.append(cond)
                args.append(value)
        if unapplied_only:
            where.append("applied_at IS NULL")
        sql = "SELECT * FROM decisions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace(' ORDER BY id', ' ORDER BY id DESC')} LIMIT ?)" \
                  " ORDER BY id"
            args.append(limit)
        return [records.decision_row(row) for row in self._rows(sql, tuple(args))]

    def last_decision(self, module: str) -> JournaledDecision | None:
        found = self.decisions(module=module, limit=1)
        return found[0] if found else None

    # checkpoints -----------------------------------------------------------------------

    def _upsert_checkpoint(self, cp: Checkpoint, at: float) -> None:
        data = cp.to_dict()
        text = json.dumps(data)
        self._conn.execute(
            "INSERT INTO checkpoints (module, phase, stage, traffic_percent, updated_at, data)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(module) DO UPDATE SET phase=excluded.phase,"
            " stage=excluded.stage, traffic_percent=excluded.traffic_percent,"
            " updated_at=excluded.updated_at, data=excluded.data",
            (cp.module, cp.phase.value, cp.stage, cp.traffic_percent, at, text))
        self._written[cp.module] = (text, data)

    def save_checkpoint(self, cp: Checkpoint, at: float, *,
                        fence: Lease | None = None) -> None:
        self.record([], cp, at, fence=fence)

    @_mapped
    def checkpoint(self, module: str) -> Checkpoint | None:
        row = self._conn.execute("SELECT data FROM checkpoints WHERE module=?",
                                 (module,)).fetchone()
        if row is None:
            return None
        text: str = row[0]
        parsed = self._parsed.get(module)
        if parsed is not None and parsed[0] == text:
            return parsed[1]
        # text this journal wrote is parsed from the values it was made of: the same
        # (JSON round-trips them exactly), without decoding it; a write that was rolled
        # back left other text, which is decoded
        written = self._written.pop(module, None)
        data = written[1] if written is not None and written[0] == text else json.loads(text)
        cp = Checkpoint.from_dict(data)
        self._parsed[module] = (text, cp)
        return cp

    @_mapped
    def checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint.from_dict(json.loads(r["data"]))
                for r in self._rows("SELECT data FROM checkpoints ORDER BY module")]

    @_mapped
    def checkpoint_updated_at(self, module: str) -> float | None:
        rows = list(self._rows("SELECT updated_at FROM checkpoints WHERE module=?", (module,)))
        return float(rows[0]["updated_at"]) if rows else None

    # alerts ----------------------------------------------------------------------------

    def _alert_changes(self, module: str, before: Mapping[str, AlertState],
                       after: Mapping[str, AlertState], summaries: Mapping[str, str],
                       at: float) -> None:
        # a rule gone from ``after`` (states reset on resume, rule removed) is inactive now
        for rule in sorted({*before, *after}):
            old = before.get(rule, INACTIVE)
            new = after.get(rule, INACTIVE)
            if old == new:
                continue
            summary = summaries.get(rule, "")
            if old.phase is AlertPhase.INACTIVE and new.phase is not AlertPhase.INACTIVE:
                self._conn.execute(
                    "INSERT INTO alerts (module, rule, state, active_at, fired_at, summary)"
                    " VALUES (?,?,?,?,?,?)",
                    (module, rule, new.phase.value, new.active_at, new.fired_at, summary))
            elif new.phase is AlertPhase.FIRING and old.phase is AlertPhase.PENDING:
                self._conn.execute(
                    "UPDATE alerts SET state='firing', fired_at=?, summary=? WHERE module=? AND"
                    " rule=? AND active_at=?", (new.fired_at, summary, module, rule,
                                                old.active_at))
            elif new.phase is AlertPhase.INACTIVE and old.phase is not AlertPhase.INACTIVE:
                # only a firing alert carries its own resolution time; one that was pending
                # (or dropped) ends now
                ended = new.resolved_at if (old.phase is AlertPhase.FIRING
                                            and new.resolved_at is not None) else at
                self._conn.execute(
                    "UPDATE alerts SET state='resolved', resolved_at=? WHERE module=? AND"
                    " rule=? AND active_at=?", (ended, module, rule, old.active_at))

    @_mapped
    def alerts(self, module: str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
        where = (["module = ?"] if module is not None else []) + (
            ["state != 'resolved'"] if open_only else [])
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        return list(self._rows(sql + " ORDER BY id", (module,) if module is not None else ()))

    # settings --------------------------------------------------------------------------

    @_mapped
    def set_setting(self, key: str, value: Any) -> None:
        with self.transaction():
            self._conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)"
                               " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                               (key, json.dumps(value)))

    @_mapped
    def setting(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else default


for _name in ("decision_counts", "unapplied_count", "modules", "save_snapshot", "snapshots",
              "api_audit", "acquire_lease", "renew_lease", "renew_leases", "release_lease",
              "leases"):
    setattr(SqliteJournal, _name, _mapped(getattr(SqliteExtras, _name)))

Journal = SqliteJournal  # the name every caller imports: the SQLite backend


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)
