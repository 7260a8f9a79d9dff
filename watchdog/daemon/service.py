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

import functools
import logging
import math
import os
import signal
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType

from watchdog.clock import Clock, SystemClock
from watchdog.daemon import claims, groupjobs, slots, ticks
from watchdog.daemon.alerting import alert_notifications
from watchdog.daemon.build import PluginSet, close_plugin
from watchdog.daemon.config import Loaded, load_config
from watchdog.daemon.leases import (
    Change,
    Guard,
    GuardCollector,
    guard_notification,
    instance_name,
    lease_ttl,
)
from watchdog.daemon.observe import Observability
from watchdog.daemon.outbox import Outbox
from watchdog.daemon.scheduler import JobSpec, Scheduler, phases
from watchdog.daemon.startlog import resumed
from watchdog.daemon.stuck import OnStuck
from watchdog.engine import Engine, TickResult, journal_wait
from watchdog.errors import ConfigError, Issue, JournalError, SourceError
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


class Daemon:
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
        self.scheduler = Scheduler(self._job, max_workers=len(self.units) + 1)
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
                if group is None:
                    result = engine.tick(module, now, store=store)
                    notes = alert_notifications(engine.module(module), before, result)
                else:  # its members' alerts, named as theirs
                    result, notes = groupjobs.tick(engine, group, now, before)
                if result.decisions:
                    log.info("module %s: journaled %s under lease epoch %d", module,
                             ", ".join(d.action.value for d in result.decisions),
                             lease.epoch)
                self.observe.tick(result, self.clock.monotonic() - began)
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

    # configuration -----------------------------------------------------------------------

    def _spec(self, module: str) -> JobSpec:
        config = self.loaded.config
        if config.clock.kind == "replay":
            return JobSpec(config.clock.pace, align=False)
        every = groupjobs.interval(self.loaded, module)
        return JobSpec(every, config.schedule.align, config.schedule.offset,
                       config.schedule.misfire_grace,
                       self._phases.get(module, 0.0) if config.schedule.align else 0.0)

    def _adopt(self, loaded: Loaded, plugins: PluginSet) -> None:
        """Use ``loaded``/``plugins`` (callers hold every module lock)."""
        rules = ticks.rules_with_intervals(loaded)
        self.groups = groupjobs.daemon_groups(loaded.rules, loaded.module_names)
        self.units = groupjobs.units(loaded.module_names, self.groups)
        # many modules: their ticks spread over the first part of the interval
        by_interval: dict[float, list[str]] = {}
        self._every = {name: groupjobs.interval(loaded, name) for name in self.units}
        for name in self.units:
            by_interval.setdefault(self._every[name], []).append(name)
        self._phases = {name: phase for every, names in by_interval.items()
                        for name, phase in phases(names, every).items()}
        for name in self.units:
            engine = self.engines.get(name)
            if engine is None:
                self.engines[name] = Engine(
                    rules, self._engine_journal(loaded, name), plugins.source,
                    outbox=self.outbox,
                    on_source_error=functools.partial(self._source_failed, name),
                    fence=self._fence, on_fenced=self.guard.lost)
                self._locks.setdefault(name, threading.Lock())
            else:
                engine.rules, engine.source = rules, plugins.source
                if self._pool is None and groupjobs.interval(loaded, name) != \
                        groupjobs.interval(self.loaded, name):  # the busy timeout follows
                    engine.journal.close()
                    engine.journal = self._engine_journal(loaded, name)
        for name in set(self.engines) - set(self.units):
            removed = self.engines.pop(name)
            if self._pool is None:
                removed.journal.close()
            self._results.pop(name, None)
        self.guard.set_modules(self.units)
        self.outbox.set_actuators(plugins.actuators)
        kept = {id(q.notifier): q for q in self.queues}
        self.queues = [kept.pop(id(n)) if id(n) in kept
                       else NotificationQueue(self._notify_journal, n)
                       for n in plugins.notifiers]
        for queue in kept.values():
            queue.close()
        self.loaded, self.plugins = loaded, plugins
        logging.getLogger("watchdog").setLevel(loaded.config.log_level.upper())
        # a replay's ticks overrun its pace on purpose: APScheduler's skip warnings are noise
        logging.getLogger("apscheduler.scheduler").setLevel(
            logging.ERROR if loaded.config.clock.kind == "replay" else logging.WARNING)

    def _engine_journal(self, loaded: Loaded, name: str) -> Journal:
        if self._pool is not None:
            return self._pool
        return open_journal(loaded.db, busy_timeout=journal_wait(groupjobs.interval(loaded, name)))

    def reload(self) -> bool:
        """Re-read config and rules; an invalid set is rejected and the old one runs on."""
        self.systemd.reloading()
        try:
            loaded = load_config(self.config_path)
            if loaded.db != self.loaded.db:
                raise ConfigError([Issue(loaded.file, loaded.line_of("db"), "db: the "
                                         "journal cannot change on reload; restart instead")])
            plugins = PluginSet.build(loaded, previous=self.plugins, env=self.env)
        except ConfigError as err:
            self.stats.rejected_reloads += 1
            for issue in err.issues:
                log.error("reload rejected: %s", issue)
            log.error("reload rejected (%d problem(s)); the previous configuration keeps "
                      "running", len(err.issues))
            self.systemd.ready(status=f"reload rejected: {err.issues[0]}")
            return False
        old = self.plugins
        units = groupjobs.units(loaded.module_names,
                                groupjobs.daemon_groups(loaded.rules, loaded.module_names))
        names = sorted(set(self._locks) | set(units))
        for name in names:
            self._locks.setdefault(name, threading.Lock()).acquire()
        try:
            self._adopt(loaded, plugins)
        finally:
            for name in names:
                self._locks[name].release()
        for name in self.scheduler.modules:
            if name not in self.units:
                self.scheduler.remove(name)
        for name in self.units:
            self.scheduler.plan(name, self._spec(name))
        for instance in old.unused_by(plugins):
            close_plugin(instance)
        for queue in self.queues:
            queue.start()
        self.stats.reloads += 1
        log.info("reloaded %s: modules %s; rules %s", loaded.file,
                 ", ".join(loaded.module_names), ", ".join(loaded.rules.files))
        self.systemd.ready(status=f"reloaded: {len(loaded.module_names)} modules")
        return True

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.observe.start()  # a port in use fails the start, before anything else runs
        for line in resumed(self.outbox.journal, self.loaded):
            log.info("start-up: %s", line)
        pending = len(self.outbox.journal.decisions(unapplied_only=True))
        if pending:
            log.info("start-up: applying %d journaled decision(s) not confirmed as applied",
                     pending)
        self.guard.start()  # the modules this instance guards, before anything is applied
        held = self.guard.held()
        log.info("instance %s: %s", self.instance,
                 f"guarding {', '.join(sorted(held))}" if held else
                 "standby: every module is guarded by another instance "
                 f"({', '.join(self.guard.live()[:5])}); taking over when a lease runs out")
        self.outbox.deliver(force=True)  # before the first tick
        for name in self.units:
            self.scheduler.plan(name, self._spec(name))
        self.scheduler.start()
        self.outbox.start()
        for queue in self.queues:
            queue.start()
        log.info("daemon ready: config %s, journal %s, modules %s", self.loaded.file,
                 self.loaded.db, ", ".join(self.loaded.module_names))
        self.systemd.ready(status=f"{len(self.loaded.module_names)} modules loaded")

    def stop(self) -> None:
        """Finish the running ticks, flush the outbox, close everything."""
        self._stopping = True
        self.systemd.stopping()
        self.scheduler.shutdown(wait=True)
        self.outbox.stop()
        self.outbox.deliver()  # what the last ticks journaled
        self.guard.stop(release=True)  # a standby takes over at its next round
        self.guard.journal.close()
        for queue in self.queues:
            queue.close()
        for engine in self.engines.values():
            if self._pool is None:
                engine.journal.close()
        if self._pool is not None:
            self._pool.close()
        self.outbox.close()
        self.observe.stop()
        self._notify_journal.close()
        for instance in self.plugins.instances():
            close_plugin(instance)
        log.info("daemon stopped")

    def request_stop(self) -> None:
        self._stop_asked = True
        self._wake.set()

    def request_reload(self) -> None:
        self._reload_asked = True
        self._wake.set()

    def _signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.request_reload()
        else:
            self.request_stop()

    def healthy(self) -> bool:
        """What the systemd watchdog ping vouches for: ticks are not hung, and the outbox
        keeps making rounds (a hung actuator does not hold a round: its calls are
        abandoned after their deadline, so a round that stops is a bug worth a restart)."""
        limit = 2 * (self.pinger.interval or 15.0)
        started = min(self._busy.values(), default=None)
        hung = started is not None and self.clock.monotonic() - started > limit
        outbox = self.outbox.healthy(within=limit + self.loaded.config.outbox.deadline)
        return self.scheduler.running and outbox and not hung

    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop; the exit status."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._signal)
        self.start()
        while not self._stop_asked:
            self._wake.wait(self.pinger.max_wait(1.0))
            self._wake.clear()
            if self._reload_asked and not self._stop_asked:
                self._reload_asked = False
                try:
                    self.reload()
                except Exception:  # a bug or an unreadable journal: keep what runs
                    log.exception("reload failed; the previous configuration keeps running")
                    self.systemd.ready(status="reload failed; see the log")
            if self.healthy():
                self.pinger.tick()
        self.stop()
        return 0
