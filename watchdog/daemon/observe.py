"""Telemetry and the HTTP API inside the daemon: ``/metrics``, ``/status``, control.

The daemon's instruments (:class:`~watchdog.telemetry.Telemetry`: each tick's verdict and
duration, source and actuator failures) and the journal collector share one Prometheus
registry, which the HTTP API (:mod:`watchdog.api`) serves when ``api.enabled`` is set in
watchdog.yaml. Host and port come from there, else ``WATCHDOG_API_HOST``/``_PORT``; the
control token from ``WATCHDOG_API_TOKEN``, ``WATCHDOG_API_TOKEN_FILE`` or the systemd
credential ``api_token`` (never logged). The API keeps the rules and modules it started
with; a reload does not change what it shows for them (restart for that).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from watchdog.clock import Clock
from watchdog.daemon.config import Loaded
from watchdog.daemon.sourcewatch import SourceWatch
from watchdog.engine import TickResult
from watchdog.errors import Issue
from watchdog.model import RejectReason
from watchdog.notifiers.queue import NotificationQueue
from watchdog.telemetry import JournalCollector, Telemetry, register_runtime_collectors

if TYPE_CHECKING:
    from watchdog.api.history import TickHistory

log = logging.getLogger(__name__)


class Observability:
    def __init__(self, loaded: Loaded, clock: Clock, queues: Sequence[NotificationQueue],
                 env: Mapping[str, str]) -> None:
        self.registry = CollectorRegistry()
        self.telemetry = Telemetry(self.registry)
        self.rejections = RejectionLog()
        self.telemetry.declare([loaded.config.source.plugin],
                               [ref.plugin for ref in loaded.config.actuators])
        self.registry.register(JournalCollector(loaded.db, clock.now,
                                                [(q.notifier.name, q) for q in queues]))
        register_runtime_collectors(self.registry)  # process_*, python_info, python_gc_*
        self.sources = SourceWatch(self.telemetry, loaded.config.source.plugin)
        self.server = None
        self.history: TickHistory | None = None
        api = loaded.config.api
        if api.enabled:
            from watchdog.api import ApiServer, ApiSettings, create_app, load_api_token
            from watchdog.api.history import TickHistory

            settings = ApiSettings()
            token = load_api_token(settings, env)
            self.history = TickHistory()  # what the web view charts
            app = create_app(loaded.db, rules=loaded.rules, token=token, clock=clock,
                             modules=loaded.module_names, registry=self.registry,
                             telemetry=self.telemetry,
                             max_body_bytes=settings.max_body_bytes, history=self.history)
            port_from = (  # where the port came from, for "cannot listen"
                Issue(loaded.file, loaded.line_of("api", "port"), "api.port")
                if api.port is not None else
                Issue("WATCHDOG_API_PORT", 0, "WATCHDOG_API_PORT")
                if "WATCHDOG_API_PORT" in env else
                Issue(loaded.file, loaded.line_of("api"), "api.port (not set: the default)"))
            self.server = ApiServer(app, api.host or settings.host,
                                    settings.port if api.port is None else api.port, token,
                                    port_from=port_from)

    def start(self) -> None:
        if self.server is not None:
            self.server.start()
            log.info("HTTP API listening on %s", self.server.url)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def tick(self, result: TickResult, seconds: float) -> None:
        self.telemetry.observe_tick(result, seconds)
        self.rejections.note(result)
        if self.history is not None:
            self.history.note(result)


class RejectionLog:
    """Logs samples the judge dropped as missing data once per episode, not every tick.

    An episode of a module's (version, metric, reason) lasts while the data a tick judged
    (the source's lookback) holds such samples: a warning when it begins, a line when the
    judged data is clean again. The count of every sample is watchdog_samples_rejected_total.
    """

    def __init__(self) -> None:
        self._active: dict[str, set[tuple[str, str, str]]] = {}

    def note(self, result: TickResult) -> None:
        verdict = result.verdict
        if verdict is None:
            return
        module = result.module
        before = self._active.get(module, set())
        now: set[tuple[str, str, str]] = set()
        for r in verdict.rejected:
            key = (r.version.value, r.metric, r.reason.value)
            now.add(key)
            if key not in before:
                why = "not finite" if r.reason is RejectReason.NON_FINITE else \
                    f"outside its domain {r.domain} ({r.reason.value})"
                log.warning("module %s: %d %s samples of %s %s: dropped as missing data "
                            "(counted in watchdog_samples_rejected_total; logged again "
                            "when they are gone)", module, len(r.times), r.version.value.upper(),
                            r.metric, why)
        for version, metric, reason in sorted(before - now):
            log.info("module %s: no more %s samples of %s dropped (%s) in the judged data",
                     module, version.upper(), metric, reason)
        self._active[module] = now
