"""What the source gave each tick: queries that found nothing or failed, and a source down.

A fetch returns the metrics it could read and keeps, per module, the (version, metric)
reads that failed (``source.errors[module]``: an empty result, a rejected query, a missed
deadline). Without this, a misspelled metric in a PromQL template only showed as
"0 V2 samples in window" forever. After each tick :class:`SourceWatch`:

* counts each failed read in ``watchdog_source_errors_total{kind}`` (a fetch that failed
  as a whole is counted once by the daemon's ``on_source_error`` instead);
* logs a WARNING when a read starts failing and a line when it reads again, once per
  episode, not every tick (a missed deadline is the source's own once-per-episode line);
  an empty result only once it is empty at two fetches in a row: a Prometheus that has
  scraped once has no ``rate()`` yet, and at a daemon's start-up (1,000 modules, batched)
  that said "the query finds no series" 8,000 times, then "reads again" 8,000 times, one
  interval later; a misspelled metric stays empty and is said a tick later;
* gives the module's source state for the journal (``source:{module}``: ``ok``,
  ``partial`` with the failing reads, or ``down`` with the error), written when it
  changes, so ``status`` and the API say the source is down instead of showing the last
  "0 samples" reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from watchdog.errors import EmptyResult, SourceError
from watchdog.telemetry import Telemetry, error_kind

log = logging.getLogger("watchdog.daemon")

_LATE = "timeout"  # DeadlineExceeded: logged by the source itself, once per episode
_EMPTY = "empty_result"  # said when it is still empty at the next fetch


def _reads_of(source: object, module: str) -> Mapping[Any, Any] | None:
    errors = getattr(source, "errors", None)
    found = errors.get(module) if isinstance(errors, Mapping) else None
    return found if isinstance(found, Mapping) else None


def failed_reads(source: object, module: str) -> dict[tuple[str, str], SourceError]:
    """(version, metric) -> error of the source's last fetch for ``module``."""
    found = _reads_of(source, module)
    if found is None:
        return {}
    return {(str(getattr(v, "value", v)), str(m)): e for (v, m), e in found.items()
            if isinstance(e, SourceError)}


def describe(metric: str, version: str, error: SourceError) -> str:
    if isinstance(error, EmptyResult):
        return (f"{metric} {version}: the query finds no series (empty result; check the "
                f"metric name and the module/version labels)")
    return f"{metric} {version}: {error_kind(error)}: {error}"


class SourceWatch:
    def __init__(self, telemetry: Telemetry, plugin: str) -> None:
        self.telemetry = telemetry
        self.plugin = plugin
        self._failing: dict[str, dict[tuple[str, str], str]] = {}  # module -> key -> kind
        self._said: dict[str, set[tuple[str, str]]] = {}  # module -> keys warned about
        self._down: dict[str, bool] = {}
        self._seen: dict[str, int] = {}  # module -> id of the errors mapping last read
        self._state: dict[str, dict[str, Any]] = {}

    def after_tick(self, module: str, at: float, source: object,
                   fetch_error: SourceError | None) -> dict[str, Any]:
        """Count and log the tick's failed reads; the module's source state now. A tick
        that fetched nothing (a rollout's first) leaves the source's mapping of the last
        fetch in place: it is not counted again."""
        mapping = _reads_of(source, module)
        if fetch_error is None and mapping is not None and id(mapping) == self._seen.get(
                module) and module in self._state:
            return self._state[module]
        self._seen[module] = id(mapping)
        reads = failed_reads(source, module)
        if fetch_error is None:  # a failed fetch is counted once, by on_source_error
            for error in reads.values():
                self.telemetry.source_error(self.plugin, error)
        before = self._failing.get(module, {})
        now = {key: error_kind(e) for key, e in reads.items()}
        said = self._said.setdefault(module, set())
        for (version, metric), error in reads.items():
            key, kind = (version, metric), now[(version, metric)]
            if kind == _LATE or (before.get(key) == kind and key in said):
                continue  # the source's own line / said in this episode
            if kind == _EMPTY and before.get(key) != kind:
                said.discard(key)  # empty once: said if still empty at the next fetch
                continue
            said.add(key)
            log.warning("module %s: %s (logged once until it reads again; "
                        "`rollout-watchdog query %s --metric %s` shows what it returns)",
                        module, describe(metric, version, error), module, metric)
        for version, metric in sorted(set(before) - set(now)):
            if (version, metric) in said:
                said.discard((version, metric))
                log.info("module %s: %s %s reads again", module, metric, version)
        self._failing[module] = now
        was_down = self._down.get(module, False)
        self._down[module] = fetch_error is not None
        if fetch_error is not None and not was_down:
            log.warning("module %s: source %s down: %s (holding; logged once until it "
                        "answers again)", module, self.plugin, fetch_error)
        elif fetch_error is None and was_down:
            log.info("module %s: source %s answers again", module, self.plugin)
        problems = [describe(m, v, reads[(v, m)]) for v, m in sorted(reads)]
        state: dict[str, Any] = {"state": "ok", "source": self.plugin}
        if fetch_error is not None:
            state = {"state": "down", "source": self.plugin, "error": str(fetch_error),
                     "kind": error_kind(fetch_error), "problems": problems[:10]}
        elif reads:
            state = {"state": "partial", "source": self.plugin, "problems": problems[:10]}
        self._state[module] = state
        return state
