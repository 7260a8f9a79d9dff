"""The daemon's lifecycle (:mod:`watchdog.daemon.service`): start-up recovery, the main
thread's loop (signals, reloads, the systemd watchdog ping), shutdown. Split out of
service.py (module size only): the methods are :class:`~watchdog.daemon.service.Daemon`'s,
through the :class:`Lifecycle` mixin.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING

from watchdog.daemon.build import close_plugin
from watchdog.daemon.reconfigure import Reconfiguring
from watchdog.daemon.startlog import resumed

if TYPE_CHECKING:
    import threading

    from watchdog.clock import Clock
    from watchdog.daemon.observe import Observability
    from watchdog.sdnotify import WatchdogPinger

log = logging.getLogger("watchdog.daemon.service")  # the daemon's logger, as before the split


class Lifecycle(Reconfiguring):
    """Start, serve, stop: :class:`~watchdog.daemon.service.Daemon`'s (a mixin; the
    attributes are the daemon's, set in its ``__init__``)."""

    clock: Clock
    instance: str
    observe: Observability
    pinger: WatchdogPinger
    _busy: dict[str, float]
    _wake: threading.Event
    _stop_asked: bool
    _reload_asked: bool
    _stopping: bool

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
