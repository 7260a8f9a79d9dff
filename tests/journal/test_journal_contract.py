"""One suite over every journal backend (SQLite file, real PostgreSQL): each method of the
:class:`watchdog.journal.base.Journal` Protocol, two connections racing (compare-and-swap,
fencing), and leases. A test here runs once per backend (``journal_url`` is
parametrised in conftest.py)."""

from __future__ import annotations

import inspect
import math
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from watchdog.baseline import Baseline
from watchdog.errors import CheckpointConflict, FencingError, JournalConflict, JournalError
from watchdog.journal.base import Expected, Journal, Lease
from watchdog.judge.alerts import AlertPhase, AlertState
from watchdog.model import Action, Decision
from watchdog.rollout.state import Checkpoint, Phase

M = "checkout"
Open = Callable[[], Journal]


def decision(at: float, action: Action = Action.HOLD, module: str = M,
             **kw: Any) -> Decision:
    return Decision(module, at, action, 10.0, 0, 0, (f"reason at {at:g}",), **kw)


def checkpoint(stage: int = 0, module: str = M, **kw: Any) -> Checkpoint:
    return Checkpoint(module, Phase.PROGRESSING, stage, [5.0, 25.0, 50.0][stage], 0.0,
                      100.0 * stage, **kw)


def baseline(captured_at: float, metric: str = "latency_p95_ms", module: str = M,
             **kw: Any) -> Baseline:
    return Baseline(module, metric, 0.0, 60.0, "prometheus", captured_at, 3, 2.0, 0.5,
                    2.0, 2.5, 2.7, 2.9, 1.5, 3.0, ((0.0, 1.5), (30.0, 2.0), (60.0, 3.0)),
                    **kw)


def test_the_backend_is_a_journal(journal: Journal) -> None:
    assert isinstance(journal, Journal)
    assert "secret" not in journal.path


# decisions and checkpoints ----------------------------------------------------------------

def test_decisions_are_appended_with_increasing_ids_and_read_back(journal: Journal) -> None:
    ids = journal.record([decision(1.0), decision(2.0, Action.ADVANCE,
                                                  evidence=({"v": math.nan, "n": 1},))],
                         checkpoint(1), 2.5)
    ids += journal.record([decision(3.0, Action.ROLLBACK, module="search",
                                    kill_switch=True, actor="alice")], None, 3.5)
    assert ids == sorted(ids) and len(set(ids)) == 3
    got = journal.decisions()
    assert [d.id for d in got] == ids
    assert got[1].decision.evidence == ({"v": None, "n": 1},)  # strict JSON: NaN is null
    assert got[2].decision.kill_switch and got[2].decision.actor == "alice"
    assert got[0].journaled_at == 2.5 and got[0].applied_at is None
    assert [d.id for d in journal.decisions(module=M)] == ids[:2]
    assert [d.id for d in journal.decisions(since=2.0, until=2.0)] == [ids[1]]
    assert [d.id for d in journal.decisions(limit=2)] == ids[1:]
    last = journal.last_decision(M)
    assert last is not None and last.id == ids[1]
    assert journal.last_decision("nobody") is None
    assert journal.decision_counts() == {(M, "hold"): 1, (M, "advance"): 1,
                                         ("search", "rollback"): 1}
    assert journal.unapplied_count() == 2  # holds are not counted
    journal.mark_applied(ids[1], 9.0)
    journal.mark_applied(ids[2], 9.5, error="flag service down")
    assert [d.id for d in journal.decisions(unapplied_only=True)] == [ids[0], ids[2]]
    failed = journal.decisions(module="search")[0]
    assert failed.apply_error == "flag service down" and failed.applied_at is None
    assert journal.decisions(module=M)[1].to_dict()["applied_at"] == 9.0


def test_decisions_are_append_only(journal: Journal) -> None:
    journal.record([decision(1.0)], None, 1.0)
    with pytest.raises(JournalError), journal.transaction():
        journal.sql.execute("DELETE FROM decisions")
    assert len(journal.decisions()) == 1


