"""One query per metric template for all modules, and only the points not held yet.

The daemon plans the ``prometheus`` source with its modules (:meth:`Batches.plan`). Modules
with the same batchable template (:mod:`watchdog.sources.promql`) and interval form a
:class:`Group`; the group keeps a window cache per series on a time grid shared by all
its modules (whole multiples of the interval plus the schedule's ``offset``, the grid the
scheduler fires on). The first module to tick in an interval fetches, in one range query,
the new points of every module of the group (from the last point it holds, and again the
points that were fresh when fetched: a scrape may land late, see ``recheck``); the other
modules' ticks in that interval read the cache. A module that joins later (a reload, a
lease taken over) gets its window in one query of its own, then shares the group's.

The cache holds per (module, version) and label set an ``array('d')`` of values on the
grid (NaN: no point; +inf: a point that is not a finite number, which the source drops
as the per-module path does), trimmed to the longest window a module asked for. A module
not seen for ``idle`` intervals leaves the group (another instance guards it now).
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from array import array
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from watchdog.errors import BadQuery, EmptyResult, SourceError
from watchdog.sources import deadline as dl
from watchdog.sources.promapi import PromSeries
from watchdog.sources.promql import Batched

log = logging.getLogger("watchdog.sources.prometheus")

VERSIONS = ("v1", "v2")
POINTS_PER_REQUEST = 200_000
"""A cold fetch (a whole window for every module) is split in time so that one answer
holds at most about this many points."""
IDLE_INTERVALS = 10
"""A module not read for this many intervals (and a minute) leaves its group."""
_MISSING = array("d", [math.nan])

Labels = tuple[tuple[str, str], ...]
QueryRange = Callable[[str, float, float, float, float | None], list[PromSeries]]


class Unbatched(SourceError):
    """The batched query failed where the per-module ones may not (rejected, a result
    without module/version labels): the group falls back to per-module queries."""


@dataclass
class Group:
    batched: Batched
    step: float
    origin: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    seen: dict[str, float] = field(default_factory=dict)  # module -> monotonic last use
    cached: set[str] = field(default_factory=set)  # modules the cache holds
    base: float = math.nan  # grid time of index 0
    n: int = 0  # points per array
    settled: float = -math.inf  # every point up to here was fetched >= recheck after it
    need: float = 0.0  # longest window asked (seconds before the end)
    data: dict[tuple[str, str], dict[Labels, array[float]]] = field(default_factory=dict)
    failed: tuple[float, SourceError] | None = None
    pending: Future[None] | None = None  # the fetch running in the background
    broken: str | None = None  # why it fell back to per-module queries

    @property
    def end(self) -> float:
        return self.base + (self.n - 1) * self.step



class Batches:
    """The batch groups of one source; thread-safe (a lock per group)."""

    def __init__(self, query_range: QueryRange, *, recheck: float = 30.0, workers: int = 8,
                 now: Callable[[], float] = time.time) -> None:
        self._query_range = query_range
        self.recheck = recheck
        self._now = now
        self._groups: dict[tuple[str, float], Group] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers,
                                        thread_name_prefix="prometheus-batch")
        self.queries = 0  # range requests sent (telemetry, the scale bench)

    def plan(self, members: Iterable[tuple[str, Batched, float]], origin: float) -> None:
        """(module, batched template, interval) of the modules this daemon guards; a
        group whose template or interval is gone is dropped, the others keep their cache."""
        seen = time.monotonic()
        groups: dict[tuple[str, float], Group] = {}
        for module, batched, step in members:
            key = (batched.template, step)
            group = groups.get(key) or self._groups.get(key)
            if group is None or group.origin != origin % step:
                group = Group(batched, step, origin % step)
            group.seen.setdefault(module, seen)
            groups[key] = group
        self._groups = groups

    def group(self, template: str, step: float) -> Group | None:
        group = self._groups.get((template, step))
        return None if group is None or group.broken else group

    def groups(self) -> list[Group]:
        return list(self._groups.values())

    def window(self, group: Group, start: float, end: float) -> tuple[float, float]:
        """The first and last grid points of ``(start, end]`` (the last <= ``end``)."""
        step = group.step
        last = group.origin + math.floor((end - group.origin) / step + 1e-9) * step
        first = last - math.floor((last - start) / step + 1e-9) * step
        return (first + step if first <= start else first), last

    def prefetch(self, group: Group, module: str, start: float, end: float) -> None:
        """Start the group's fetch for this window if the cache does not hold it yet
        (in the background: a tick never waits on it beyond its deadline)."""
        self._wait(group, module, *self.window(group, start, end), until=None, block=False)

    def read(self, group: Group, module: str, version: str, start: float, end: float,
             until: float | None) -> list[GridSeries]:
        """The series of ``module``/``version`` with points in ``(start, end]`` on the
        group's grid (ending at the last grid point <= ``end``), as the per-module query
        returns them but as arrays; EmptyResult when there are none, DeadlineExceeded when
        the group's fetch is not done by ``until`` (it goes on: the next tick reads its
        answer)."""
        first, last = self.window(group, start, end)
        held = self._wait(group, module, first, last, until, version=version)
        found = []  # the arrays built outside the lock: a thousand modules read it
        for labels, base, values in held:
            series = GridSeries.of(dict(labels), base, group.step, values)
            if len(series.t):
                found.append(series)
        if not found:
            raise EmptyResult(f"prometheus: no series for module {module} {version} "
                              f"over [{first:.3f}, {last:.3f}] (batched)")
        return found

    def _wait(self, group: Group, module: str, first: float, last: float,
              until: float | None, block: bool = True, version: str = ""
              ) -> list[tuple[Labels, float, array[float]]]:
        for _ in range(3):  # a refresh started before this module joined: one more
            if not (group.lock.acquire(timeout=min(dl.left(until), 1e9)) if block
                    else group.lock.acquire(blocking=False)):
                if not block:
                    return []  # a fetch is running
                raise dl.DeadlineExceeded(f"prometheus: the batched query of {module} is "
                                          "still running at the deadline")
            try:
                group.seen[module] = time.monotonic()
                group.need = max(group.need, last - first)
                if group.failed is not None and group.failed[0] == last:
                    err = group.failed[1]  # this interval's fetch failed: no retry storm
                    raise type(err)(str(err))
                if group.broken is not None:
                    raise Unbatched(group.broken)
                if group.n and module in group.cached and group.base <= first \
                        and group.end >= last:
                    return self._slices(group, module, version, first, last) if block \
                        else []
                pending = group.pending
                if pending is None or pending.done():
                    pending = group.pending = self._pool.submit(self._refresh_job, group,
                                                                first, last)
            finally:
                group.lock.release()
            if not block:
                return []
            wait([pending], timeout=min(dl.left(until), 1e9))
            if not pending.done():
                raise dl.DeadlineExceeded(f"prometheus: the batched query of {module} is "
                                          "still running at the deadline")
        raise dl.DeadlineExceeded(f"prometheus: the batched query of {module} did not "
                                  "cover it")

    def _refresh_job(self, group: Group, first: float, last: float) -> None:
        """The group's fetch, in the background pool; its errors are kept for the
        readers (``failed``/``broken``), never raised here."""
        with group.lock, contextlib.suppress(SourceError):
            self._update(group, first, last, time.monotonic() + group.step)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- internals (the group's lock held) ------------------------------------------------

    def _update(self, group: Group, first: float, last: float, until: float | None) -> None:
        try:
            self._refresh(group, first, last, until)
        except Unbatched as err:
            group.broken = str(err)
            group.data.clear()
            log.warning("prometheus: %s; its queries run per module from now on", err)
            raise
        except SourceError as err:
            group.failed = (last, err)
            raise
        group.failed = None

    def _refresh(self, group: Group, first: float, last: float,
                 until: float | None) -> None:
        step = group.step
        idle = time.monotonic() - IDLE_INTERVALS * step - 60.0
        for gone in [m for m, t in list(group.seen.items()) if t < idle]:
            del group.seen[gone]
            group.cached.discard(gone)
            for version in VERSIONS:
                group.data.pop((gone, version), None)
        if group.n == 0 or last - group.end > group.need + step or last < group.base:
            group.data.clear()
            group.cached, group.base, group.n = set(group.seen), first, 0
            group.settled = -math.inf
            self._fetch(group, sorted(group.seen), first, last, until, settle=True)
            return
        if first < group.base:  # a longer window than held: older points for all
            self._fetch(group, sorted(group.cached), first, group.base - step, until)
        if last > group.end:  # a new interval: its points, and again the fresh ones
            fresh = min(group.end, group.settled) + step
            self._fetch(group, sorted(group.cached), max(fresh, group.base), last, until,
                        settle=True)
        joined = sorted(set(group.seen) - group.cached)
        if joined:
            self._fetch(group, joined, group.base, group.end, until)
            group.cached |= set(joined)
        keep = math.floor((group.need + step) / step + 1e-9) + 1
        if group.n > keep:
            self._trim(group, group.n - keep)

    def _fetch(self, group: Group, modules: list[str], first: float, last: float,
               until: float | None, settle: bool = False) -> None:
        """Range queries for ``modules`` over ``[first, last]``, stored (points in that
        range not in the answer become missing).

        ``settle``: each chunk, once stored, counts as fetched (``_settle``), so that a
        fetch cut off by its deadline (a cold window of a thousand modules on a slow
        Prometheus) goes on from its last stored chunk at the next interval instead of
        starting over, and over again, from the window's start."""
        step = group.step
        per = max(1, POINTS_PER_REQUEST // max(1, 2 * len(modules)))
        promql = group.batched.render(modules, VERSIONS)
        wanted = set(modules)
        fetched_at = self._now()
        chunk = first
        while chunk <= last + 1e-9:
            chunk_end = min(last, chunk + (per - 1) * step)
            self.queries += 1
            try:
                found = self._query_range(promql, chunk, chunk_end, step, until)
            except EmptyResult:
                found = []
            except BadQuery as err:
                raise Unbatched(f"the batched query of {group.batched.template!r} was "
                                f"rejected: {err}") from err
            self._store(group, wanted, found, chunk, chunk_end)
            if settle:
                self._settle(group, chunk_end, fetched_at)
            chunk = chunk_end + step

    def _settle(self, group: Group, last: float, fetched_at: float) -> None:
        """Points up to ``last`` were fetched at ``fetched_at``: those older than
        ``recheck`` then are final, the others are fetched again next time."""
        final = group.origin + math.floor((fetched_at - self.recheck - group.origin)
                                          / group.step + 1e-9) * group.step
        group.settled = max(group.settled, min(last, final))

    def _store(self, group: Group, modules: set[str], found: list[PromSeries],
               first: float, last: float) -> None:
        step = group.step
        if group.n == 0:
            group.base = first
        if first < group.base:
            self._grow(group, front=round((group.base - first) / step))
            group.base = first
        end_index = round((last - group.base) / step)
        if end_index >= group.n:
            self._grow(group, back=end_index + 1 - group.n)
        lo = round((first - group.base) / step)
        for key, per_labels in group.data.items():  # what the answer lacks is missing now
            if key[0] in modules:
                for values in per_labels.values():
                    for i in range(lo, end_index + 1):
                        values[i] = math.nan
        for series in found:
            labels = series.labels
            key = (labels.get("module", ""), labels.get("version", ""))
            if key[0] not in modules or key[1] not in VERSIONS:
                raise Unbatched(f"the batched query of {group.batched.template!r} returns a "
                                f"series without the module/version labels ({labels})")
            per_labels = group.data.setdefault(key, {})
            values = per_labels.setdefault(tuple(sorted(labels.items())), _MISSING * group.n)
            for t, v in series.points:
                i = round((t - group.base) / step)
                if lo <= i <= end_index:
                    values[i] = v if math.isfinite(v) else math.inf

    def _grow(self, group: Group, front: int = 0, back: int = 0) -> None:
        before, after = _MISSING * front, _MISSING * back
        for per_labels in group.data.values():
            for labels, values in per_labels.items():
                if front:
                    per_labels[labels] = values = before + values
                values.extend(after)
        group.n += front + back

    def _trim(self, group: Group, k: int) -> None:
        """Drop the ``k`` oldest points, and the series left without any."""
        empty = (_MISSING * (group.n - k)).tobytes()
        for key in list(group.data):
            per_labels = group.data[key]
            for labels in list(per_labels):
                del per_labels[labels][:k]
                if per_labels[labels].tobytes() == empty:
                    del per_labels[labels]
            if not per_labels:
                del group.data[key]
        group.base += k * group.step
        group.n -= k

    def _slices(self, group: Group, module: str, version: str, first: float,
                last: float) -> list[tuple[Labels, float, array[float]]]:
        """Copies of the module's arrays over ``[first, last]``, with the time of their
        first element."""
        lo = max(0, round((first - group.base) / group.step))
        hi = min(group.n - 1, round((last - group.base) / group.step))
        return [(labels, group.base + lo * group.step, values[lo:hi + 1])
                for labels, values in group.data.get((module, version), {}).items()]


@dataclass(frozen=True)
class GridSeries:
    """One series of a batched answer: the grid times that hold a point (strictly
    increasing) and the points' values, as arrays (a thousand modules read the cache each
    interval: no Python tuple per point). ``points`` is what a query's answer holds."""

    labels: dict[str, str]
    t: np.ndarray
    v: np.ndarray

    @classmethod
    def of(cls, labels: dict[str, str], base: float, step: float,
           values: array[float]) -> GridSeries:
        """The points of ``values`` (a cache slice whose element 0 is at ``base``) that are
        not NaN, at ``round(base + i * step, 3)``: the arithmetic in numpy (the same IEEE
        operations), Python's ``round`` only where a time is not a whole number (a whole
        number rounds to itself)."""
        arr = np.frombuffer(values, dtype=np.float64)
        keep = np.flatnonzero(~np.isnan(arr))
        at = base + keep * step
        if not bool((at == np.floor(at)).all()):
            at = np.array([round(t, 3) for t in at.tolist()], dtype=float)
        return cls(labels, at, arr[keep])

    @property
    def points(self) -> tuple[tuple[float, float], ...]:
        return tuple(zip(self.t.tolist(), self.v.tolist(), strict=True))

    def within(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """The finite points with ``start < t <= end`` (what the source keeps)."""
        keep = np.isfinite(self.v) & (self.t > start) & (self.t <= end)
        return self.t[keep], self.v[keep]
