"""The SQLite journal: schema version and migrations, append-only decisions, atomic
decision + checkpoint writes, checkpoints with alert states, the applied flag."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchdog.baseline import capture
from watchdog.errors import JournalError, SchemaError
from watchdog.journal.schema import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    open_database,
    schema_version,
)
from watchdog.journal.store import Journal
from watchdog.judge.alerts import AlertPhase, AlertState
from watchdog.model import Action, Decision
from watchdog.rollout import machine
from watchdog.rollout.state import Checkpoint, Phase

MODULE = "checkout"


def pragma(path: Path, name: str) -> Any:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()


def decision(at: float, action: Action = Action.HOLD, traffic: float = 10.0,
             module: str = MODULE, **kw: Any) -> Decision:
    return Decision(module, at, action, traffic, 0, 0, (f"reason at {at:g}",), **kw)


@pytest.fixture
def plan(kit: Any) -> Any:
    return kit.plan()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "journal.db"


@pytest.fixture
def opened(db_path: Path) -> Iterator[Journal]:
    j = Journal(db_path)
    yield j
    j.close()


# -- schema and migrations ---------------------------------------------------------------


def test_a_fresh_database_gets_the_latest_schema(db_path: Path) -> None:
    db = open_database(db_path)
    assert schema_version(db) == SCHEMA_VERSION == len(MIGRATIONS)
    db.conn.close()
    assert db_path.exists()  # its folder was created too
    assert pragma(db_path, "user_version") == SCHEMA_VERSION
    assert pragma(db_path, "application_id") == APPLICATION_ID
    assert {"decisions", "checkpoints", "alerts", "baselines", "settings"} <= tables(db_path)


def test_in_memory_database_gets_the_latest_schema() -> None:
    db = open_database(":memory:")
    assert schema_version(db) == SCHEMA_VERSION
    assert "decisions" in db.table_names()


def test_reopening_the_latest_schema_changes_nothing(db_path: Path) -> None:
    j = Journal(db_path)
    j.record([decision(1.0)], None, 1.0)
    j.close()
    before = tables(db_path)
    j = Journal(db_path)
    assert schema_version(j.db) == SCHEMA_VERSION
    assert [d.decision.at for d in j.decisions()] == [1.0]
    j.close()
    assert tables(db_path) == before


def test_a_version_1_database_migrates_forward_keeping_its_data(db_path: Path) -> None:
    db = open_database(db_path, migrate_to=1)
    assert schema_version(db) == 1
    assert "snapshots" not in db.table_names()
    db.execute("INSERT INTO decisions (module, at, action, traffic_percent, from_stage,"
               " to_stage, actor, reasons, evidence, journaled_at) VALUES"
               " (?,?,?,?,?,?,?,?,?,?)",
               [MODULE, 5.0, "advance", 25.0, 0, 1, "watchdog", '["healthy"]', "[]", 5.0])
    db.execute("INSERT INTO settings (key, value) VALUES ('kill_switch', 'true')")
    db.conn.close()
    assert pragma(db_path, "user_version") == 1

    j = Journal(db_path)
    try:
        assert schema_version(j.db) == SCHEMA_VERSION
        assert "snapshots" in j.db.table_names()  # added by migration 2
        (old,) = j.decisions()
        assert (old.decision.action, old.decision.traffic_percent, old.decision.reasons) == (
            Action.ADVANCE, 25.0, ("healthy",))
        assert j.setting("kill_switch") is True
        j.record([decision(6.0)], None, 6.0)  # and the migrated journal works
        assert len(j.decisions()) == 2
    finally:
        j.close()
    assert pragma(db_path, "user_version") == SCHEMA_VERSION


@pytest.mark.parametrize("start", range(1, SCHEMA_VERSION))
def test_every_intermediate_version_migrates_to_the_latest(db_path: Path, start: int) -> None:
    open_database(db_path, migrate_to=start).conn.close()
    assert pragma(db_path, "user_version") == start
    open_database(db_path).conn.close()
    reference = db_path.with_name("reference.db")
    open_database(reference).conn.close()
    assert tables(db_path) == tables(reference)
    assert pragma(db_path, "user_version") == SCHEMA_VERSION


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    open_database(db_path).conn.close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="newer") as info:
        Journal(db_path)
    assert str(SCHEMA_VERSION + 1) in str(info.value)
    assert pragma(db_path, "user_version") == SCHEMA_VERSION + 1  # left as it was


def test_a_sqlite_file_of_another_program_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="rollout-watchdog"):
        Journal(db_path)
    assert tables(db_path) == {"users"}  # untouched


def test_another_programs_file_with_its_own_user_version_is_refused(db_path: Path) -> None:
    # many programs set user_version; without our application_id it is not ours
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="rollout-watchdog"):
        Journal(db_path)
    assert tables(db_path) == {"users"}
    assert pragma(db_path, "user_version") == 1


def test_a_file_with_another_application_id_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA application_id=1234")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="not a rollout-watchdog journal"):
        Journal(db_path)


def test_a_file_that_is_not_sqlite_is_a_journal_error(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_text("this is not a database, just some text that is long enough " * 20)
    with pytest.raises(JournalError, match=str(db_path)):
        Journal(db_path)


def test_file_databases_use_wal(opened: Journal, db_path: Path) -> None:
    assert opened.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    opened.record([decision(1.0)], None, 1.0)
    assert db_path.with_name(db_path.name + "-wal").exists()
    assert pragma(db_path, "journal_mode") == "wal"  # persistent, seen by a new connection


# -- decisions ---------------------------------------------------------------------------


def test_decisions_are_append_only(opened: Journal, db_path: Path) -> None:
    opened.record([decision(1.0), decision(2.0)], None, 2.0)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        opened.db.execute("DELETE FROM decisions WHERE at = 1.0")
    conn = sqlite3.connect(db_path)  # any other connection too
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM decisions")
    finally:
        conn.close()
    assert [d.decision.at for d in opened.decisions()] == [1.0, 2.0]


def test_a_decision_round_trips_with_its_evidence(opened: Journal) -> None:
    d = Decision(MODULE, 12.5, Action.ROLLBACK, 0.0, 2, None, ("p95 up", "limit 1"),
                 ({"rule": "latency", "observed": np.float64(230.5), "n": np.int64(6),
                   "breached": True, "window": [1, 2]},), actor="alice", kill_switch=True)
    (decision_id,) = opened.record([d], None, 13.0)
    (got,) = opened.decisions()
    assert got.id == decision_id
    assert got.decision == replace(d, evidence=({"rule": "latency", "observed": 230.5, "n": 6,
                                                 "breached": True, "window": [1, 2]},))
    assert got.journaled_at == 13.0
    assert got.applied_at is None and got.apply_error is None
    assert json.loads(json.dumps(got.to_dict()))["action"] == "rollback"


def test_decision_queries_filter_by_module_time_and_limit(opened: Journal) -> None:
    opened.record([decision(t) for t in (1.0, 2.0, 3.0, 4.0)], None, 4.0)
    opened.record([decision(2.5, module="search")], None, 4.0)
    assert [d.decision.at for d in opened.decisions(module=MODULE)] == [1.0, 2.0, 3.0, 4.0]
    assert [d.decision.at for d in opened.decisions(module="search")] == [2.5]
    # in journal order
    assert [d.decision.at for d in opened.decisions(since=2.0, until=3.0)] == [2.0, 3.0, 2.5]
    assert [d.decision.at for d in opened.decisions(module=MODULE, limit=2)] == [3.0, 4.0]
    last = opened.last_decision(MODULE)
    assert last is not None and last.decision.at == 4.0
    assert opened.last_decision("nothing") is None


def test_unapplied_decisions_and_mark_applied(opened: Journal) -> None:
    ids = opened.record([decision(1.0, Action.ADVANCE), decision(2.0, Action.ROLLBACK),
                         decision(3.0, Action.PAUSE)], None, 3.0)
    assert [d.id for d in opened.decisions(unapplied_only=True)] == ids
    opened.mark_applied(ids[0], 10.0)
    opened.mark_applied(ids[1], 11.0, error="flag service timed out")
    pending = opened.decisions(unapplied_only=True)
    assert [d.id for d in pending] == ids[1:]
    assert pending[0].apply_error == "flag service timed out"
    opened.mark_applied(ids[1], 12.0)  # a retry that worked clears the error
    (left,) = opened.decisions(unapplied_only=True)
    assert left.id == ids[2]
    done = {d.id: d for d in opened.decisions()}
    assert (done[ids[0]].applied_at, done[ids[1]].applied_at) == (10.0, 12.0)
    assert done[ids[1]].apply_error is None


# -- checkpoints -------------------------------------------------------------------------


def test_checkpoint_round_trip_with_alert_states(opened: Journal, plan: Any,
                                                 db_path: Path) -> None:
    cp, d = machine.start(MODULE, plan, 100.0)
    cp = replace(cp, consecutive_failures=1, cumulative_failures=2, inconclusive_since=150.0,
                 hold_key="warning:x", last_tick_at=160.0, alerts={
                     "latency": AlertState(AlertPhase.FIRING, 120.0, 140.0, 150.0, None, 155.0),
                     "errors": AlertState(AlertPhase.PENDING, 150.0, None, 150.0),
                     "memory": AlertState(resolved_at=90.0)})
    opened.record([d], cp, 160.0)
    assert opened.checkpoint(MODULE) == cp
    assert opened.checkpoint_updated_at(MODULE) == 160.0
    assert opened.checkpoint("other") is None
    opened.close()
    again = Journal(db_path)  # and after a reopen
    try:
        assert again.checkpoint(MODULE) == cp
        assert again.checkpoints() == [cp]
    finally:
        again.close()


def test_checkpoints_are_upserted_one_per_module(opened: Journal, plan: Any) -> None:
    a, _ = machine.start("a", plan, 1.0)
    b, _ = machine.start("b", plan, 2.0)
    opened.save_checkpoint(a, 1.0)
    opened.save_checkpoint(b, 2.0)
    paused, _ = machine.pause(a, 3.0, "alice", "why")
    opened.save_checkpoint(paused, 3.0)
    assert [c.module for c in opened.checkpoints()] == ["a", "b"]
    got = opened.checkpoint("a")
    assert got is not None and got.phase is Phase.PAUSED
    assert opened.checkpoint_updated_at("a") == 3.0


def fail_on_insert(journal: Journal, table: str) -> None:
    """Make every insert into ``table`` fail, as a full disk or a constraint would."""
    journal.db.execute(f"CREATE TRIGGER fail_{table} BEFORE INSERT ON {table}"
                       " BEGIN SELECT RAISE(ABORT, 'injected failure'); END")


def test_decision_and_checkpoint_are_written_atomically(opened: Journal, plan: Any) -> None:
    cp, d = machine.start(MODULE, plan, 1.0)
    opened.record([d], cp, 1.0)
    advanced = replace(cp, stage=1, traffic_percent=50.0)
    fail_on_insert(opened, "checkpoints")
    with pytest.raises(JournalError, match="injected failure"):
        opened.record([decision(2.0, Action.ADVANCE, 50.0)], advanced, 2.0)
    # neither the decision nor the checkpoint moved
    assert [x.decision.at for x in opened.decisions()] == [1.0]
    assert opened.checkpoint(MODULE) == cp


def test_a_failed_decision_write_leaves_the_checkpoint_as_it_was(opened: Journal,
                                                                 plan: Any) -> None:
    cp, d = machine.start(MODULE, plan, 1.0)
    opened.record([d], cp, 1.0)
    fail_on_insert(opened, "decisions")
    with pytest.raises(JournalError):
        opened.record([decision(2.0, Action.ADVANCE, 50.0)],
                      replace(cp, stage=1, traffic_percent=50.0), 2.0)
    assert opened.checkpoint(MODULE) == cp
    assert opened.checkpoint_updated_at(MODULE) == 1.0
    # and the journal is still usable afterwards
    opened.db.execute("DROP TRIGGER fail_decisions")
    opened.record([decision(3.0)], cp, 3.0)
    assert [x.decision.at for x in opened.decisions()] == [1.0, 3.0]


def test_a_checkpoint_written_by_another_process_is_read_afresh(opened: Journal,
                                                                plan: Any,
                                                                db_path: Path) -> None:
    # the journal keeps what it last parsed, under the exact JSON it parsed: a checkpoint
    # changed from elsewhere (the CLI's pause) is what the next read returns
    cp, d = machine.start(MODULE, plan, 1.0)
    opened.record([d], cp, 1.0)
    assert opened.checkpoint(MODULE) == cp
    operator = Journal(db_path)
    try:
        paused, p = machine.pause(cp, 2.0, "alice", "why")
        operator.record([p], paused, 2.0)
    finally:
        operator.close()
    got = opened.checkpoint(MODULE)
    assert got == paused and got is not None and got.phase is Phase.PAUSED


def test_a_rolled_back_checkpoint_write_is_not_read_back(opened: Journal, plan: Any) -> None:
    cp, d = machine.start(MODULE, plan, 1.0)
    opened.record([d], cp, 1.0)
    fail_on_insert(opened, "alerts")  # fails after the checkpoint's upsert, in the same
    firing = {"latency": AlertState(AlertPhase.PENDING, 2.0, None, 2.0)}  # transaction
    with pytest.raises(JournalError, match="injected failure"):
        opened.record([], replace(cp, alerts=firing, last_tick_at=2.0), 2.0, {}, {})
    assert opened.checkpoint(MODULE) == cp


# -- alert history -----------------------------------------------------------------------


def test_alert_rows_follow_pending_firing_resolved(opened: Journal, plan: Any) -> None:
    cp, _ = machine.start(MODULE, plan, 0.0)
    states = [
        {"latency": AlertState(AlertPhase.PENDING, 10.0, None, 10.0)},
        {"latency": AlertState(AlertPhase.FIRING, 10.0, 30.0, 30.0)},
        {"latency": AlertState(resolved_at=50.0)},
    ]
    before: dict[str, AlertState] = {}
    for at, after in zip((10.0, 30.0, 50.0), states, strict=True):
        opened.record([], replace(cp, alerts=after), at, {"latency": f"summary {at:g}"},
                      before)
        before = after
        rows = opened.alerts(MODULE)
        assert len(rows) == 1
        if at == 10.0:
            assert (rows[0]["state"], rows[0]["active_at"]) == ("pending", 10.0)
            assert len(opened.alerts(open_only=True)) == 1
    (row,) = opened.alerts(MODULE)
    assert (row["state"], row["active_at"], row["fired_at"], row["resolved_at"]) == (
        "resolved", 10.0, 30.0, 50.0)
    assert row["summary"] == "summary 30"
    assert opened.alerts(open_only=True) == []


def test_a_pending_alert_that_clears_is_closed_at_that_time(opened: Journal,
                                                            plan: Any) -> None:
    cp, _ = machine.start(MODULE, plan, 0.0)
    fired = {"latency": AlertState(AlertPhase.FIRING, 10.0, 10.0, 10.0)}
    resolved = {"latency": AlertState(resolved_at=20.0)}
    pending = {"latency": AlertState(AlertPhase.PENDING, 100.0, None, 100.0, 20.0)}
    cleared = {"latency": AlertState(resolved_at=20.0)}  # step() keeps the old resolution
    before: dict[str, AlertState] = {}
    for at, after in ((10.0, fired), (20.0, resolved), (100.0, pending), (110.0, cleared)):
        opened.record([], replace(cp, alerts=after), at, {}, before)
        before = after
    rows = opened.alerts(MODULE)
    assert [(r["active_at"], r["state"]) for r in rows] == [(10.0, "resolved"),
                                                           (100.0, "resolved")]
    assert rows[1]["resolved_at"] == 110.0
    assert all(r["resolved_at"] >= r["active_at"] for r in rows)


def test_alerts_dropped_from_the_checkpoint_are_closed(opened: Journal, plan: Any) -> None:
    # resume() starts afresh with no alert states: what was firing must not stay open
    cp, _ = machine.start(MODULE, plan, 0.0)
    firing = {"latency": AlertState(AlertPhase.FIRING, 10.0, 10.0, 10.0)}
    opened.record([], replace(cp, alerts=firing), 10.0, {}, {})
    paused, _ = machine.pause(replace(cp, alerts=firing), 20.0, "alice", "why")
    resumed, d = machine.resume(paused, plan, 30.0, "alice", "go on")
    assert resumed.alerts == {}
    opened.record([d], resumed, 30.0, {}, firing)
    (row,) = opened.alerts(MODULE)
    assert (row["state"], row["resolved_at"]) == ("resolved", 30.0)
    assert opened.alerts(open_only=True) == []


# -- settings ----------------------------------------------------------------------------


def test_settings_round_trip(opened: Journal) -> None:
    assert opened.setting("kill_switch", False) is False
    opened.set_setting("kill_switch", True)
    opened.set_setting("note", {"by": "alice", "n": [1, 2]})
    assert opened.setting("kill_switch") is True
    opened.set_setting("kill_switch", False)
    assert opened.setting("kill_switch") is False
    assert opened.setting("note") == {"by": "alice", "n": [1, 2]}


def test_checkpoint_from_dict_survives_json(plan: Any) -> None:
    cp, _ = machine.start(MODULE, plan, 0.0)
    assert Checkpoint.from_dict(json.loads(json.dumps(cp.to_dict()))) == cp


def test_failed_setting_and_pin_writes_are_journal_errors(opened: Journal) -> None:
    b = opened.save_baseline(capture(MODULE, "m", [(1.0, 2.0)], 0.0, 10.0, "test", 10.0))
    assert b.id is not None
    fail_on_insert(opened, "settings")
    opened.db.execute("CREATE TRIGGER fail_pin BEFORE UPDATE ON baselines"
                      " BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
    with pytest.raises(JournalError, match="injected failure"):
        opened.set_setting("kill_switch", True)
    with pytest.raises(JournalError, match="injected failure"):
        opened.pin_baseline(b.id)
    assert opened.setting("kill_switch") is None
    assert not any(x.pinned for x in opened.baselines())
    opened.record([decision(1.0)], None, 1.0)  # no transaction left open