def test_a_decision_and_its_checkpoint_commit_together_or_not_at_all(journal: Journal
                                                                     ) -> None:
    journal.record([decision(1.0)], checkpoint(0), 1.0)
    bad = checkpoint(1, hold_key=object())  # cannot be stored: fails after the decision
    with pytest.raises(TypeError):
        journal.record([decision(2.0, Action.ADVANCE)], bad, 2.0)
    assert len(journal.decisions()) == 1
    assert journal.checkpoint(M) == checkpoint(0)


def test_checkpoints_upsert_and_read_back(journal: Journal) -> None:
    assert journal.checkpoint(M) is None and journal.checkpoints() == []
    firing = AlertState(AlertPhase.FIRING, active_at=5.0, fired_at=6.0, last_breach_at=6.0)
    journal.save_checkpoint(checkpoint(0, alerts={"slow": firing}), 10.0)
    journal.save_checkpoint(checkpoint(1), 20.0)
    journal.save_checkpoint(checkpoint(0, module="api"), 21.0)
    assert journal.checkpoint(M) == checkpoint(1)
    assert [c.module for c in journal.checkpoints()] == ["api", M]
    assert journal.modules() == ["api", M]
    assert journal.checkpoint_updated_at(M) == 20.0
    assert journal.checkpoint_updated_at("nobody") is None


def test_alert_episodes_follow_the_checkpoints(journal: Journal) -> None:
    pending = AlertState(AlertPhase.PENDING, active_at=5.0, last_breach_at=5.0)
    firing = replace(pending, phase=AlertPhase.FIRING, fired_at=7.0)
    resolved = AlertState(resolved_at=9.0)
    journal.record([], checkpoint(0, alerts={"slow": pending}), 5.0, {"slow": "p95 high"}, {})
    journal.record([], checkpoint(0, alerts={"slow": firing}), 7.0, {"slow": "p95 high"},
                   {"slow": pending})
    assert [(a["state"], a["fired_at"]) for a in journal.alerts(open_only=True)] == [
        ("firing", 7.0)]
    journal.record([], checkpoint(0, alerts={"slow": resolved}), 9.0, {}, {"slow": firing})
    rows = journal.alerts(module=M)
    assert [(r["rule"], r["state"], r["resolved_at"]) for r in rows] == [
        ("slow", "resolved", 9.0)]
    assert journal.alerts(open_only=True) == [] and journal.alerts(module="other") == []


# compare-and-swap and concurrency ---------------------------------------------------------

def test_compare_and_swap_of_checkpoints_across_two_connections(open_backend: Open) -> None:
    a, b = open_backend(), open_backend()
    a.save_checkpoint(checkpoint(0), 1.0)
    read_by_a = a.checkpoint(M)
    b.record([decision(2.0, Action.PAUSE)], replace(checkpoint(0), phase=Phase.PAUSED), 2.0,
             expect=Expected(b.checkpoint(M)))  # an operator pauses meanwhile
    with pytest.raises(CheckpointConflict) as raised:
        a.record([decision(3.0, Action.ADVANCE)], checkpoint(1), 3.0,
                 expect=Expected(read_by_a))
    assert isinstance(raised.value, JournalConflict)
    assert raised.value.current == replace(checkpoint(0), phase=Phase.PAUSED)
    assert [d.decision.action for d in a.decisions()] == [Action.PAUSE]  # nothing written
    a.record([], checkpoint(1, module="new"), 4.0, expect=Expected(None))  # none expected
    with pytest.raises(CheckpointConflict):
        b.record([], checkpoint(2, module="new"), 5.0, expect=Expected(None))


