"""Guards (watchdog.daemon.leases) of several instances on one real PostgreSQL journal,
in one process with a fake clock: fair shares, giving back when an instance joins,
taking over when one stops renewing. SQLite: the second guard takes nothing."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from watchdog.clock import FakeClock
from watchdog.daemon.leases import Change, Guard
from watchdog.journal import open_journal
from watchdog.journal.base import Journal

MODULES = [f"m{i:02d}" for i in range(10)]
TTL = 3.0


@pytest.fixture
def opened() -> Iterator[list[Journal]]:
    journals: list[Journal] = []
    yield journals
    for j in journals:
        j.close()


def guards(url: str, names: list[str], clock: FakeClock, opened: list[Journal],
           spread: bool, changes: list[Change] | None = None,
           modules: list[str] = MODULES) -> list[Guard]:
    out = []
    for name in names:
        j = open_journal(url)
        opened.append(j)
        out.append(Guard(j, name, modules, lambda m: TTL, clock, spread=spread,
                         on_change=changes.append if changes is not None else None))
    return out


def held(gs: list[Guard]) -> dict[str, int]:
    return {g.instance: len(g.held()) for g in gs}


def settle(gs: list[Guard], clock: FakeClock, rounds: int = 4) -> None:
    for _ in range(rounds):
        for g in gs:
            g.round()
        clock.advance(TTL / 4)


def test_instances_spread_the_modules_and_give_back_when_one_joins(
        pg: Any, opened: list[Journal]) -> None:
    url = pg.new_schema()
    clock = FakeClock(1000.0)
    a, b, c = guards(url, ["a", "b", "c"], clock, opened, spread=True)
    settle([a], clock)
    assert held([a]) == {"a": 10}
    settle([a, b], clock)
    assert held([a, b]) == {"a": 5, "b": 5}
    settle([a, b, c], clock)
    counts = held([a, b, c])
    assert sum(counts.values()) == 10
    assert all(abs(n - math.ceil(10 / 3)) <= 1 for n in counts.values()), counts
    # nobody guards a module twice, and every module is guarded
    owners = [m for g in (a, b, c) for m in g.held()]
    assert sorted(owners) == MODULES


def test_a_silent_instance_s_modules_are_taken_over_after_its_leases_expire(
        pg: Any, opened: list[Journal]) -> None:
    url = pg.new_schema()
    clock = FakeClock(1000.0)
    changes: list[Change] = []
    a, b = guards(url, ["a", "b"], clock, opened, spread=True, changes=changes)
    settle([a, b], clock)
    theirs = set(a.held())
    assert len(theirs) == 5
    for _ in range(3):  # a stops renewing (paused): b alone goes on
        b.round()
        clock.advance(TTL / 4)
    assert not theirs & set(b.held())  # not before the time to live ran out
    for _ in range(3):
        b.round()
        clock.advance(TTL / 4)
    assert set(b.held()) == set(MODULES)  # all of them, within ttl + a round or two
    moved = [ch for ch in changes if ch.lease is not None and ch.took_over]
    assert {ch.module for ch in moved} == theirs
    assert all(ch.lease is not None and ch.lease.epoch == 2 for ch in moved)
    # a wakes up: its renewals are refused, it holds nothing and fences with the old epoch
    a.round()
    assert a.held() == {}
    module = sorted(theirs)[0]
    assert a.fence(module).epoch == 1 and b.fence(module).epoch == 2
    assert not a.holds(module) and b.holds(module)


def test_a_guard_coming_back_takes_nothing_back_that_it_would_not_share(
        pg: Any, opened: list[Journal]) -> None:
    """One module, two instances: after a takeover the module stays with the new guard
    (moving it back would cost another takeover for nothing)."""
    url = pg.new_schema()
    clock = FakeClock(1000.0)
    a, b = guards(url, ["a", "b"], clock, opened, spread=True, modules=["checkout"])
    settle([a, b], clock)
    assert held([a, b]) == {"a": 1, "b": 0}
    for _ in range(6):  # a paused
        b.round()
        clock.advance(TTL / 4)
    assert held([b]) == {"b": 1}
    settle([a, b], clock, rounds=8)
    assert held([a, b]) == {"a": 0, "b": 1}


def test_sqlite_a_second_instance_takes_nothing_while_the_first_lives(
        tmp_path: Path, opened: list[Journal]) -> None:
    clock = FakeClock(1000.0)
    a, b = guards(str(tmp_path / "journal.db"), ["a", "b"], clock, opened, spread=False)
    settle([a, b], clock)
    assert held([a, b]) == {"a": 10, "b": 0}
    assert b.state()["role"] == "standby" and a.state()["role"] == "leader"
    a.stop(release=True)  # a clean stop gives the leases back at once
    b.round()
    assert held([b]) == {"b": 10}
