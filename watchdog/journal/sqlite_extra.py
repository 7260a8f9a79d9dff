"""The SQLite journal's snapshots, audit reads, counts and leases (a mixin of
:class:`watchdog.journal.store.Journal`; leases: migration v6 of
:mod:`watchdog.journal.schema`). One host: the lease row is what two daemons on the same
file agree through, each write taking SQLite's write lock (``BEGIN IMMEDIATE``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

from watchdog.errors import FencingError
from watchdog.journal.records import Lease, Renewals


class SqliteExtras:
    path: str
    _conn: sqlite3.Connection

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> Iterator[dict[str, Any]]:
        cur = self._conn.execute(sql, args)
        names = [c[0] for c in cur.description]
        for r in cur.fetchall():
            yield dict(zip(names, r, strict=True))

    def decision_counts(self) -> dict[tuple[str, str], int]:
        return {(m, a): int(n) for m, a, n in self._conn.execute(
            "SELECT module, action, count(*) FROM decisions GROUP BY module, action")}

    def unapplied_count(self) -> int:
        return int(self._conn.execute("SELECT count(*) FROM decisions WHERE applied_at IS"
                                      " NULL AND action != 'hold'").fetchone()[0])

    def modules(self) -> list[str]:
        return [r[0] for r in self._conn.execute(
            "SELECT module FROM checkpoints ORDER BY module")]

    def save_snapshot(self, name: str, created_at: float, actor: str, reason: str,
                      data: Mapping[str, Any]) -> None:
        with self.transaction():
            self._conn.execute("INSERT INTO snapshots (name, created_at, actor, reason, data)"
                               " VALUES (?,?,?,?,?)",
                               (name, created_at, actor, reason, json.dumps(dict(data))))

    def snapshots(self) -> list[dict[str, Any]]:
        return [{**r, "data": json.loads(r["data"])} for r in self._rows(
            "SELECT name, created_at, actor, reason, data FROM snapshots"
            " ORDER BY created_at, name")]

    def api_audit(self, limit: int = 100) -> list[dict[str, Any]]:
        return list(self._rows("SELECT * FROM (SELECT * FROM api_audit ORDER BY id DESC"
                               " LIMIT ?) ORDER BY id", (limit,)))

    # leases ----------------------------------------------------------------------------

    def _lease(self, module: str) -> Lease | None:
        row = self._conn.execute("SELECT module, holder, epoch, expires_at FROM leases"
                                 " WHERE module=?", (module,)).fetchone()
        return Lease(row[0], row[1], int(row[2]), float(row[3])) if row else None

    def _check_fence(self, fence: Lease) -> None:
        """Inside a write transaction: the module's lease is still ``fence``'s."""
        current = self._lease(fence.module)
        if current is None or (current.holder, current.epoch) != (fence.holder, fence.epoch):
            raise _fencing(fence, current)

    def acquire_lease(self, module: str, holder: str, ttl: float, now: float
                      ) -> Lease | None:
        if not holder:
            raise ValueError("a lease holder needs a name")
        with self.transaction():
            current = self._lease(module)
            if current is None:
                lease = Lease(module, holder, 1, now + ttl)
                self._conn.execute("INSERT INTO leases (module, holder, epoch, expires_at,"
                                   " acquired_at) VALUES (?,?,?,?,?)",
                                   (module, holder, 1, now + ttl, now))
                return lease
            if current.holder == holder and current.held(now):
                lease = Lease(module, holder, current.epoch, now + ttl)
            elif current.held(now):
                return None
            else:
                lease = Lease(module, holder, current.epoch + 1, now + ttl)
            self._conn.execute("UPDATE leases SET holder=?, epoch=?, expires_at=?,"
                               " acquired_at=CASE WHEN epoch=? THEN acquired_at ELSE ? END"
                               " WHERE module=?", (holder, lease.epoch, lease.expires_at,
                                                   lease.epoch, now, module))
            return lease

    def renew_lease(self, lease: Lease, ttl: float, now: float) -> Lease:
        done = self.renew_leases([(lease, ttl)], now)
        if lease.module in done.lost:
            raise done.lost[lease.module]
        return done.renewed[lease.module]

    def renew_leases(self, leases: Sequence[tuple[Lease, float]], now: float) -> Renewals:
        """One transaction (one commit) for all of them, each fenced by its own row."""
        renewed: dict[str, Lease] = {}
        lost: dict[str, FencingError] = {}
        if not leases:
            return Renewals(renewed, lost)
        with self.transaction():
            for lease, ttl in leases:
                current = self._lease(lease.module)
                if current is None or (current.holder, current.epoch) != (lease.holder,
                                                                           lease.epoch):
                    lost[lease.module] = _fencing(lease, current)
                else:
                    renewed[lease.module] = replace(lease, expires_at=now + ttl)
            self._conn.executemany("UPDATE leases SET expires_at=? WHERE module=?",
                                   [(r.expires_at, m) for m, r in renewed.items()])
        return Renewals(renewed, lost)

    def release_lease(self, lease: Lease, now: float) -> bool:
        with self.transaction():
            cur = self._conn.execute(
                "UPDATE leases SET holder='', expires_at=? WHERE module=? AND holder=? AND"
                " epoch=?", (now, lease.module, lease.holder, lease.epoch))
            return cur.rowcount == 1

    def leases(self) -> list[Lease]:
        return [Lease(r[0], r[1], int(r[2]), float(r[3])) for r in self._conn.execute(
            "SELECT module, holder, epoch, expires_at FROM leases ORDER BY module")]


def _fencing(fence: Lease, current: Lease | None) -> FencingError:
    now_held = "no lease" if current is None else (
        f"epoch {current.epoch} held by {current.holder!r}" if current.holder
        else f"epoch {current.epoch}, released")
    return FencingError(f"module {fence.module}: the lease moved (we hold epoch "
                        f"{fence.epoch} as {fence.holder!r}; the journal has {now_held});"
                        " write refused", fence.module,
                        None if current is None else current.holder,
                        None if current is None else current.epoch)


def check_modules(fence: Lease, modules: set[str]) -> None:
    others = modules - {fence.module, *fence.covers}
    if others:
        raise ValueError(f"a write fenced by the lease of {fence.module} also writes "
                         f"{', '.join(sorted(others))}")

