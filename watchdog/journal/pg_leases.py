"""The PostgreSQL journal's leases (a mixin of
:class:`watchdog.journal.postgres.PostgresJournal`): the same semantics as SQLite's
(:mod:`watchdog.journal.sqlite_extra`). A lease row is locked (``FOR UPDATE``) by the
transaction that changes it, and ``FOR SHARE`` by a fenced write of its module, so a
renewal or a takeover and a fenced write never interleave."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import psycopg

from watchdog.errors import FencingError
from watchdog.journal.records import Lease, Renewals
from watchdog.journal.sqlite_extra import _fencing


class PgLeases:
    @property
    def _conn(self) -> psycopg.Connection[Any]:
        raise NotImplementedError

    def transaction(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> psycopg.Cursor[Any]:
        raise NotImplementedError

    def _lease(self, module: str, lock: str = "") -> Lease | None:
        row = self._conn.execute(f"SELECT module, holder, epoch, expires_at FROM leases"
                                 f" WHERE module=%s {lock}".encode(), (module,)).fetchone()
        return Lease(row[0], row[1], int(row[2]), float(row[3])) if row else None

    def _check_fence(self, fence: Lease, share: bool = False) -> None:
        current = self._lease(fence.module, "FOR SHARE" if share else "FOR UPDATE")
        if current is None or (current.holder, current.epoch) != (fence.holder, fence.epoch):
            raise _fencing(fence, current)

    def acquire_lease(self, module: str, holder: str, ttl: float, now: float
                      ) -> Lease | None:
        if not holder:
            raise ValueError("a lease holder needs a name")
        with self.transaction():
            row = self._conn.execute(
                "INSERT INTO leases (module, holder, epoch, expires_at, acquired_at) VALUES"
                " (%s,%s,1,%s,%s) ON CONFLICT (module) DO NOTHING RETURNING epoch",
                (module, holder, now + ttl, now)).fetchone()
            if row is not None:
                return Lease(module, holder, 1, now + ttl)
            current = self._lease(module, "FOR UPDATE")
            assert current is not None
            if current.holder == holder and current.held(now):
                lease = Lease(module, holder, current.epoch, now + ttl)
            elif current.held(now):
                return None
            else:
                lease = Lease(module, holder, current.epoch + 1, now + ttl)
            self._conn.execute(
                "UPDATE leases SET holder=%s, epoch=%s, expires_at=%s, acquired_at=CASE WHEN"
                " epoch=%s THEN acquired_at ELSE %s END WHERE module=%s",
                (holder, lease.epoch, lease.expires_at, lease.epoch, now, module))
            return lease

    def renew_lease(self, lease: Lease, ttl: float, now: float) -> Lease:
        done = self.renew_leases([(lease, ttl)], now)
        if lease.module in done.lost:
            raise done.lost[lease.module]
        return done.renewed[lease.module]

    def renew_leases(self, leases: Sequence[tuple[Lease, float]], now: float) -> Renewals:
        """One transaction: the rows locked in module order (two renewals never deadlock),
        each compared with its lease, the ones still ours extended."""
        renewed: dict[str, Lease] = {}
        lost: dict[str, FencingError] = {}
        if not leases:
            return Renewals(renewed, lost)
        with self.transaction():
            rows = {r[0]: Lease(r[0], r[1], int(r[2]), float(r[3])) for r in self._conn.execute(
                "SELECT module, holder, epoch, expires_at FROM leases WHERE module = ANY(%s)"
                " ORDER BY module FOR UPDATE", (sorted({lease.module for lease, _ in leases}),))}
            for lease, ttl in leases:
                current = rows.get(lease.module)
                if current is None or (current.holder, current.epoch) != (lease.holder,
                                                                           lease.epoch):
                    lost[lease.module] = _fencing(lease, current)
                else:
                    renewed[lease.module] = replace(lease, expires_at=now + ttl)
            if renewed:
                with self._conn.cursor() as cur:
                    cur.executemany("UPDATE leases SET expires_at=%s WHERE module=%s",
                                    [(r.expires_at, m) for m, r in renewed.items()])
        return Renewals(renewed, lost)

    def release_lease(self, lease: Lease, now: float) -> bool:
        cur = self._exec("UPDATE leases SET holder='', expires_at=%s WHERE module=%s AND"
                         " holder=%s AND epoch=%s",
                         (now, lease.module, lease.holder, lease.epoch))
        return cur.rowcount == 1
