"""Ask the source for each metric of a module, both versions, now: what comes back.

For ``rollout-watchdog query`` and ``run --check``. With a source that runs PromQL (the
``prometheus`` source: it has ``query`` and the metric a ``query`` template), each
rendered query runs as an instant query, so the answer shows how many series match (a
template must give one per version) and the last value; with any other source, one
``fetch`` of the last few intervals, and its failed reads (``source.errors``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from watchdog.config.schema import Module
from watchdog.errors import EmptyResult, SourceError, SourceUnavailable
from watchdog.model import Version

VERSIONS = (Version.V1, Version.V2)


@dataclass(frozen=True)
class Answer:
    metric: str
    version: str
    query: str | None  # the rendered PromQL, where the source runs PromQL
    series: int  # how many series (PromQL) or 1 when a sample came back, else 0
    last: tuple[float, float] | None  # (time, value) of the newest sample
    error: SourceError | None = None
    pending: bool = False  # no sample yet and no error: a counter needs a second read

    @property
    def empty(self) -> bool:
        return (self.error is None and self.series == 0 and not self.pending) \
            or isinstance(self.error, EmptyResult)

    @property
    def unreachable(self) -> bool:
        return isinstance(self.error, SourceUnavailable)


def probe(source: object, module: Module, now: float, metrics: Iterable[str] | None = None,
          budget: float = 10.0) -> list[Answer]:
    """One answer per (metric, version), metrics in the module's order; every query is
    done within about ``budget`` seconds (retries included)."""
    wanted = list(module.metrics) if metrics is None else list(metrics)
    unknown = [m for m in wanted if m not in module.metrics]
    if unknown:
        raise ValueError(f"module {module.name} declares no metric {', '.join(unknown)} "
                         f"(it has: {', '.join(module.metrics)})")
    query = getattr(source, "query", None)
    if callable(query) and any(module.metrics[m].query for m in wanted):
        return _promql(source, module, now, wanted, budget)
    return _fetched(source, module, now, wanted)


def _promql(source: object, module: Module, now: float, wanted: list[str],
            budget: float) -> list[Answer]:
    from watchdog.sources.prometheus import render

    until = time.monotonic() + budget
    out: list[Answer] = []
    for metric in wanted:
        template = module.metrics[metric].query
        for version in VERSIONS:
            if template is None:
                out.append(Answer(metric, version.value, None, 0, None,
                                  SourceError("no query template for this metric")))
                continue
            rendered = render(template, module.name, version.value)
            try:
                found = source.query(rendered, now, until=until)  # type: ignore[attr-defined]
            except SourceError as err:
                out.append(Answer(metric, version.value, rendered, 0, None, err))
                continue
            points = [p for s in found for p in s.points]
            last = max(points, default=None)
            out.append(Answer(metric, version.value, rendered, len(found), last))
    return out


def _fetched(source: object, module: Module, now: float, wanted: list[str]) -> list[Answer]:
    from watchdog.daemon.sourcewatch import failed_reads

    span = max(3 * module.interval, 60.0)
    try:
        store = source.fetch(module, now - span, now)  # type: ignore[attr-defined]
    except SourceError as err:
        return [Answer(m, v.value, None, 0, None, err) for m in wanted for v in VERSIONS]
    errors = failed_reads(source, module.name)
    out: list[Answer] = []
    for metric in wanted:
        for version in VERSIONS:
            series = store.get(version, metric)
            last = None if len(series.t) == 0 else (float(series.t[-1]), float(series.v[-1]))
            error = errors.get((version.value, metric)) or next(
                (e for (v, _), e in errors.items() if v == version.value), None)
            out.append(Answer(metric, version.value, None, 0 if last is None else 1, last,
                              error, pending=last is None and error is None))
    return out
