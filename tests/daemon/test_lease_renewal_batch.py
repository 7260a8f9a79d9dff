"""The lease keeper renews every lease it holds in one journal transaction a round (one
commit, one fsync), not one per lease: at 1,000 modules a commit per lease held the
SQLite journal's write lock ~133 times a second against the ticks' own records. Each
lease stays fenced by its own row: one that moved is reported lost, the rest renewed.

A real SQLite journal file; its statements are counted with sqlite3's trace callback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from watchdog.clock import FakeClock
from watchdog.daemon.leases import Change, Guard
from watchdog.journal import open_journal
from watchdog.journal.store import SqliteJournal

MODULES = [f"m{i:02d}" for i in range(50)]
TTL = 10.0


@pytest.fixture
def journals(tmp_path: Path) -> Iterator[tuple[SqliteJournal, SqliteJournal]]:
    keeper, other = open_journal(tmp_path / "journal.db"), open_journal(tmp_path / "journal.db")
    assert isinstance(keeper, SqliteJournal) and isinstance(other, SqliteJournal)
    yield keeper, other
    keeper.close()
    other.close()


def commits(journal: SqliteJournal, action: Callable[[], None]) -> int:
    statements: list[str] = []
    journal._conn.set_trace_callback(statements.append)
    try:
        action()
    finally:
        journal._conn.set_trace_callback(None)
    return sum(1 for s in statements if s.strip().upper() == "COMMIT")


def test_a_round_renews_every_lease_due_in_one_commit_and_reports_one_that_moved(
        journals: tuple[SqliteJournal, SqliteJournal]) -> None:
    keeper, other = journals
    clock = FakeClock(1000.0)
    changes: list[Change] = []
    guard = Guard(keeper, "host-a", MODULES, lambda m: TTL, clock, spread=False,
                  on_change=changes.append)
    guard.round()
    assert len(guard.held()) == len(MODULES)
    clock.advance(TTL / 2)  # every lease past the renewal age
    assert commits(keeper, guard.round) <= 2  # the heartbeat, and every renewal at once
    assert {lease.expires_at for lease in guard.held().values()} == {clock.now() + TTL}

    # host-a pauses past its leases' expiry; host-b takes m07 over (a new epoch)
    clock.advance(TTL * 1.5)
    taken = other.acquire_lease("m07", "host-b", TTL, clock.now())
    assert taken is not None and taken.epoch == 2
    changes.clear()
    assert commits(keeper, guard.round) <= 2
    held = guard.held()
    assert "m07" not in held and len(held) == len(MODULES) - 1
    assert {lease.expires_at for lease in held.values()} == {clock.now() + TTL}
    assert [(c.module, c.lease, c.to) for c in changes] == [("m07", None, "host-b")]
    rows = {lease.module: lease for lease in other.leases()}
    assert rows["m07"] == taken  # the refused renewal wrote nothing
    assert guard.fence("m07").epoch == 1  # a tick of m07 still carries the old epoch
