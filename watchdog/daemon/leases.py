"""Which modules this instance guards: one lease per module in the journal's database.

Every instance of the daemon pointed at one journal runs a :class:`Guard`. Its keeper
thread makes a round every quarter of the shortest lease time to live:

* it renews its heartbeat, a lease row named ``@instance/<name>`` (the live instances are
  the heartbeats that have not expired) and every module lease it holds that is past half
  an interval old (a renewal is a fenced write: refused once another instance took the
  lease over, which is how a paused or partitioned old guard learns it lost it);
* PostgreSQL (``spread``): it takes free, released or expired leases up to its fair
  share of ``modules / live instances`` (:meth:`Guard._balance`), preferring the modules
  that rank it first (rendezvous hashing), and gives back the ones above its share when an
  instance joins. SQLite (one host): it takes every free lease,
  so a second daemon on the same file guards nothing while the first one lives: a standby.

A lease lasts ``lease.ttl`` (default 1.5 x the module's tick period, at least
:data:`MIN_TTL`), so a standby takes a dead guard's module over within two periods of its
death (at most the time to live plus a round: 1.875 periods), and ticks it at once. The
tick runs only while this instance holds the module's lease and the lease has not expired
by the local clock (a lease found expired is renewed first, fenced); every write of the
tick carries the lease (:attr:`watchdog.engine.Engine.fence`), and a lease that is lost
keeps fencing with its old epoch, which the journal refuses.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence

from watchdog.clock import Clock
from watchdog.daemon.lease_report import GuardCollector, GuardReports, guard_notification
from watchdog.daemon.lease_terms import (
    LEASE_FACTOR,
    MIN_TTL,
    PREFIX,
    Change,
    instance_name,
    lease_ttl,
)
from watchdog.errors import FencingError, JournalError
from watchdog.journal.base import Journal
from watchdog.journal.records import Lease
from watchdog.worker import PollingWorker

__all__ = ["LEASE_FACTOR", "MIN_TTL", "PREFIX", "RENEW_AFTER", "ROUND", "Change", "Guard",
           "GuardCollector", "guard_notification", "instance_name", "lease_ttl"]

log = logging.getLogger(__name__)

RENEW_AFTER = 0.3  # of the time to live: a held lease is renewed once this old
ROUND = 0.25  # of the shortest time to live: the keeper's period


def _rank(instance: str, module: str) -> bytes:
    return hashlib.blake2b(f"{instance}\0{module}".encode(), digest_size=8).digest()


class Guard(GuardReports):
    def __init__(self, journal: Journal, instance: str, modules: Sequence[str],
                 ttl_of: Callable[[str], float], clock: Clock, *, spread: bool,
                 on_change: Callable[[Change], None] | None = None) -> None:
        self.journal, self.instance, self.clock = journal, instance, clock
        self.spread, self.on_change = spread, on_change
        self.ttl_of = ttl_of
        self._modules: tuple[str, ...] = tuple(sorted(modules))
        self._held: dict[str, Lease] = {}
        self._last: dict[str, Lease] = {}  # the last lease held per module: fences forever
        self._others: dict[str, Lease] = {}  # modules another instance holds
        self._live: tuple[str, ...] = (instance,)
        self._said: set[tuple[str, str, int]] = set()
        self._beat: Lease | None = None  # this instance's heartbeat row
        self._rounds = 0
        self._free_before: set[str] = set()  # modules nobody held at the last round
        self._lock = threading.RLock()  # one journal connection: one user at a time
        self._worker = PollingWorker("leases", self.round, self.period(), "lease keeper failed")

    # what the daemon asks --------------------------------------------------------------

    def period(self) -> float:
        return max(0.02, ROUND * min((self.ttl_of(m) for m in self._modules), default=1.0))

    def fence(self, module: str) -> Lease:
        """The lease a write of ``module`` carries: the one held, else the last one held
        (refused: the lease moved), else one no row ever has (epoch 0: refused)."""
        # no lock: reading a dict entry is atomic, and the keeper's round holds the lock
        # through its journal writes (a thousand renewals); a tick must not wait on them
        return self._held.get(module) or self._last.get(module) or \
            Lease(module, self.instance, 0, 0.0)

    def holds(self, module: str) -> bool:
        """Held, and not expired by the local clock."""
        lease = self._held.get(module)  # atomic: see fence
        return lease is not None and lease.expires_at > self.clock.now()

    def for_tick(self, module: str) -> Lease | None:
        """The lease a tick of ``module`` may run under (renewed first if it expired by
        the local clock: a paused instance finds out here), or None. Before the keeper's
        first round (a daemon ticked without being started: tests), it makes one."""
        if not self._rounds:
            self.round()
        lease = self._held.get(module)  # held and valid (atomic: see fence): no lock
        if lease is not None and lease.expires_at > self.clock.now():
            return lease
        with self._lock:
            lease = self._held.get(module)
            if lease is None:
                return None
            if lease.expires_at > self.clock.now():
                return lease
            changes = self._renew({module: lease}, self.clock.now(), force=True)
        self._announce(changes)
        return self._held.get(module)

    def held(self) -> dict[str, Lease]:
        with self._lock:
            return dict(self._held)

    def others(self) -> dict[str, Lease]:
        with self._lock:
            return dict(self._others)

    def live(self) -> tuple[str, ...]:
        return self._live

    def modules(self) -> tuple[str, ...]:
        return self._modules

    def set_modules(self, modules: Sequence[str]) -> None:
        """A reload: leases of modules no longer configured are released."""
        with self._lock:
            self._modules = tuple(sorted(modules))
            gone = {m: lease for m, lease in self._held.items() if m not in self._modules}
            changes = self._release(gone, self.clock.now())
        self._announce(changes)
        self._worker.poll_interval = self.period()

    # the keeper ------------------------------------------------------------------------

    def start(self) -> None:
        self.round()  # before the first tick: the modules this instance guards
        self._worker.start()

    def stop(self, release: bool = True) -> None:
        """Stop the keeper; ``release``: give every lease back (a clean shutdown, so a
        standby takes over at its next round instead of after the time to live)."""
        self._worker.stop(5.0)
        if release:
            with self._lock:
                changes = self._release(dict(self._held), self.clock.now())
                if self._beat is not None:
                    with contextlib.suppress(JournalError):
                        self.journal.release_lease(self._beat, self.clock.now())
            self._announce(changes)

    def round(self) -> None:
        """Heartbeat, renew, give back above the fair share, take up to it."""
        now = self.clock.now()
        with self._lock:
            self._rounds += 1
            try:
                self._beat = self.journal.acquire_lease(
                    PREFIX + self.instance, self.instance, min(
                        (self.ttl_of(m) for m in self._modules), default=1.0), now)
                rows = {r.module: r for r in self.journal.leases()}
            except JournalError as err:
                log.warning("leases: cannot reach the journal (%s); the leases held run out "
                            "at their expiry", err)
                return
            self._live = tuple(sorted({self.instance} | {
                r.holder for m, r in rows.items() if m.startswith(PREFIX) and r.held(now)}))
            # renew first: a guard that was paused finds out through a fenced write (refused)
            changes = self._renew(dict(self._held), now)
            changes += self._moved(rows)
            changes += self._balance(rows, now)
            self._others = {m: r for m, r in rows.items() if m in self._modules
                            and r.holder and r.holder != self.instance and r.held(now)}
        self._announce(changes)
        self._standby_lines()

    def _shares(self) -> tuple[int, int, int]:
        """(floor, this instance's share, cap). PostgreSQL: ``modules / live instances``,
        the remainder going one each to the first instances by name (10 modules over 3:
        4, 3, 3), at most ``ceil`` of it each. SQLite: every module."""
        n = len(self._modules)
        if not self.spread:
            return n, n, n
        live = sorted(self._live)
        q, r = divmod(n, len(live))
        return q, q + (1 if live.index(self.instance) < r else 0), q + (1 if r else 0)

    def share(self) -> int:
        return self._shares()[1]

    def _balance(self, rows: dict[str, Lease], now: float) -> list[Change]:
        """Give back above the cap, or above the share while a live instance holds less
        than the floor; take free leases up to the share, and (so that no module stays
        unguarded) ones found free two rounds running up to the cap. A module is never
        moved just to follow the ranking: an old guard coming back takes nothing back."""
        floor, share, cap = self._shares()
        names = set(self._modules)
        counts = collections.Counter(r.holder for m, r in rows.items()
                                     if m in names and r.held(now))
        counts[self.instance] = len(self._held)
        keep = cap
        if any(counts.get(i, 0) < floor for i in self._live if i != self.instance):
            keep = share
        out: list[Change] = []
        if len(self._held) > keep:
            excess = sorted(self._held, key=self._rank_first)[keep:]
            out += self._release({m: self._held[m] for m in excess}, now)
        free = {m for m in self._modules if m not in self._held
                and (m not in rows or not rows[m].held(now))}
        if len(self._held) < share:
            out += self._take(free, rows, now, share - len(self._held))
        lingering = (free & self._free_before) - set(self._held)
        if lingering and len(self._held) < cap:
            out += self._take(lingering, rows, now, cap - len(self._held))
        self._free_before = free - set(self._held)
        return out

    def _rank_first(self, module: str) -> tuple[int, bytes]:
        """Sort key: modules that rank this instance first among the live ones, first."""
        best = max(self._live, key=lambda i: _rank(i, module))
        return (0 if best == self.instance else 1, _rank(self.instance, module))

    def _moved(self, rows: dict[str, Lease]) -> list[Change]:
        """Leases the table shows in another instance's hands (or another epoch)."""
        out = []
        for module, lease in list(self._held.items()):
            row = rows.get(module)
            if row is None or (row.holder, row.epoch) != (lease.holder, lease.epoch):
                out.append(self._lost(module, row.holder if row is not None else ""))
        return out

    def _renew(self, leases: dict[str, Lease], now: float, force: bool = False
               ) -> list[Change]:
        """Renew the leases due (all with ``force``) in one journal transaction: one
        commit per round, not one per lease (a thousand commits a round, each an fsync,
        held the journal's write lock from the ticks' records); each still fenced by its
        own row, so one that moved is reported lost and the others are renewed."""
        due = []
        for module, lease in leases.items():
            ttl = self.ttl_of(module)
            if force or now >= lease.expires_at - ttl + RENEW_AFTER * ttl:
                due.append((lease, ttl))
        if not due:
            return []
        try:
            done = self.journal.renew_leases(due, now)
        except JournalError as err:
            log.warning("cannot renew %d lease(s) (%s); they run out at their expiry (the "
                        "first at %.3f)", len(due), err, min(lease.expires_at
                                                             for lease, _ in due))
            return []
        for module, lease in done.renewed.items():
            self._held[module] = self._last[module] = lease
        out = []
        for module, refused in done.lost.items():
            log.warning("lease renewal refused: %s", refused)
            out.append(self._lost(module, refused.holder or ""))
        return out

    def _take(self, free: set[str], rows: dict[str, Lease], now: float, room: int
              ) -> list[Change]:
        out = []
        for module in sorted(free, key=self._rank_first):
            if room <= 0:
                break
            try:
                lease = self.journal.acquire_lease(module, self.instance,
                                                   self.ttl_of(module), now)
            except JournalError as err:
                log.warning("module %s: cannot take its lease: %s", module, err)
                continue
            if lease is None:
                continue
            self._held[module] = self._last[module] = lease
            out.append(Change(module, lease, rows.get(module)))
            room -= 1
        return out

    def _release(self, leases: dict[str, Lease], now: float) -> list[Change]:
        out = []
        for module, lease in leases.items():
            try:
                self.journal.release_lease(lease, now)
            except JournalError as err:
                log.warning("module %s: cannot release its lease (%s); it runs out at its "
                            "expiry", module, err)
            self._held.pop(module, None)
            out.append(Change(module, None, lease, ""))
        return out

    def _lost(self, module: str, to: str) -> Change:
        lease = self._held.pop(module)
        return Change(module, None, lease, to or "?")

    def lost(self, module: str, err: FencingError) -> None:
        """A fenced write of ``module`` was refused: the lease moved."""
        with self._lock:
            change = self._lost(module, err.holder or "") if module in self._held else None
        if change is not None:
            self._announce([change])
