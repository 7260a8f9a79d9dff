"""The ``scrape`` source, the embedded default: no Prometheus server, the exposition text is
read straight from each version's ``/metrics`` endpoint.

Each ``fetch`` scrapes every endpoint of the module once, at the injected clock's time, and
appends one sample per metric to an in-memory history per (module, version, metric), kept
for ``keep`` seconds; the window asked for is cut from that history. Per metric ``scrape``
spec (metrics without one are skipped):

- ``gauge``: the value as it is (the largest, if several series match);
- ``counter``: the per-second rate between this scrape and the previous one (summed over
  the matching series; a counter that went down restarted from zero);
- ``counter`` with ``denominator``: rate(name) / rate(denominator);
- ``histogram``: the ``quantile`` of the observations made between the two scrapes, from
  the bucket deltas, interpolated within the bucket as ``histogram_quantile`` does.

Every value is multiplied by ``scale``. ``labels`` select series; ``{module}`` and
``{version}`` in label values are replaced. Counters and histograms need two scrapes
before they give a value, and a window with no events (no requests) gives no sample. The
history starts with the first fetch: a window before it (a baseline over last week) is empty.

One endpoint failing does not hide the other: its error is kept in ``last_errors`` under
``(version, "*")`` and the other version's samples are returned; only when every endpoint
of the module fails does ``fetch`` raise. Metrics absent from an answer are recorded as
``EmptyResult`` under ``(version, metric)``.

A stalling endpoint must not hold a tick: the endpoints are read at once under one
deadline, ``deadline_fraction`` of the module's interval (default half, at least 1 s).
An endpoint that misses it is :class:`~watchdog.sources.deadline.DeadlineExceeded` (its
version has no sample this tick), logged at WARNING once per episode; its read runs on to
``timeout`` and the next fetch records what it got (stamped with the tick it was for).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import httpx
from pydantic import Field

from watchdog.clock import Clock, SystemClock
from watchdog.config.schema import Duration, Module, ScrapeSpec
from watchdog.errors import EmptyResult, SourceError, SourceUnavailable
from watchdog.judge.series import SeriesStore
from watchdog.model import Sample, Version
from watchdog.pluginbase import PluginOptions
from watchdog.sources import deadline as dl
from watchdog.sources import exposition as ex
from watchdog.sources.base import SourceBase

log = logging.getLogger(__name__)

ACCEPT = "text/plain;version=0.0.4;q=1.0, */*;q=0.1"
ENDPOINT = "*"
"""The metric name under which ``last_errors`` keeps a whole endpoint's failure."""


TICK_SLACK = 1.0  # seconds between a tick's time and its scrape that still count as "now"


class ScrapeOptions(PluginOptions):
    """Options of the ``scrape`` source."""

    endpoints: dict[str, dict[Version, str]] = Field(
        description="Per module, the /metrics URL of each version: "
        "{checkout: {v1: URL, v2: URL}}.")
    timeout: Duration = Field(default=5.0, gt=0, description="One scrape's timeout.")
    keep: Duration = Field(default=3 * 3600.0, gt=0, description="How long scraped samples "
                           "are kept in memory (the longest window a rule or baseline reads).")
    deadline_fraction: float = Field(default=dl.DEFAULT_FRACTION, gt=0, le=1,
                                     description="Share of the module's interval a tick's "
                                     "scrapes may take together (at least 1 s).")
    headers: dict[str, str] | None = Field(default=None, description="Extra HTTP headers.")