def test_concurrent_compare_and_swap_lets_exactly_one_writer_win(open_backend: Open) -> None:
    first = open_backend()
    first.save_checkpoint(checkpoint(0), 1.0)
    start = first.checkpoint(M)
    writers = [open_backend() for _ in range(4)]
    barrier = threading.Barrier(len(writers))
    outcome: list[str] = []

    def write(j: Journal, n: int) -> None:
        barrier.wait()
        try:
            j.record([decision(10.0 + n, Action.ADVANCE)], checkpoint(1, hold_key=str(n)),
                     10.0 + n, expect=Expected(start))
            outcome.append("won")
        except CheckpointConflict:
            outcome.append("lost")

    threads = [threading.Thread(target=write, args=(j, n)) for n, j in enumerate(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcome) == ["lost", "lost", "lost", "won"]
    assert len(first.decisions()) == 1


def test_a_transaction_is_seen_by_another_connection_only_when_committed(
        open_backend: Open) -> None:
    a, b = open_backend(), open_backend()
    with a.transaction():
        a.sql.execute("INSERT INTO settings (key, value) VALUES (?, ?)", ("k", "1"))
        assert b.setting("k") is None
    assert b.setting("k") == 1
    with pytest.raises(RuntimeError), a.transaction():
        a.sql.execute("INSERT INTO settings (key, value) VALUES (?, ?)", ("j", "2"))
        raise RuntimeError("rolled back")
    assert b.setting("j") is None


def test_reopen_connects_to_the_same_journal(journal: Journal) -> None:
    other = journal.reopen()
    try:
        journal.set_setting("kill_switch", True)
        assert other.setting("kill_switch") is True
    finally:
        other.close()


# baselines, settings, snapshots, the audit ------------------------------------------------

def test_baselines_are_stored_pinned_and_chosen(journal: Journal) -> None:
    old = journal.save_baseline(baseline(100.0))
    new = journal.save_baseline(baseline(200.0, expires_at=300.0))
    other = journal.save_baseline(baseline(150.0, metric="error_rate"))
    assert old.id is not None and new.id is not None and other.id is not None
    assert journal.baseline(new.id) == new and journal.baseline(10**6) is None
    assert new.samples == baseline(0).samples and new.expires_at == 300.0
    assert [b.id for b in journal.baselines(module=M, metric="latency_p95_ms")] == [
        old.id, new.id]
    assert len(journal.baselines()) == 3
    assert journal.active_baselines(M, 250.0)["latency_p95_ms"].id == new.id
    assert journal.active_baselines(M, 350.0)["latency_p95_ms"].id == old.id  # new expired
    before = journal.baseline_fingerprint(M, 250.0)
    assert journal.baseline_fingerprint(M, 350.0) != before
    pinned = journal.pin_baseline(old.id)
    assert pinned.pinned and journal.baseline_fingerprint(M, 250.0) != before
    assert journal.active_baselines(M, 250.0)["latency_p95_ms"].id == old.id
    journal.pin_baseline(new.id)
    assert not any(b.pinned for b in journal.baselines() if b.id == old.id)
    with pytest.raises(JournalError, match="no baseline"):
        journal.pin_baseline(10**6)


def test_settings_hold_json_values(journal: Journal) -> None:
    assert journal.setting("kill_switch", False) is False
    journal.set_setting("kill_switch", True)
    verdict = {"kind": "healthy", "firing": [], "at": 12.5}
    journal.set_setting(f"verdict:{M}", verdict)
    journal.set_setting("kill_switch", False)
    assert journal.setting("kill_switch") is False
    assert journal.setting(f"verdict:{M}") == verdict


def test_snapshots_are_named_once(journal: Journal) -> None:
    journal.save_snapshot("before", 1.0, "alice", "friday", {"checkpoints": [], "k": 1})
    with pytest.raises(JournalConflict):
        journal.save_snapshot("before", 2.0, "bob", "again", {})
    assert journal.snapshots() == [{"name": "before", "created_at": 1.0, "actor": "alice",
                                    "reason": "friday",
                                    "data": {"checkpoints": [], "k": 1}}]


def test_the_api_audit_keeps_aggregated_rows(journal: Journal) -> None:
    with journal.transaction():
        for n in range(3):
            journal.sql.execute(
                "INSERT INTO api_audit (at, last_at, client, method, path, action, module,"
                " status, outcome, count) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (float(n), float(n), "10.0.0.1", "POST", "/api/x", "pause", None, 401,
                 "wrong_token", 1 + n))
        journal.sql.execute("UPDATE api_audit SET count = count + 1, last_at = ? WHERE"
                            " module IS NOT DISTINCT FROM ?", (9.0, None))
    rows = journal.api_audit(limit=2)
    assert [(r["at"], r["count"], r["last_at"]) for r in rows] == [(1.0, 3, 9.0),
                                                                   (2.0, 4, 9.0)]


