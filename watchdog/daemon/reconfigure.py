"""The daemon's configuration (:mod:`watchdog.daemon.service`): each unit's schedule, the
engines, actuators and notification queues a loaded configuration asks for, and SIGHUP's
reload. Split out of service.py (module size only): the methods are
:class:`~watchdog.daemon.service.Daemon`'s, through the :class:`Reconfiguring` mixin.
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import TYPE_CHECKING

from watchdog.daemon import groupjobs, ticks
from watchdog.daemon.build import PluginSet, close_plugin
from watchdog.daemon.config import Loaded, load_config
from watchdog.daemon.scheduler import JobSpec, phases
from watchdog.engine import Engine, TickResult, journal_wait
from watchdog.errors import ConfigError, Issue
from watchdog.journal import open_journal
from watchdog.journal.base import Journal
from watchdog.notifiers.queue import NotificationQueue

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from watchdog.daemon.leases import Guard
    from watchdog.daemon.outbox import Outbox
    from watchdog.daemon.scheduler import Scheduler
    from watchdog.daemon.service import DaemonStats
    from watchdog.errors import SourceError
    from watchdog.groups.model import Group
    from watchdog.journal.records import Lease
    from watchdog.sdnotify import Notifier as SystemdNotifier

log = logging.getLogger("watchdog.daemon.service")  # the daemon's logger, as before the split


class Reconfiguring:
    """Configuration and reload: :class:`~watchdog.daemon.service.Daemon`'s (a mixin; the
    attributes are the daemon's, set in its ``__init__``)."""

    config_path: str | None
    env: Mapping[str, str]
    loaded: Loaded
    plugins: PluginSet
    systemd: SystemdNotifier
    stats: DaemonStats
    guard: Guard
    outbox: Outbox
    scheduler: Scheduler
    groups: dict[str, Group]
    units: list[str]
    engines: dict[str, Engine]
    queues: list[NotificationQueue]
    _notify_journal: Journal
    _pool: Journal | None
    _phases: dict[str, float]
    _every: dict[str, float]
    _locks: dict[str, threading.Lock]
    _results: dict[str, TickResult]
    _fence: Callable[[str], Lease]
    _source_failed: Callable[[str, SourceError], None]

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
