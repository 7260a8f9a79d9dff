"""One deadline for all the reads of a tick: a slow or hanging source must not hold the
evaluation (issue 16: rolling back never waits on anything).

A source's ``fetch`` runs its reads (Prometheus queries, /metrics endpoints) concurrently
with :func:`gather` and takes what came back before the deadline, a fraction of the
module's evaluation interval (:func:`tick_deadline`), so a tick's fetch always leaves time
to judge, decide and act within the interval. A read still running then is reported as
:class:`DeadlineExceeded` and left to end on its own HTTP timeout; with a :class:`Carry`
the next fetch waits on it instead of sending it again, and judges its answer if it has
come by then (a tick old): a source slower than the deadline is judged a tick late, not
never, and a hanging one costs at most one read in flight per query.

:class:`LateLog` says so once per episode: a WARNING when a read first misses the deadline,
an INFO when it answers in time again, nothing for the ticks in between.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from watchdog.errors import SourceError, SourceUnavailable

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")

DEFAULT_FRACTION = 0.5
"""A tick's reads get half the module's interval by default."""
MIN_DEADLINE = 1.0
"""Never less than this (seconds), however short the interval."""
MIN_ATTEMPT = 0.05
"""A retry needs at least this long before the deadline to be worth sending (seconds)."""


class DeadlineExceeded(SourceUnavailable):
    """A read did not answer before the deadline of its fetch; its metric is missing for
    this tick. Telemetry counts it as kind ``timeout``."""

    kind = "timeout"


def check_fraction(value: object, option: str = "deadline_fraction") -> float:
    """``value`` as a fraction in (0, 1]; a ValueError naming ``option`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not 0 < value <= 1:
        raise ValueError(f"{option} must be a number in (0, 1] (a fraction of the module's "
                         f"interval), got {value!r}")
    return float(value)


def tick_deadline(interval: float, fraction: float) -> float:
    """Seconds a tick's reads may take: ``fraction`` of the interval, at least 1 s."""
    return max(MIN_DEADLINE, fraction * interval)


def left(until: float | None) -> float:
    """Seconds until the monotonic instant ``until`` (inf for no deadline), never < 0."""
    return math.inf if until is None else max(0.0, until - time.monotonic())


class Carry:
    """Reads still running when their fetch's deadline passed, by key (a source keeps one).

    The next fetch with the same key does not send the read again while it runs: it
    waits on it (within its own deadline), and a read that has finished late is judged
    then, a tick old, unless a fresh one answers in time. A source slower than the
    deadline is thus judged on every tick's data one tick late, rather than never.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, Future[Any]] = {}
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> Future[Any] | None:
        with self._lock:
            return self._running.pop(key, None)

    def keep(self, key: Hashable, future: Future[Any]) -> None:
        with self._lock:
            self._running[key] = future


@dataclass
class Gathered(Generic[K, T]):
    """What :func:`gather` got: per key a result or an error, and the keys whose result
    is a late answer to an earlier fetch."""

    answers: dict[K, T | SourceError]
    stale: set[K]


def gather(jobs: Mapping[K, Callable[[float], T]], seconds: float, *, concurrency: int,
           what: Callable[[K], str] = str, carry: Carry | None = None,
           scope: Hashable = None) -> Gathered[K, T]:
    """Run each job concurrently (at most ``concurrency`` at once), each given the
    monotonic instant its retries must end by; return within ``seconds``. ``what(key)``
    names a job in the error of one that missed the deadline.

    Per key: the job's result, the :class:`SourceError` it raised, or
    :class:`DeadlineExceeded` for a job not done in time. With a ``carry``, a job still
    running then is kept there under ``(scope, key)`` and a late result of an earlier
    call with the same scope is used (see :class:`Carry`). Any other exception (a bug)
    is raised here.
    """
    until = time.monotonic() + seconds
    if not jobs:
        return Gathered({}, set())
    futures: dict[K, Future[T]] = {}
    carried: set[K] = set()  # waiting on an earlier call's read
    late: dict[K, T] = {}  # an earlier call's read, finished since
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs))),
                              thread_name_prefix="source-read")
    try:
        for key, job in jobs.items():
            earlier = None if carry is None else carry.take((scope, key))
            if earlier is not None and not earlier.done():
                futures[key] = earlier
                carried.add(key)
                continue
            if earlier is not None and _failure(earlier) is None:
                late[key] = earlier.result()
            futures[key] = pool.submit(job, until)
        wait(futures.values(), timeout=left(until))
    finally:
        # never wait on a read still running: it ends on its own HTTP timeout
        pool.shutdown(wait=False, cancel_futures=True)
    out: dict[K, T | SourceError] = {}
    stale: set[K] = set()
    for key, future in futures.items():
        error = _failure(future)
        if error is None:
            out[key] = future.result()
            if key in carried:
                stale.add(key)
            continue
        if key not in carried and not isinstance(error, _NotDone):
            if not isinstance(error, SourceError):
                raise error  # a bug, not a failure of the source
            out[key] = error
            continue
        # not done in time (or an earlier call's read that failed late: it missed too)
        if carry is not None and not future.done():
            carry.keep((scope, key), future)
        if key in late:
            out[key] = late[key]
            stale.add(key)
        else:
            out[key] = DeadlineExceeded(f"{what(key)}: no answer within the {seconds:.3g}s "
                                        "deadline")
    return Gathered(out, stale)


class _NotDone(Exception):
    """Stands for a read not finished (or cancelled before it started)."""


def _failure(future: Future[Any]) -> BaseException | None:
    """What went wrong with ``future``: its exception, _NotDone, or None (a result)."""
    if not future.done() or future.cancelled():
        return _NotDone()
    return future.exception()


class LateLog:
    """WARNING once when a read starts missing the deadline, INFO once when it is back."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._late: set[tuple[str, Hashable]] = set()
        self._lock = threading.Lock()

    def update(self, module: str, seconds: float, late: Collection[K],
               answered: Iterable[K], shown: Callable[[K], str] = str) -> None:
        """``late``: the reads of this fetch that missed its ``seconds`` deadline (judged
        on a late answer or not at all); ``answered``: those that made it."""
        with self._lock:
            new = [k for k in late if (module, k) not in self._late]
            back = [k for k in answered if (module, k) in self._late]
            self._late |= {(module, k) for k in late}
            self._late -= {(module, k) for k in back}
        if new:
            self._log.warning("module %s: %s missed the %.3gs deadline; judged on what comes "
                              "late, a tick later, until they answer in time (a slow "
                              "source: raise the source's deadline_fraction or the module's "
                              "interval)", module, ", ".join(shown(k) for k in new), seconds)
        if back:
            self._log.info("module %s: %s answer in time again", module,
                           ", ".join(shown(k) for k in back))