def test_the_outbox_tables_take_the_portable_sql(journal: Journal, tmp_path: Path) -> None:
    from watchdog.notifiers import Notification
    from watchdog.notifiers import outbox as ob

    n = Notification(key="k1", module=M, kind="decision", action="rollback",
                     severity="critical", title="rolled back", stage=0, traffic_percent=0.0,
                     at=5.0)
    with journal.transaction():
        assert ob.insert(journal.sql, "slack", n, 5.0, 3600.0, lambda _: "#ops") == ob.PENDING
        assert ob.insert(journal.sql, "slack", n, 5.0, 3600.0, lambda _: "#ops") == \
            ob.DUPLICATE
    heads = ob.heads(journal.sql, "slack")
    assert [h["key"] for h in heads] == ["k1"]
    ob.mark_sent(journal.sql, heads[0]["id"], 6.0)
    assert ob.count(journal.sql, "slack", ob.SENT) == 1
    assert ob.prune(journal.sql, "slack", 10.0) == 1


# leases -----------------------------------------------------------------------------------

def test_a_lease_is_held_until_it_expires_then_taken_over_with_a_new_epoch(
        journal: Journal) -> None:
    a = journal.acquire_lease(M, "host-a", 10.0, now=100.0)
    assert a == Lease(M, "host-a", 1, 110.0)
    assert journal.acquire_lease(M, "host-b", 10.0, now=109.0) is None  # still held
    again = journal.acquire_lease(M, "host-a", 10.0, now=105.0)
    assert again == Lease(M, "host-a", 1, 115.0)  # its holder keeps it, same epoch
    b = journal.acquire_lease(M, "host-b", 10.0, now=115.0)  # expired: takeover
    assert b == Lease(M, "host-b", 2, 125.0)
    assert journal.leases() == [b]


def test_renewal_by_a_non_holder_is_refused(journal: Journal) -> None:
    a = journal.acquire_lease(M, "host-a", 10.0, now=0.0)
    assert a is not None
    assert journal.renew_lease(a, 10.0, now=5.0) == replace(a, expires_at=15.0)
    with pytest.raises(FencingError):
        journal.renew_lease(replace(a, holder="host-b"), 10.0, now=6.0)
    b = journal.acquire_lease(M, "host-b", 10.0, now=20.0)
    assert b is not None and b.epoch == 2
    with pytest.raises(FencingError) as raised:  # a lost lease is never revived
        journal.renew_lease(a, 10.0, now=21.0)
    assert raised.value.holder == "host-b" and raised.value.epoch == 2


def test_many_leases_are_renewed_in_one_transaction_each_fenced_by_its_row(
        open_backend: Open) -> None:
    a_side, b_side = open_backend(), open_backend()
    names = [f"m{i}" for i in range(5)]
    held = [a_side.acquire_lease(m, "host-a", 10.0, now=0.0) for m in names]
    assert all(lease is not None for lease in held)
    leases = [lease for lease in held if lease is not None]
    moved = b_side.acquire_lease("m1", "host-b", 10.0, now=20.0)  # a's expired: taken over
    assert moved is not None and moved.epoch == 2
    a_side.release_lease(leases[3], now=20.0)
    ghost = Lease("never-leased", "host-a", 1, 0.0)
    assert a_side.renew_leases([], now=21.0).renewed == {}
    # expired by the clock but not taken over: still ours, renewed (fenced by holder and
    # epoch, not by expiry), each to its own time to live
    done = a_side.renew_leases([(lease, 5.0 if lease.module == "m2" else 10.0)
                                for lease in leases] + [(ghost, 10.0)], now=21.0)
    assert done.renewed == {"m0": replace(leases[0], expires_at=31.0),
                            "m2": replace(leases[2], expires_at=26.0),
                            "m4": replace(leases[4], expires_at=31.0)}
    assert sorted(done.lost) == ["m1", "m3", "never-leased"]
    assert all(isinstance(err, FencingError) for err in done.lost.values())
    assert (done.lost["m1"].holder, done.lost["m1"].epoch) == ("host-b", 2)
    assert (done.lost["m3"].holder, done.lost["m3"].epoch) == ("", 1)  # released
    assert done.lost["never-leased"].holder is None
    assert b_side.leases() == [done.renewed["m0"], moved, done.renewed["m2"],
                               Lease("m3", "", 1, 20.0), done.renewed["m4"]]
    with pytest.raises(FencingError):  # the one-lease form is the same fenced renewal
        a_side.renew_lease(leases[1], 10.0, now=22.0)
    assert a_side.renew_lease(leases[0], 10.0, now=22.0) == replace(leases[0],
                                                                    expires_at=32.0)


