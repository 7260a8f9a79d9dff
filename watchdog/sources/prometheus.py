"""The ``prometheus`` source: PromQL over the Prometheus HTTP API.

Each declared metric's ``query`` is a PromQL template; ``{module}`` and ``{version}`` are
replaced by plain string replacement (PromQL's own braces are left alone). ``fetch`` runs one
range query (``/api/v1/query_range``, step = the module's interval) per metric and version,
so a baseline over a past window costs one request, not one per sample; ``instant`` runs
instant queries (``/api/v1/query``).

A slow Prometheus must not hold a tick: the queries of one ``fetch``/``instant`` run
concurrently (at most ``concurrency`` at once) under one deadline, ``deadline_fraction``
of the module's interval (default half, at least 1 s; a window that needs k requests per
query, a baseline over days, gets k deadlines). No retry starts after it. What arrived in
time is returned; a query that missed it is
:class:`~watchdog.sources.deadline.DeadlineExceeded` in ``errors`` (its metric is missing
for this tick), logged at WARNING once per episode. Its request runs on to ``timeout``
and the next fetch judges its answer (a tick old) instead of sending it again, so a
Prometheus slower than the deadline still gives every tick data, one tick late.

Many modules, one query (:mod:`watchdog.sources.batch`): planned by the daemon, a tick
reads a batchable template (:mod:`watchdog.sources.promql`) from a window cache shared by
the modules with that template and interval, filled by one range query per interval for
all of them and both versions, from the last point held. Templates that do not batch,
windows over ``batch_window``, and callers that did not ``plan`` (the CLI) query per module.

Errors: an unreachable server, a timeout, HTTP 429 or 5xx are :class:`SourceUnavailable`
and are retried with exponential backoff; a rejected query (HTTP 400/422, ``bad_data``) is
:class:`BadQuery`; a query with no series is :class:`EmptyResult`. A failing query does not
hide the others; ``fetch`` raises only when no query gave a sample. Credentials are
``SecretStr`` and never logged or shown in ``repr``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import httpx
from pydantic import Field, SecretStr

from watchdog.config.schema import Duration, Module
from watchdog.errors import EmptyResult, SourceError
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Version
from watchdog.pluginbase import PluginOptions
from watchdog.sources import deadline as dl
from watchdog.sources import promql
from watchdog.sources.base import SourceBase
from watchdog.sources.batch import Batches, GridSeries, Group
from watchdog.sources.promapi import PromSeries, one_series, worst
from watchdog.sources.promclient import PromClient

log = logging.getLogger(__name__)

ALL_VERSIONS = (Version.V1, Version.V2)
__all__ = ["PromSeries", "PrometheusSource", "render"]


Answer = Sequence[PromSeries | GridSeries]  # a query's series, or a batched answer's


def render(template: str, module: str, version: str) -> str:
    """The query for one module and version: ``{module}``/``{version}`` replaced, nothing
    else touched."""
    return template.replace("{module}", module).replace("{version}", version)


class PrometheusOptions(PluginOptions):
    """Options of the ``prometheus`` source."""

    url: str = Field(pattern=r"^https?://", description="Base URL of the Prometheus HTTP "
                     "API, e.g. http://127.0.0.1:9090 (http:// or https://).")
    timeout: Duration = Field(default=10.0, gt=0, description="One request's timeout.")
    retries: int = Field(default=2, ge=0, description="Retries of a request that failed "
                         "with an unreachable server, a timeout, HTTP 429 or 5xx.")
    backoff: Duration = Field(default=0.5, ge=0, description="First wait between retries "
                              "(doubles each retry).")
    max_backoff: Duration = Field(default=10.0, ge=0, description="Longest wait between "
                                  "retries.")
    token: SecretStr | None = Field(default=None, description="Bearer token (secret).")
    username: str | None = Field(default=None, description="Basic auth user name.")
    password: SecretStr | None = Field(default=None, description="Basic auth password "
                                       "(secret).")
    headers: dict[str, str] | None = Field(default=None, description="Extra HTTP headers.")
    max_points: int = Field(default=11_000, ge=2, description="Points per range request "
                            "(Prometheus refuses more than 11,000); longer windows are split.")
    deadline_fraction: float = Field(default=dl.DEFAULT_FRACTION, gt=0, le=1,
                                     description="Share of the module's interval a tick's "
                                     "queries may take together (at least 1 s).")
    concurrency: int = Field(default=20, ge=1, description="Queries in flight at once.")
    batch: bool = Field(default=True, description="In the daemon, one range query per "
                        "metric template and interval for all modules and both versions, "
                        "fetching only the points not held yet (templates that cannot be "
                        "batched, and longer windows, run per module).")
    recheck: Duration = Field(default=30.0, ge=0, description="A batched point fetched less "
                              "than this after its time is fetched again (a scrape may land "
                              "late).")
    batch_window: Duration = Field(default=21600.0, gt=0, description="Longest window a "
                                   "module's tick reads from the batch cache; longer ones "
                                   "(a gate over days) query per module.")


class PrometheusSource(PromClient, SourceBase):
    name = "prometheus"
    Options = PrometheusOptions
    secret_options = frozenset({"token", "password"})

    def __init__(self, url: str, timeout: float = 10.0, retries: int = 2, *,
                 token: SecretStr | str | None = None, username: str | None = None,
                 password: SecretStr | str | None = None,
                 headers: Mapping[str, str] | None = None,
                 backoff: float = 0.5, max_backoff: float = 10.0, max_points: int = 11_000,
                 deadline_fraction: float = dl.DEFAULT_FRACTION, concurrency: int = 20,
                 batch: bool = True, recheck: float = 30.0, batch_window: float = 21600.0,
                 transport: httpx.BaseTransport | None = None,
                 client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], float] = time.time) -> None:
        super().__init__(url, timeout, retries, token=token, username=username,
                         password=password, headers=headers, backoff=backoff,
                         max_backoff=max_backoff, max_points=max_points, transport=transport,
                         client=client, sleep=sleep)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be a whole number >= 1 (queries at once), "
                             f"got {concurrency!r}")
        self.deadline_fraction = dl.check_fraction(deadline_fraction)
        self.concurrency = concurrency
        self.batch, self.batch_window = batch, batch_window
        self._batches = Batches(lambda q, a, b, step, until: self.query_range(
            q, a, b, step, until=until), recheck=recheck, now=now)
        self._planned = False
        self._late = dl.LateLog(log)
        self._carry = dl.Carry()
        self.errors: dict[str, dict[tuple[Version, str], SourceError]] = {}
        """Per module, the (version, metric) problems of its last ``fetch``/``instant``
        that still returned the other metrics' samples."""
        self.last_errors: dict[tuple[Version, str], SourceError] = {}
        """The same for the last call, whichever module it was for."""

    def close(self) -> None:
        super().close()
        self._batches.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- batching (sources/batch.py) -------------------------------------------------------

    def plan(self, modules: Iterable[Module], offset: float = 0.0) -> None:
        """The modules the daemon ticks, on the grid of whole intervals plus ``offset``:
        their batchable templates are fetched once per interval for all of them."""
        self._planned = self.batch
        if self.batch:
            self._batches.plan(((m.name, b, m.interval) for m in modules
                                for _, b in promql.batchable(m)), offset)

    def batching(self, modules: Iterable[Module],
                 windows: Mapping[str, float] | None = None) -> list[str]:
        """``run --check``: which query templates batch, and why the others do not; with
        ``windows`` (seconds a tick of each module reads), the modules whose ticks read
        more than ``batch_window`` and so query per module, whatever their templates."""
        if not self.batch:
            return ["prometheus: batch is off: one query per module, metric and version"]
        modules = list(modules)
        lines = promql.summary(modules)
        return lines + self.too_long(modules, windows or {})

    def too_long(self, modules: Iterable[Module], windows: Mapping[str, float]) -> list[str]:
        """A line for the modules whose ticks read more than ``batch_window`` (seconds a
        tick reads, by module name): they query per module on every tick."""
        over = sorted((m.name for m in modules
                       if windows.get(m.name, 0.0) > self.batch_window), key=str)
        if not over:
            return []
        longest = max(windows[name] for name in over)
        shown = ", ".join(over[:5]) + (f" and {len(over) - 5} more" if len(over) > 5 else "")
        return [f"prometheus: {shown}: queried per module on every tick (a tick reads up "
                f"to {longest / 60:g} min, over batch_window {self.batch_window / 60:g} min; "
                f"raise the source's batch_window)"]

    @property
    def queries_sent(self) -> int:
        """Range requests sent by the batched fetches so far."""
        return self._batches.queries

    # -- the Source protocol ---------------------------------------------------------------

    def deadline(self, module: Module) -> float:
        """Seconds the queries of one tick of ``module`` may take, all together."""
        return dl.tick_deadline(module.interval, self.deadline_fraction)

    def fetch(self, module: Module, start: float, end: float, *,
              versions: Iterable[Version] = ALL_VERSIONS,
              metrics: Iterable[str] | None = None,
              deadline: float | None = None) -> SeriesStore:
        """Samples with ``start < t <= end`` on a grid of ``module.interval`` ending at
        ``end``: one range request per metric and version (``versions``/``metrics`` narrow
        it, e.g. V1 of one metric for a baseline), all at once, within ``deadline``
        seconds (default: :meth:`deadline` per request a query needs). Metrics without a
        query are skipped."""
        step = module.interval
        last = math.floor(end * 1000) / 1000  # Prometheus keeps milliseconds
        first = last - math.floor((last - start) / step + 1e-9) * step
        if first <= start:
            first += step
        if deadline is None:
            points = max(1, math.floor((last - first) / step + 1e-9) + 1)
            deadline = self.deadline(module) * math.ceil(points / self.max_points)

        def run(query: str, until: float) -> list[PromSeries]:
            if first > last:
                return [PromSeries({}, ())]
            found = self.query_range(query, first, last, step, until=until)
            return [PromSeries(s.labels, tuple(p for p in s.points if start < p[0] <= end))
                    for s in found]

        return self._collect(module, versions, metrics, run, deadline, (start, end))

    def instant(self, module: Module, at: float, *,
                versions: Iterable[Version] = ALL_VERSIONS,
                metrics: Iterable[str] | None = None,
                deadline: float | None = None) -> SeriesStore:
        """One instant query per metric and version, evaluated at ``at``, all at once
        within ``deadline`` seconds (default: :meth:`deadline`)."""
        return self._collect(module, versions, metrics,
                             lambda query, until: self.query(query, at, until=until),
                             self.deadline(module) if deadline is None else deadline)

    # -- internals -------------------------------------------------------------------------

    def _collect(self, module: Module, versions: Iterable[Version],
                 metrics: Iterable[str] | None, run: Callable[[str, float], list[PromSeries]],
                 seconds: float, window: tuple[float, float] | None = None) -> SeriesStore:
        """Every (version, metric) query at once under the deadline; with a ``window``
        (a range fetch), a query still running then is carried to the next fetch of the
        same window length, whose answer is cut to its own window."""
        wanted = list(module.metrics) if metrics is None else list(metrics)
        unknown = [m for m in wanted if m not in module.metrics]
        if unknown:
            raise ValueError(f"module {module.name} declares no metric {', '.join(unknown)}")
        versions = tuple(versions)
        jobs: dict[tuple[Version, str, str], Callable[[float], Answer]] = {}
        batched: dict[tuple[Version, str, str], Group] = {}  # read from the cache, inline
        start, end = window or (-math.inf, math.inf)
        for metric in wanted:
            template = module.metrics[metric].query
            group = None if template is None else self._group(module, template, window)
            if group is not None:
                self._batches.prefetch(group, module.name, start, end)
            for version in versions:
                if template is not None:
                    query = render(template, module.name, version.value)
                    if group is None:
                        jobs[(version, metric, query)] = _job(run, query)
                    else:
                        batched[(version, metric, query)] = group
        until = time.monotonic() + seconds
        scope = None if window is None else (module.name, module.interval, round(end - start, 3))
        got = dl.gather(jobs, seconds, concurrency=self.concurrency,
                        what=lambda k: f"prometheus: the query of {k[1]} for {k[0]}",
                        carry=None if window is None else self._carry, scope=scope)
        for key, group in batched.items():  # no thread each: the group's fetch has its own
            try:
                got.answers[key] = self._batches.read(group, module.name, key[0].value, start,
                                                      end, until)
            except SourceError as err:  # Unbatched: per module from the next tick on
                got.answers[key] = err
        asked = [*jobs, *batched]
        kept: dict[tuple[Version, str], Series] = {}
        errors: dict[tuple[Version, str], SourceError] = {}
        for (version, metric, _), answer in got.answers.items():
            try:  # a failing query does not hide the others
                if isinstance(answer, SourceError):
                    raise answer
                found = one_series(answer, metric, version)
            except SourceError as err:
                errors[(version, metric)] = err
                continue
            if isinstance(found, GridSeries):  # a batched answer: arrays on its grid
                t, v = found.within(start, end)
                if len(t):
                    kept[(version, metric)] = Series(t, v)
                continue
            points = [(t, v) for t, v in found.points if math.isfinite(v) and start < t <= end]
            if points:  # what SeriesStore.of would group, without a Sample per point
                kept[(version, metric)] = Series.of(points)
        self.errors[module.name] = self.last_errors = errors
        late = {(k[0], k[1]) for k in got.stale} | {k for k, e in errors.items()
                                                    if isinstance(e, dl.DeadlineExceeded)}
        self._late.update(module.name, seconds, late,
                          [(k[0], k[1]) for k in asked if (k[0], k[1]) not in late],
                          lambda k: f"{k[1]} {k[0]}")
        for (version, metric), problem in errors.items():
            if not isinstance(problem, dl.DeadlineExceeded):
                level = logging.DEBUG if isinstance(problem, EmptyResult) else logging.WARNING
                log.log(level, "module %s metric %s %s: %s", module.name, metric, version,
                        problem)
        if asked and not kept:
            first = worst(errors.values())
            if first is not None:
                raise type(first)(f"no samples for module {module.name}: {first}") from first
            raise EmptyResult(f"prometheus: no finite values for module {module.name}")
        return SeriesStore(kept)

    def _group(self, module: Module, template: str,
               window: tuple[float, float] | None) -> Group | None:
        """The batch group serving this template, if it batches and the daemon planned
        the source (``plan``), for a window not longer than ``batch_window``."""
        if not self._planned or window is None or window[1] - window[0] > self.batch_window:
            return None
        return self._batches.group(template, module.interval)


def _job(run: Callable[[str, float], list[PromSeries]],
         query: str) -> Callable[[float], list[PromSeries]]:
    return lambda until: run(query, until)


if TYPE_CHECKING:
    from watchdog.sources import Source

    _: Source = PrometheusSource("http://127.0.0.1:9090")
