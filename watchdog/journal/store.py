"""Reading and writing the journal. Decisions are append-only; checkpoints are upserted.

A decision and the checkpoint it produced are written in one transaction, so a reader
(or a restart) never sees one without the other.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from watchdog.baseline import Baseline
from watchdog.errors import JournalError
from watchdog.journal import jsonsafe
from watchdog.journal.schema import BUSY_TIMEOUT, open_database
from watchdog.judge.alerts import INACTIVE, AlertPhase, AlertState
from watchdog.model import Action, Decision
from watchdog.rollout.state import Checkpoint


@dataclass(frozen=True)
class JournaledDecision:
    id: int
    decision: Decision
    journaled_at: float
    applied_at: float | None
    apply_error: str | None

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {"id": self.id, "module": d.module, "at": d.at, "action": d.action.value,
                "traffic_percent": d.traffic_percent, "from_stage": d.from_stage,
                "to_stage": d.to_stage, "kill_switch": d.kill_switch, "actor": d.actor,
                "reasons": list(d.reasons), "evidence": list(d.evidence),
                "journaled_at": self.journaled_at, "applied_at": self.applied_at,
                "apply_error": self.apply_error}


class Journal:
    def __init__(self, path: str | Path, busy_timeout: float = BUSY_TIMEOUT) -> None:
        """``busy_timeout``: seconds a write waits for another writer's lock, then fails."""
        self.path = str(path)
        self.db: sqlite_utils.Database = open_database(path, busy_timeout=busy_timeout)
        self._conn: sqlite3.Connection = self.db.conn
        # per module, the checkpoint's JSON as last read and what it parsed to: the engine
        # reads the checkpoint several times a tick, and it mostly has not changed
        self._parsed: dict[str, tuple[str, Checkpoint]] = {}
        # per module, the JSON last written and the plain values it was made from
        self._written: dict[str, tuple[str, dict[str, Any]]] = {}

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.path}: {err}") from err
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.path}: commit failed: {err}") from err

    # decisions -------------------------------------------------------------------------

    def record(self, decisions: list[Decision], checkpoint: Checkpoint | None,
               journaled_at: float, alert_summaries: Mapping[str, str] | None = None,
               previous_alerts: Mapping[str, AlertState] | None = None) -> list[int]:
        """Append decisions and upsert the checkpoint (and alert changes) atomically."""
        try:
            with self.transaction():
                ids = [self._insert(d, journaled_at) for d in decisions]
                if checkpoint is not None:
                    self._upsert_checkpoint(checkpoint, journaled_at)
                    if previous_alerts is not None:
                        self._alert_changes(checkpoint.module, previous_alerts,
                                            checkpoint.alerts, alert_summaries or {},
                                            journaled_at)
            return ids
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.path}: cannot record: {err}") from err

    def _insert(self, d: Decision, journaled_at: float) -> int:
        cur = self._conn.execute(
            "INSERT INTO decisions (module, at, action, traffic_percent, from_stage, to_stage,"
            " kill_switch, actor, reasons, evidence, journaled_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (d.module, d.at, d.action.value, d.traffic_percent, d.from_stage, d.to_stage,
             int(d.kill_switch), d.actor, json.dumps(list(d.reasons)),
             jsonsafe.dumps(list(d.evidence)), journaled_at))
        return int(cur.lastrowid or 0)

    def mark_applied(self, decision_id: int, at: float, error: str | None = None) -> None:
        try:
            if error is None:
                self._conn.execute("UPDATE decisions SET applied_at=?, apply_error=NULL "
                                   "WHERE id=?", (at, decision_id))
            else:
                self._conn.execute("UPDATE decisions SET apply_error=? WHERE id=?",
                                   (error, decision_id))
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.path}: cannot mark applied: {err}") from err

    def decisions(self, module: str | None = None, since: float | None = None,
                  until: float | None = None, limit: int | None = None,
                  unapplied_only: bool = False) -> list[JournaledDecision]:
        where: list[str] = []
        args: list[Any] = []
        if module is not None:
            where.append("module = ?")
            args.append(module)
        if since is not None:
            where.append("at >= ?")
            args.append(since)
        if until is not None:
            where.append("at <= ?")
            args.append(until)
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
        return [_decision(row) for row in self.db.query(sql, args)]

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

    def save_checkpoint(self, cp: Checkpoint, at: float) -> None:
        self.record([], cp, at)

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

    def checkpoints(self) -> list[Checkpoint]:
        return [Checkpoint.from_dict(json.loads(r["data"]))
                for r in self.db.query("SELECT data FROM checkpoints ORDER BY module")]

    def checkpoint_updated_at(self, module: str) -> float | None:
        rows = list(self.db.query("SELECT updated_at FROM checkpoints WHERE module=?", [module]))
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

    def alerts(self, module: str | None = None, open_only: bool = False) -> list[dict[str, Any]]:
        sql = "SELECT * FROM alerts"
        where: list[str] = []
        args: list[Any] = []
        if module is not None:
            where.append("module = ?")
            args.append(module)
        if open_only:
            where.append("state != 'resolved'")
        if where:
            sql += " WHERE " + " AND ".join(where)
        return list(self.db.query(sql + " ORDER BY id", args))

    # baselines -------------------------------------------------------------------------

    def save_baseline(self, b: Baseline) -> Baseline:
        try:
            with self.transaction():
                cur = self._conn.execute(
                    "INSERT INTO baselines (module, metric, window_from, window_to, source,"
                    " captured_at, count, mean, stddev, p50, p90, p95, p99, min, max, samples,"
                    " pinned, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (b.module, b.metric, b.window_from, b.window_to, b.source, b.captured_at,
                     b.count, b.mean, b.stddev, b.p50, b.p90, b.p95, b.p99, b.min, b.max,
                     json.dumps(list(b.samples)), int(b.pinned), b.expires_at))
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.path}: cannot save baseline: {err}") from err
        return _baseline(next(self.db.query("SELECT * FROM baselines WHERE id=?",
                                            [cur.lastrowid])))

    def baselines(self, module: str | None = None, metric: str | None = None
                  ) -> list[Baseline]:
        sql = "SELECT * FROM baselines"
        where: list[str] = []
        args: list[Any] = []
        if module is not None:
            where.append("module=?")
            args.append(module)
        if metric is not None:
            where.append("metric=?")
            args.append(metric)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_baseline(r) for r in self.db.query(sql + " ORDER BY id", args)]

    def baseline_fingerprint(self, module: str, now: float | None = None) -> tuple[object, ...]:
        """Changes whenever a baseline of ``module`` is added, pinned or unpinned, and
        (given ``now``) whenever one expires."""
        row = self._conn.execute(
            "SELECT count(*), max(id), sum(pinned * id),"
            " sum(expires_at IS NOT NULL AND expires_at <= ?) FROM baselines WHERE module=?",
            (now, module)).fetchone()
        return tuple(row)

    def baseline(self, baseline_id: int) -> Baseline | None:
        rows = list(self.db.query("SELECT * FROM baselines WHERE id=?", [baseline_id]))
        return _baseline(rows[0]) if rows else None

    def pin_baseline(self, baseline_id: int) -> Baseline:
        """Make this baseline the reference for its module and metric (unpinning others)."""
        found = self.baseline(baseline_id)
        if found is None:
            raise JournalError(f"no baseline with id {baseline_id}")
        try:
            with self.transaction():
                self._conn.execute("UPDATE baselines SET pinned=0 WHERE module=? AND metric=?",
                                   (found.module, found.metric))
                self._conn.execute("UPDATE baselines SET pinned=1 WHERE id=?", (baseline_id,))
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.path}: cannot pin baseline: {err}") from err
        pinned = self.baseline(baseline_id)
        assert pinned is not None
        return pinned

    def active_baselines(self, module: str, now: float) -> dict[str, Baseline]:
        """Per metric: the pinned baseline if any, else the newest one not expired."""
        chosen: dict[str, Baseline] = {}
        for b in self.baselines(module=module):
            if b.expired(now) and not b.pinned:
                continue
            current = chosen.get(b.metric)
            if current is None or (b.pinned and not current.pinned) or (
                    b.pinned == current.pinned and b.captured_at >= current.captured_at):
                chosen[b.metric] = b
        return chosen

    # settings --------------------------------------------------------------------------

    def set_setting(self, key: str, value: Any) -> None:
        try:
            with self.transaction():
                self._conn.execute("INSERT INTO settings (key, value) VALUES (?, ?)"
                                   " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                                   (key, json.dumps(value)))
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.path}: cannot set {key}: {err}") from err

    def setting(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else default


def _decision(row: Mapping[str, Any]) -> JournaledDecision:
    d = Decision(module=row["module"], at=row["at"], action=Action(row["action"]),
                 traffic_percent=row["traffic_percent"], from_stage=row["from_stage"],
                 to_stage=row["to_stage"], reasons=tuple(json.loads(row["reasons"])),
                 evidence=tuple(json.loads(row["evidence"])), actor=row["actor"],
                 kill_switch=bool(row["kill_switch"]))
    return JournaledDecision(row["id"], d, row["journaled_at"], row["applied_at"],
                             row["apply_error"])


def _baseline(row: Mapping[str, Any]) -> Baseline:
    return Baseline(
        module=row["module"], metric=row["metric"], window_from=row["window_from"],
        window_to=row["window_to"], source=row["source"], captured_at=row["captured_at"],
        count=row["count"], mean=row["mean"], stddev=row["stddev"], p50=row["p50"],
        p90=row["p90"], p95=row["p95"], p99=row["p99"], min=row["min"], max=row["max"],
        samples=tuple((float(t), float(v)) for t, v in json.loads(row["samples"])),
        pinned=bool(row["pinned"]), expires_at=row["expires_at"], id=row["id"])


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return str(value)
