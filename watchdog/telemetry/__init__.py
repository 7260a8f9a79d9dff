"""Prometheus telemetry: the daemon's instruments and the journal read at scrape time.

Wiring (the daemon)::

    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    registry.register(JournalCollector(db_path, clock.now, [("slack", queue)]))
    register_runtime_collectors(registry)  # process_*, python_info, python_gc_*
    ...
    started = clock.monotonic()
    result = engine.tick(module, clock.now())
    telemetry.observe_tick(result, clock.monotonic() - started)

``/metrics`` of the HTTP API (:mod:`watchdog.api`) serves the same registry.
"""

from watchdog.telemetry.hooks import RULE_STATES, LastVerdict, Telemetry, error_kind
from watchdog.telemetry.journal import BASELINE_STATS, JournalCollector, Pending
from watchdog.telemetry.runtime import register_runtime_collectors

__all__ = ["BASELINE_STATS", "RULE_STATES", "JournalCollector", "LastVerdict", "Pending",
           "Telemetry", "error_kind", "register_runtime_collectors"]
