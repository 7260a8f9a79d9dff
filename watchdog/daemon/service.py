"""The daemon: what runs where, start-up recovery, signals, reload, shutdown.

Threads:

* main: signals (SIGTERM/SIGINT stop, SIGHUP reload), reloads, systemd notifications
  (READY, RELOADING, STOPPING, the WATCHDOG ping while ticks are not hung);
* APScheduler's loop, and its pool (one worker per module) running :meth:`Daemon.tick`;
  each module has its own journal connection and a lock (no two ticks of one module, and
  a reload swaps the configuration while no tick runs);
* the outbox worker (:mod:`watchdog.daemon.outbox`): hands journaled decisions to one
  lane per actuator (:mod:`watchdog.daemon.lanes`), each applying in its own thread with
  a deadline per call; a tick only journals and wakes it;
* one sender per notifier (:class:`~watchdog.notifiers.queue.NotificationQueue`).

Start-up: config and rules validated, plugins built (unknown names fail here), journal
opened (migrated), every journaled-but-unapplied decision applied again, then the first
ticks. SIGTERM: no new tick starts, the running ones finish, the outbox applies what they
journaled (each call bounded by its deadline), exit status 0.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from watchdog.clock import Clock, SystemClock
from watchdog.daemon import claims, groupjobs, slots, ticks
from watchdog.daemon.alerting import alert_notifications
from watchdog.daemon.build import PluginSet
from watchdog.daemon.config import Loaded, load_config
from watchdog.daemon.leases import (
    Change,
    Guard,
    GuardCollector,
    guard_notification,
    instance_name,
    lease_ttl,
)
from watchdog.daemon.lifecycle import Lifecycle
from watchdog.daemon.observe import Observability
from watchdog.daemon.outbox import Outbox
from watchdog.daemon.scheduler import Scheduler
from watchdog.daemon.stuck import OnStuck
from watchdog.engine import Engine, TickResult, journal_wait
from watchdog.errors import JournalError, SourceError
from watchdog.journal import is_postgres, open_journal
from watchdog.journal.base import Journal
from watchdog.journal.records import JournaledDecision, Lease
from watchdog.model import Decision
from watchdog.notifiers import Notification
from watchdog.notifiers.queue import NotificationQueue
from watchdog.sdnotify import Notifier as SystemdNotifier
from watchdog.sdnotify import WatchdogPinger
from watchdog.sourcestate import SOURCE_KEY, record_source

log = logging.getLogger(__name__)

STATUS_EVERY_TICK = 50
"""Up to this many modules the systemd status line is sent after every tick."""


@dataclass
class DaemonStats:
    ticks: int = 0
    tick_errors: int = 0
    reloads: int = 0
    rejected_reloads: int = 0


class Daemon(Lifecycle):
    def __init__(self, config_path: str | None, *, clock: Clock | None = None,
                 env: Mapping[str, str] | None = None,
                 systemd: SystemdNotifier | None = None) -> None:
        self.config_path = config_path
        self.clock: Clock = clock or SystemClock()
        self.env = os.environ if env is None else env
        self.loaded: Loaded = load_config(config_path)
        self.plugins = PluginSet.build(self.loaded, env=self.env)
        Path(self.loaded.state_dir).mkdir(parents=True, exist_ok=True)
        self.systemd = systemd or SystemdNotifier(self.env)
        self.pinger = WatchdogPinger.from_env(self.systemd, self.env)
        self.stats = DaemonStats()
        # enqueueing a notification never waits long on a locked journal (it is then held
        # in memory by the queue)
        wait = min([journal_wait(self.loaded.interval_of(m)) for m in self.loaded.module_names],
                   default=journal_wait(1.0))
        self._notify_journal = open_journal(self.loaded.db, busy_timeout=wait)
        self.pg = is_postgres(self.loaded.db)
        # PostgreSQL: the engines share a few connections (watchdog.journal.pool)
        self._pool: Journal | None = None
        if self.pg:
            from watchdog.journal.pool import JournalPool

            self._pool = JournalPool(self.loaded.db, busy_timeout=wait).as_journal()
        self.instance = instance_name(self.loaded.config.lease.instance, self.env)
        # module groups run as one job each (daemon/groupjobs.py): the units
        self.groups = groupjobs.daemon_groups(self.loaded.rules, self.loaded.module_names)
        self.units = groupjobs.units(self.loaded.module_names, self.groups)
        self._phases: dict[str, float] = {}  # per unit, its place in the interval (_adopt)
        self._every: dict[str, float] = {}  # per unit, its interval (_adopt)
        self.guard = Guard(open_journal(self.loaded.db, busy_timeout=wait), self.instance,
                           self.units, self._lease_ttl, self.clock,
                           spread=self.pg, on_change=self._lease_changed)
        self.queues: list[NotificationQueue] = []
        box = self.loaded.config.outbox
        self.outbox = Outbox(self.loaded.db, self.plugins.actuators,
                             poll_interval=box.poll_interval, backoff=box.backoff,
                             max_backoff=box.max_backoff, deadline=box.deadline,
                             stuck_after=box.stuck_after, on_applied=self._notify,
                             on_failure=self._actuator_failed,
                             on_stuck=self._stuck(stuck=True),
                             on_unstuck=self._stuck(stuck=False), owns=self._owns)
        self.engines: dict[str, Engine] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._results: dict[str, TickResult] = {}
        self._said: set[tuple[str, str]] = set()
        self._fetch_errors: dict[str, SourceError] = {}  # this tick's failed fetch, per module
        self._busy: dict[str, float] = {}
        self._epochs: dict[str, int] = {}  # per module, the lease epoch of its last tick
        # the display-only settings (source:, verdict:) as this process last read or wrote
        # them: a tick compares with these instead of reading the journal twice; a
        # module's are dropped when its lease changes hands (another guard wrote them)
        self._shown: dict[str, object] = {}
        self._adopt(self.loaded, self.plugins)
        self.observe = Observability(self.loaded, self.clock, self.queues, self.env)
        self.observe.registry.register(GuardCollector(self.guard))
        if self.observe.server is not None:
            self.observe.server.app.state.lease_state = self.guard.state  # /health
        self.scheduler = Scheduler(self._job, max_workers=len(self.units) + 1,
                                   on_skip=self.observe.telemetry.tick_skipped)
        self.slots = slots.Slots()
        self._status_at = -math.inf
        self._wake = threading.Event()
        self._stop_asked = False
        self._reload_asked = False
        self._stopping = False

    # the tick ----------------------------------------------------------------------------

    def tick(self, module: str) -> TickResult | None:
        """One evaluation of ``module`` now (None: nothing to do); what the scheduler runs."""
        with self._locks[module]:
            engine = self.engines.get(module)
            if engine is None:  # removed by a reload; its job goes next
                return None
            group = self.groups.get(module)
            lease = self.guard.for_tick(module)
            if lease is None:
                return None  # another instance guards it (or nobody can reach the journal)
            if self._epochs.get(module) != lease.epoch:
                self._epochs[module] = lease.epoch
                log.info("module %s: first tick under lease epoch %d", module, lease.epoch)
            cp = engine.checkpoint(module)
            now = ticks.tick_time(self.loaded.config.clock, self.clock, cp)
            if now is None:
                self._once(module, "replay-end", "module %s: the replay is over", module)
                return None
            if cp is not None and claims.adopt(engine, module, now):
                cp = engine.checkpoint(module)  # another instance's rollback, adopted
            if cp is None:
                if not self._auto_start(module):
                    self._once(module, "no-rollout", "module %s: no rollout yet (auto_start "
                               "is off); start one with `rollout-watchdog start`", module)
                    return None
                if (engine.kill_switch() if group is None
                        else groupjobs.kill_switch(engine, group)):
                    self._once(module, "kill", "module %s: not starting its rollout while "
                               "the kill switch is on", module)
                    return None
            began = self.clock.monotonic()
            before = dict(cp.alerts) if cp is not None else {}
            self._fetch_errors.pop(module, None)
            # the source's reads (I/O) outside a judging slot; judging, deciding and
            # journaling in one (daemon/slots.py); the duration observed covers both
            store = engine.fetch(module, now, cp) if group is None and cp is not None \
                else None
            with self.slots.hold(slots.patience(self._every.get(module, 1.0))):
                members: list[TickResult] = []
                if group is None:
                    result = engine.tick(module, now, store=store)
                    notes = alert_notifications(engine.module(module), before, result)
                else:  # its members' alerts, named as theirs
                    result, notes, members = groupjobs.tick(engine, group, now, before)
                if result.decisions:
                    log.info("module %s: journaled %s under lease epoch %d", module,
                             ", ".join(d.action.value for d in result.decisions),
                             lease.epoch)
                took = self.clock.monotonic() - began
                self.observe.tick(result, took)
                for member in members:  # each member's verdict and rules, on /metrics
                    self.observe.tick(member, took)
                self._after(engine, module, now, result, notes)
            return result

    def _after(self, engine: Engine, module: str, now: float, result: TickResult,
               notes: list[Notification]) -> None:
        """What a tick keeps beside its decisions: source health, notes, last verdict."""
        health = self.observe.sources.after_tick(module, now, engine.source,
                                                 self._fetch_errors.pop(module, None))
        # display-only writes wait for nothing while the journal refuses this module's
        # records (locked by another process): each would hold the tick for the journal's
        # wait again, and the next evaluation, a rollback's, behind it
        refused = engine.journal_refused(module)
        if not refused:
            record_source(engine.journal, module, health, now, self._shown)
        for note in notes:
            for queue in self.queues:
                queue.enqueue(note)
        self.stats.ticks += 1
        if not refused:
            ticks.record_verdict(engine.journal, result, self._shown)
        self._results[module] = result

    def _job(self, module: str) -> None:
        if self._stopping:
            return
        self._busy[module] = self.clock.monotonic()
        try:
            self.tick(module)
        except Exception as err:  # the job boundary: log, count, keep state, go on
            self.stats.tick_errors += 1
            log.error("module %s: tick failed: %s: %s", module, type(err).__name__, err,
                      exc_info=not isinstance(err, JournalError | sqlite3.Error))
        finally:
            self._busy.pop(module, None)
        self._status()

    def _status(self) -> None:
        """The systemd status line (it lists every module): after each tick with a few
        modules; with many, at most once a second (built after each of a thousand ticks,
        it cost more CPU than judging them); nothing without systemd to tell."""
        if not self.systemd.enabled:
            return
        now = self.clock.monotonic()
        if len(self.units) > STATUS_EVERY_TICK and now - self._status_at < 1.0:
            return
        self._status_at = now
        held = self.guard.held()
        self.systemd.status(f"{self.instance}: " + (
            f"guarding {len(held)} of {len(self.units)} modules and groups; "
            + ticks.status_line({m: r for m, r in self._results.items() if m in held})
            if held else "standby (another instance holds every lease)"))

    def _owns(self, module: str) -> bool:
        """The outbox applies a decision this instance leases (a member's: its group's)."""
        return self.guard.holds(groupjobs.owner(self.groups, module))

    def _fence(self, unit: str) -> Lease:
        """The lease a write of ``unit`` carries (a group's also covers its members)."""
        lease, group = self.guard.fence(unit), self.groups.get(unit)
        return lease if group is None else replace(lease, covers=tuple(group.names))

    def _lease_ttl(self, module: str) -> float:
        return lease_ttl(self._spec(module).interval, self.loaded.config.lease.ttl)

    def _lease_changed(self, change: Change) -> None:
        """The guard took (or lost) a module's lease: apply what its last guard left
        unconfirmed, tick it at once, and say so where people look."""
        for key in (SOURCE_KEY, ticks.VERDICT_KEY):
            self._shown.pop(key.format(module=change.module), None)
        if change.lease is None:
            self._results.pop(change.module, None)
            return
        self.outbox.wake()
        if self.scheduler.running:
            self.scheduler.run_now(change.module)
        if change.took_over:
            note = guard_notification(change, self.instance, self.clock.now())
            for queue in self.queues:
                queue.enqueue(note)

    def _auto_start(self, module: str) -> bool:
        if module in self.groups:  # a group starts itself when all its members would
            return all(self._auto_start(m) for m in self.groups[module].names)
        return any(m.name == module and m.auto_start for m in self.loaded.config.modules)

    def _once(self, module: str, what: str, message: str, *args: object) -> None:
        if (module, what) not in self._said:
            self._said.add((module, what))
            log.info(message, *args)

    def _actuator_failed(self, actuator: str) -> None:
        self.observe.telemetry.actuator_failure(actuator)

    def _source_failed(self, module: str, error: SourceError) -> None:
        self._fetch_errors[module] = error
        self.observe.telemetry.source_error(self.loaded.config.source.plugin, error)

    def _notify(self, jd: JournaledDecision) -> None:
        """Called by the outbox (under its lock) once a decision is applied."""
        for queue in self.queues:
            queue.enqueue(ticks.notification(jd, self.loaded.config.api.public_url))

    def _stuck(self, stuck: bool) -> OnStuck:
        """The outbox's announcement of a safety action not applied in time (or, later,
        applied after all)."""
        def announce(decision: Decision, key: str, waited: float, errors: str) -> None:
            note = ticks.stuck_notification(decision, key, waited, errors, stuck)
            for queue in self.queues:
                queue.enqueue(note)
        return announce

    # configuration: watchdog/daemon/reconfigure.py (the Reconfiguring mixin); start-up,
    # the main loop and shutdown: watchdog/daemon/lifecycle.py (the Lifecycle mixin)
