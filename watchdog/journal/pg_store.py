"""The PostgreSQL journal's reads (a mixin of
:class:`watchdog.journal.postgres.PostgresJournal`): the same results as SQLite's."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from watchdog.baseline import Baseline
from watchdog.journal import records
from watchdog.journal.records import JournaledDecision, Lease
from watchdog.rollout.state import Checkpoint


class PgReads:
    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> psycopg.Cursor[Any]:
        raise NotImplementedError

    def _dicts(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        raise NotImplementedError

    def decisions(self, module: str | None = None, since: float | None = None,
                  until: float | None = None, limit: int | None = None,
                  unapplied_only: bool = False) -> list[JournaledDecision]:
        where: list[str] = []
        args: list[Any] = []
        for cond, value in (("module = %s", module), ("at >= %s", since),
                            ("at <= %s", until)):
            if value is not None:
                where.append(cond)
                args.append(value)
        if unapplied_only:
            where.append("applied_at IS NULL")
        sql = "SELECT * FROM decisions" + (" WHERE " + " AND ".join(where) if where else "")
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY id DESC LIMIT %s) AS newest"
            args.append(limit)
        return [records.decision_row(r) for r in self._dicts(sql + " ORDER BY id",
                                                             tuple(args))]

    def last_decision(self, module: str) -> JournaledDecision | None:
        found = self.decisions(module=module, limit=1)
        return found[0] if found else None

    def decision_counts(self) -> dict[tuple[str, str], int]:
        return {(m, a): int(n) for m, a, n in self._exec(
            "SELECT module, action, count(*) FROM decisions GROUP BY module, action")}

    def unapplied_count(self) -> int:
        row = self._exec("SELECT count(*) FROM decisions WHERE applied_at IS NULL"
                         " AND action != 'hold'").fetchone()
        return int(row[0]) if row else 0

    def checkpoint(self, module: str) -> Checkpoint | None:
        row = self._exec("SELECT data FROM checkpoints WHERE module=%s", (module,)).fetchone()
        return None if row is None else Checkpoint.from_dict(json.loads(row[0]))

    def checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint.from_dict(json.loads(r[0])) for r in self._exec(
            "SELECT data FROM checkpoints ORDER BY module")]

    def checkpoint_updated_at(self, module: str) -> float | None:
        row = self._exec("SELECT updated_at FROM checkpoints WHERE module=%s",
                         (module,)).fetchone()
        return None if row is None else float(row[0])

    def modules(self) -> list[str]:
        return [r[0] for r in self._exec("SELECT module FROM checkpoints ORDER BY module")]

    def alerts(self, module: str | None = None, open_only: bool = False
               ) -> list[dict[str, Any]]:
        where = (["module = %s"] if module is not None else []) + (
            ["state != 'resolved'"] if open_only else [])
        sql = "SELECT * FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
        return self._dicts(sql + " ORDER BY id", (module,) if module is not None else ())

    def baselines(self, module: str | None = None, metric: str | None = None
                  ) -> list[Baseline]:
        pairs = [(c, v) for c, v in (("module=%s", module), ("metric=%s", metric))
                 if v is not None]
        sql = "SELECT * FROM baselines" + (
            " WHERE " + " AND ".join(c for c, _ in pairs) if pairs else "")
        return [records.baseline_row(r) for r in self._dicts(
            sql + " ORDER BY id", tuple(v for _, v in pairs))]

    def baseline(self, baseline_id: int) -> Baseline | None:
        rows = self._dicts("SELECT * FROM baselines WHERE id=%s", (baseline_id,))
        return records.baseline_row(rows[0]) if rows else None

    def baseline_fingerprint(self, module: str, now: float | None = None
                             ) -> tuple[object, ...]:
        row = self._exec(
            "SELECT count(*), max(id), sum(pinned * id), sum(CASE WHEN expires_at IS NOT"
            " NULL AND expires_at <= %s THEN 1 ELSE 0 END) FROM baselines WHERE module=%s",
            (now, module)).fetchone()
        assert row is not None
        return tuple(None if v is None else int(v) for v in row)

    def active_baselines(self, module: str, now: float) -> dict[str, Baseline]:
        return records.choose_active(self.baselines(module=module), now)

    def setting(self, key: str, default: Any = None) -> Any:
        row = self._exec("SELECT value FROM settings WHERE key=%s", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else default

    def snapshots(self) -> list[dict[str, Any]]:
        return [{**r, "data": json.loads(r["data"])} for r in self._dicts(
            "SELECT name, created_at, actor, reason, data FROM snapshots"
            " ORDER BY created_at, name")]

    def api_audit(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._dicts("SELECT * FROM (SELECT * FROM api_audit ORDER BY id DESC"
                           " LIMIT %s) AS newest ORDER BY id", (limit,))

    def leases(self) -> list[Lease]:
        return [Lease(r[0], r[1], int(r[2]), float(r[3])) for r in self._exec(
            "SELECT module, holder, epoch, expires_at FROM leases ORDER BY module")]