class ScrapeSource(SourceBase):
    name = "scrape"
    Options = ScrapeOptions

    def __init__(self, endpoints: Mapping[str, Mapping[str, str]], timeout: float = 5.0, *,
                 keep: float = 3 * 3600.0, clock: Clock | None = None,
                 deadline_fraction: float = dl.DEFAULT_FRACTION,
                 headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None,
                 client: httpx.Client | None = None) -> None:
        if timeout <= 0 or keep <= 0:
            raise ValueError("timeout and keep must be positive")
        self.deadline_fraction = dl.check_fraction(deadline_fraction)
        self.endpoints: dict[str, dict[Version, str]] = {}
        for module, urls in endpoints.items():
            try:
                self.endpoints[module] = {Version(v): url for v, url in urls.items()}
            except ValueError as err:
                raise ValueError(f"scrape endpoints of module {module!r}: versions are "
                                 f"v1 and v2, got {sorted(urls)}") from err
        self.timeout = timeout
        self.keep = keep
        self._clock: Clock = clock or SystemClock()
        self._headers = {"Accept": ACCEPT, **(headers or {})}
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(transport=transport)
        self._last: dict[tuple[str, Version, str], ex.Reading] = {}
        self._history: dict[tuple[str, Version, str], deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()  # fetches of different modules may run concurrently
        self._late = dl.LateLog(log)
        self._carry = dl.Carry()
        self.errors: dict[str, dict[tuple[Version, str], SourceError]] = {}
        """Per module, the problems of its last fetch: ``(version, "*")`` for an endpoint
        that failed, ``(version, metric)`` for a metric missing from an endpoint's answer."""
        self.last_errors: dict[tuple[Version, str], SourceError] = {}
        """The problems of the last fetch, whichever module it was for."""

    def __repr__(self) -> str:
        return f"ScrapeSource(modules={sorted(self.endpoints)})"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> ScrapeSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def deadline(self, module: Module) -> float:
        """Seconds the endpoint reads of one tick of ``module`` may take, all together."""
        return dl.tick_deadline(module.interval, self.deadline_fraction)

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        """Scrape the module's endpoints once, then its history with ``start < t <= end``.

        When ``end`` is the tick's time (the scrape happens within TICK_SLACK after it),
        the fresh scrape is stamped ``end``, so the tick that scraped it also judges it:
        no extra interval of latency. A window ending in the past is left as it was.
        """
        now = self._clock.now()
        self.scrape(module, at=end if 0.0 <= now - end <= TICK_SLACK else now)
        samples: list[Sample] = []
        with self._lock:
            for version in self.endpoints.get(module.name, {}):
                for metric in module.metrics:
                    for t, v in self._history.get((module.name, version, metric), ()):
                        if start < t <= end:
                            samples.append(Sample(t, module.name, version, metric, v))
        return SeriesStore.of(samples)

    def scrape(self, module: Module, at: float | None = None, *,
               deadline: float | None = None) -> None:
        """One scrape of each of the module's endpoints, all at once within ``deadline``
        seconds (default: :meth:`deadline`), added to the history.

        ``at`` stamps the samples (default: the clock's time at the read); rates always
        use the monotonic clock between scrapes.
        """
        urls = self.endpoints.get(module.name)
        if not urls:
            known = ", ".join(sorted(self.endpoints)) or "none"
            raise SourceError(f"scrape: no endpoints for module {module.name!r} "
                              f"(configured: {known})")
        specs = {m: spec.scrape for m, spec in module.metrics.items() if spec.scrape}
        errors: dict[tuple[Version, str], SourceError] = {}
        found = answered = 0
        seconds = self.deadline(module) if deadline is None else deadline
        got = dl.gather({(v, url): self._reader(v, url, at) for v, url in urls.items()},
                        seconds, concurrency=len(urls), what=lambda k: f"scrape {k[0]} {k[1]}",
                        carry=self._carry, scope=module.name)
        reads = {v: read for (v, _), read in got.answers.items()}
        late = {v for v, _ in got.stale} | {v for v, r in reads.items()
                                            if isinstance(r, dl.DeadlineExceeded)}
        self._late.update(module.name, seconds, late, [v for v in reads if v not in late],
                          lambda v: f"{v} {urls[v]}")
        for version, read in reads.items():
            if isinstance(read, SourceError):
                errors[(version, ENDPOINT)] = read
                if not isinstance(read, dl.DeadlineExceeded):
                    log.warning("module %s: %s", module.name, read)
                continue
            exposition, t, mono = read
            url = urls[version]
            answered += 1
            for metric, spec in specs.items():
                reading = _read(exposition, spec, module.name, version, t, mono)
                if reading is None:
                    errors[(version, metric)] = EmptyResult(
                        f"scrape {version} {url}: no series {_shown(spec, module, version)}")
                    continue
                found += 1
                with self._lock:
                    self._record(module.name, version, metric, spec, reading)
        self.errors[module.name] = self.last_errors = errors
        if answered == 0:
            failures = [errors[(v, ENDPOINT)] for v in urls]
            raise _all_failed(module.name, failures) from failures[0]
        if specs and found == 0:
            raise EmptyResult(f"scrape: none of the metrics of module {module.name} "
                              f"({', '.join(sorted(specs))}) are exposed")

    def _reader(self, version: Version, url: str, at: float | None
                ) -> Callable[[float], tuple[ex.Exposition, float, float]]:
        """A job for :func:`dl.gather`: read and parse ``url`` (within ``timeout``; the
        deadline is gather's), with the time and monotonic time of the read."""
        def read(until: float) -> tuple[ex.Exposition, float, float]:
            t = self._clock.now() if at is None else at
            mono = self._clock.monotonic()
            text = self._get(url)
            return ex.parse(text, where=f"scrape {version} {url}"), t, mono
        return read

    def _get(self, url: str) -> str:
        try:
            response = self._client.get(url, headers=self._headers, timeout=self.timeout)
        except httpx.TimeoutException as err:
            raise SourceUnavailable(f"scrape {url}: timed out after {self.timeout:g}s") from err
        except httpx.TransportError as err:
            raise SourceUnavailable(f"scrape {url}: unreachable: {err}") from err
        if response.status_code != 200:
            raise SourceUnavailable(f"scrape {url}: HTTP {response.status_code}")
        return response.text

    def _record(self, module: str, version: Version, metric: str, spec: ScrapeSpec,
                reading: ex.Reading) -> None:
        key = (module, version, metric)
        value = _value(spec, self._last.get(key), reading)
        if spec.type != "gauge":
            self._last[key] = reading
        history = self._history.setdefault(key, deque())
        if value is not None:
            history.append((reading.t, value * spec.scale))
        while history and history[0][0] < reading.t - self.keep:
            history.popleft()


def _labels(spec: ScrapeSpec, module: str, version: Version) -> dict[str, str]:
    return {k: v.replace("{module}", module).replace("{version}", version.value)
            for k, v in spec.labels.items()}


def _shown(spec: ScrapeSpec, module: Module, version: Version) -> str:
    labels = _labels(spec, module.name, version)
    names = spec.name + (f" / {spec.denominator}" if spec.denominator else "")
    return names + (f" with labels {labels}" if labels else "")


def _read(exposition: ex.Exposition, spec: ScrapeSpec, module: str, version: Version,
          t: float, mono: float) -> ex.Reading | None:
    """This scrape's reading of one metric, or None when its series are missing."""
    wanted = _labels(spec, module, version)
    if spec.type == "gauge":
        value = ex.gauge(exposition, spec.name, wanted)
        return None if value is None else ex.Reading(t, mono, value=value)
    if spec.type == "histogram":
        buckets = ex.histograms(exposition, spec.name, wanted)
        return ex.Reading(t, mono, buckets=buckets) if buckets else None
    numerator = ex.counters(exposition, spec.name, wanted)
    if not numerator:
        return None
    if spec.denominator is None:
        return ex.Reading(t, mono, numerator=numerator)
    denominator = ex.counters(exposition, spec.denominator, wanted)
    return ex.Reading(t, mono, numerator=numerator, denominator=denominator) \
        if denominator else None


def _value(spec: ScrapeSpec, prev: ex.Reading | None, cur: ex.Reading) -> float | None:
    """The metric's value at ``cur`` (unscaled), given the previous reading."""
    if spec.type == "gauge":
        return cur.value
    if prev is None or cur.mono <= prev.mono:
        return None
    # a reading of another shape (the spec changed on reload) counts as no previous reading
    if spec.type == "histogram":
        if prev.buckets is None or cur.buckets is None or spec.quantile is None:
            return None
        return ex.quantile(spec.quantile, ex.bucket_increase(prev.buckets, cur.buckets))
    if prev.numerator is None or cur.numerator is None:
        return None
    events = ex.increase(prev.numerator, cur.numerator)
    if spec.denominator is None:
        return events / (cur.mono - prev.mono)
    if prev.denominator is None or cur.denominator is None:
        return None
    total = ex.increase(prev.denominator, cur.denominator)
    return events / total if total > 0 else None


def _all_failed(module: str, errors: list[SourceError]) -> SourceError:
    text = "; ".join(str(e) for e in errors)
    kind = dl.DeadlineExceeded if all(isinstance(e, dl.DeadlineExceeded) for e in errors) \
        else SourceUnavailable if all(isinstance(e, SourceUnavailable) for e in errors) \
        else type(next(e for e in errors if not isinstance(e, SourceUnavailable)))
    return kind(f"scrape: every endpoint of module {module} failed: {text}")


if TYPE_CHECKING:
    from watchdog.sources import Source

    _: Source = ScrapeSource({})
