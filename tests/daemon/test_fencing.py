"""Fenced engine writes on both backends (a real SQLite file, a real PostgreSQL): an
instance whose lease was taken over writes nothing; its rollback is still applied and
handed over as a claim, which the new guard journals (watchdog.daemon.claims)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from watchdog.daemon import claims
from watchdog.engine import Engine
from watchdog.journal import open_journal
from watchdog.journal.base import Journal
from watchdog.journal.records import Lease
from watchdog.model import Action, Decision, VerdictKind


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg").new_schema())
    return str(tmp_path / "journal.db")


@pytest.fixture
def journals(url: str) -> Iterator[tuple[Journal, Journal]]:
    a, b = open_journal(url), open_journal(url)
    yield a, b
    a.close()
    b.close()


def engine(kit: SimpleNamespace, journal: Journal, source: Any, lease: list[Lease],
           applied: list[Decision]) -> Engine:
    return Engine(kit.engine_rules(), journal, source, actuate=applied.append,
                  fence=lambda module: lease[0])


def feed(source: Any, kit: SimpleNamespace, t: float, kind: VerdictKind) -> None:
    source.feed(t - 1, kit.VALUE_FOR[kind])


def test_a_stale_guard_writes_nothing_and_its_rollback_is_claimed_then_adopted(
        kit: SimpleNamespace, journals: tuple[Journal, Journal]) -> None:
    ja, jb = journals
    source = kit.ScriptedSource()
    lease_a = ja.acquire_lease("svc", "a", 10.0, 1000.0)
    assert lease_a is not None
    applied_a: list[Decision] = []
    a = engine(kit, ja, source, [lease_a], applied_a)
    feed(source, kit, 1000, VerdictKind.HEALTHY)
    a.tick("svc", 1000.0)  # starts the rollout, fenced by a's lease
    assert [jd.decision.action for jd in ja.decisions()] == [Action.ADVANCE]
    feed(source, kit, 1005, VerdictKind.CRITICAL)
    a.tick("svc", 1005.0)  # one failure counted (two in a row roll back)
    applied_a.clear()

    lease_b = jb.acquire_lease("svc", "b", 10.0, 1011.0)  # a's lease expired: taken over
    assert lease_b is not None and lease_b.epoch == lease_a.epoch + 1
    before = ja.checkpoint("svc")

    # a, paused meanwhile, comes back: its tick is refused (nothing journaled); a critical
    # verdict (the second in a row) rolls back all the same, not journaled but claimed
    feed(source, kit, 1012, VerdictKind.CRITICAL)
    result = a.tick("svc", 1012.0)
    assert [d.action for d in result.decisions] == [Action.ROLLBACK]
    assert [d.action for d in applied_a] == [Action.ROLLBACK]
    assert ja.checkpoint("svc") == before
    journaled = [jd.decision.action for jd in ja.decisions()]
    assert journaled == [Action.ADVANCE, Action.HOLD]
    found = claims.claim(jb, "svc")
    assert found is not None and found["by"] == "a"

    # b, the guard now, adopts it: a rollback journaled under b's lease, the claim cleared
    applied_b: list[Decision] = []
    b = engine(kit, jb, source, [lease_b], applied_b)
    done = claims.adopt(b, "svc", 1016.0)
    assert [d.action for d in done] == [Action.ROLLBACK]
    assert [jd.decision.action for jd in jb.decisions()] == [*journaled, Action.ROLLBACK]
    assert "lost the lease" in jb.decisions()[-1].decision.reasons[0]
    cp = jb.checkpoint("svc")
    assert cp is not None and cp.phase.value == "rolled_back"
    assert claims.claim(jb, "svc") is None
    assert claims.adopt(b, "svc", 1017.0) == []  # once


def test_a_claim_the_rollout_no_longer_allows_is_dropped(
        kit: SimpleNamespace, journals: tuple[Journal, Journal]) -> None:
    _, jb = journals
    source = kit.ScriptedSource()
    lease = jb.acquire_lease("svc", "b", 10.0, 1000.0)
    assert lease is not None
    b = engine(kit, jb, source, [lease], [])
    feed(source, kit, 1000, VerdictKind.HEALTHY)
    b.tick("svc", 1000.0)
    cp = jb.checkpoint("svc")
    assert cp is not None
    from watchdog.rollout import machine

    done, d = machine.abort(cp, 1001.0, "alice", "stop")
    jb.record([d], done, 1001.0)
    jb.set_setting(claims.CLAIM_KEY.format(module="svc"),
                   {"by": "a", "reasons": ["m_critical"], "actor": "watchdog", "at": 1000.5})
    assert claims.adopt(b, "svc", 1002.0) == []
    assert claims.claim(jb, "svc") is None
    assert [jd.decision.action for jd in jb.decisions()] == [Action.ADVANCE, Action.ABORT]


def test_a_fenced_group_rollback_applies_every_members_flag(
        kit: SimpleNamespace, tmp_path: Path) -> None:
    # a module group's rollback is the group's decision and one per member: a guard that
    # lost its lease during the tick applies all of them (the members' flags are the
    # ones the actuators hold), not the first one only
    from watchdog.errors import FencingError

    journal = open_journal(str(tmp_path / "journal.db"))
    try:
        applied: list[Decision] = []
        e = engine(kit, journal, kit.ScriptedSource(), [None], applied)  # type: ignore[list-item]
        ds = [Decision(m, 5.0, Action.ROLLBACK, 0.0, 1, 0, ("r: critical",))
              for m in ("comp", "c.a", "c.b")]
        done = e._fenced("comp", [*ds, Decision("c.c", 5.0, Action.HOLD, 0.0, 1, 1, ())],
                         FencingError("lease moved", "comp", "b", 2))
        assert [d.module for d in done] == ["comp", "c.a", "c.b"]
        assert [d.module for d in applied] == ["comp", "c.a", "c.b"]
        assert claims.claim(journal, "comp") is not None
    finally:
        journal.close()


def test_a_groups_records_held_in_memory_are_written_together_under_its_lease(
        kit: SimpleNamespace, tmp_path: Path) -> None:
    # a group tick the journal could not take holds the group's decision and its members'
    # in memory; once the journal is back they are written in one transaction under the
    # group's lease (each member fenced alone, with no lease of its own, was refused and
    # its flag decision dropped)
    from dataclasses import replace

    from watchdog.rollout.state import Checkpoint, Phase

    journal = open_journal(str(tmp_path / "journal.db"))
    try:
        lease = journal.acquire_lease("comp", "a", 10.0, 1000.0)
        assert lease is not None
        covering = replace(lease, covers=("c.a", "c.b"))
        bogus = {m: Lease(m, "a", 0, 2000.0) for m in ("c.a", "c.b")}
        applied: list[Decision] = []
        e = Engine(kit.engine_rules(), journal, kit.ScriptedSource(), actuate=applied.append,
                   fence=lambda m: covering if m == "comp" else bogus[m])
        cp = Checkpoint("comp", Phase.ROLLED_BACK, 0, 0.0, 0.0, 0.0)
        ds = [Decision(m, 1001.0, Action.ROLLBACK, 0.0, 0, 0, ("r: critical",))
              for m in ("comp", "c.a", "c.b")]
        e._unjournaled = [(d, cp, True) for d in ds]
        e._retry_journal(1002.0)
        assert [jd.decision.module for jd in journal.decisions()] == ["comp", "c.a", "c.b"]
        assert e._unjournaled == []
        assert claims.claim(journal, "c.a") is None and claims.claim(journal, "comp") is None
    finally:
        journal.close()