def test_a_renewal_that_cannot_commit_renews_none_of_its_leases(
        journal_url: Callable[[], str]) -> None:
    from watchdog.journal import open_journal

    keeper = open_journal(journal_url(), busy_timeout=0.3)
    other = open_journal(journal_url())
    try:
        leases = [keeper.acquire_lease(m, "host-a", 10.0, now=0.0) for m in ("m0", "m1")]
        assert all(lease is not None for lease in leases)
        with other.transaction():  # another writer holds m1's row (SQLite: the file)
            other.sql.execute("UPDATE leases SET acquired_at = acquired_at WHERE module = ?",
                              ("m1",))
            with pytest.raises(JournalError):
                keeper.renew_leases([(lease, 10.0) for lease in leases if lease], now=5.0)
        assert [lease.expires_at for lease in other.leases()] == [10.0, 10.0]
    finally:
        keeper.close()
        other.close()


def test_release_keeps_the_epoch_growing(journal: Journal) -> None:
    a = journal.acquire_lease(M, "host-a", 10.0, now=0.0)
    assert a is not None and journal.release_lease(a, now=1.0)
    assert not journal.release_lease(a, now=1.5)  # not ours any more
    assert journal.leases() == [Lease(M, "", 1, 1.0)]
    again = journal.acquire_lease(M, "host-a", 10.0, now=2.0)
    assert again is not None and again.epoch == 2
    with pytest.raises(JournalError):  # rows are never deleted, epochs never decrease
        journal.sql.execute("DELETE FROM leases")
    with pytest.raises(JournalError):
        journal.sql.execute("UPDATE leases SET epoch = 1")


def test_a_stale_holder_cannot_write_decisions_or_checkpoints(open_backend: Open) -> None:
    old_leader, new_leader = open_backend(), open_backend()
    a = old_leader.acquire_lease(M, "host-a", 10.0, now=0.0)
    assert a is not None
    old_leader.record([decision(1.0)], checkpoint(0), 1.0, fence=a)  # while it holds it
    b = new_leader.acquire_lease(M, "host-b", 10.0, now=30.0)  # a paused, its lease expired
    assert b is not None and b.epoch == 2
    new_leader.record([decision(31.0, Action.ROLLBACK)], checkpoint(0), 31.0, fence=b)
    with pytest.raises(FencingError):
        old_leader.record([decision(32.0, Action.ADVANCE)], checkpoint(1), 32.0, fence=a)
    with pytest.raises(FencingError):
        old_leader.save_checkpoint(checkpoint(2), 33.0, fence=a)
    assert [d.decision.action for d in new_leader.decisions()] == [Action.HOLD,
                                                                    Action.ROLLBACK]
    assert new_leader.checkpoint(M) == checkpoint(0)
    with pytest.raises(ValueError):  # a fence covers its own module only
        new_leader.record([decision(34.0, module="other")], None, 34.0, fence=b)


def test_concurrent_acquisition_gives_the_lease_to_one(open_backend: Open) -> None:
    contenders = [open_backend() for _ in range(4)]
    barrier = threading.Barrier(len(contenders))
    won: list[Lease] = []

    def take(j: Journal, n: int) -> None:
        barrier.wait()
        got = j.acquire_lease(M, f"host-{n}", 10.0, now=0.0)
        if got is not None:
            won.append(got)

    threads = [threading.Thread(target=take, args=(j, n)) for n, j in enumerate(contenders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(won) == 1 and won[0].epoch == 1


# completeness -----------------------------------------------------------------------------

def test_every_protocol_method_is_exercised_here() -> None:
    source = Path(__file__).read_text()
    members = [name for name, _ in inspect.getmembers(Journal)
               if not name.startswith("_") and name in Journal.__dict__]
    assert len(members) > 25
    missing = [m for m in members if f".{m}" not in source]
    assert missing == []
