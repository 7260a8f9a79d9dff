"""One deadline for all the reads of a tick: a slow or hanging source must not hold the
evaluation (issue 16: rolling back never waits on anything).

A source's ``fetch`` runs its reads (Prometheus queries, /metrics endpoints) concurrently
with :func:`gather` and takes what came back before the deadline; a read still running
then is abandoned (its thread ends on its own HTTP timeout, itself capped by the
deadline) and reported as :class:`DeadlineExceeded`. The deadline is a fraction of the
module's evaluation interval (:func:`tick_deadline`), so a tick's fetch always leaves time
to judge, decide and act within the interval.

:class:`LateLog` says so once per episode: a WARNING when a read first misses the deadline,
an INFO when it answers in time again, nothing for the ticks in between.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

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


def gather(jobs: Mapping[K, Callable[[float], T]], seconds: float, *, concurrency: int,
           what: Callable[[K], str] = str) -> dict[K, T | SourceError]:
    """Run each job concurrently (at most ``concurrency`` at once), each given the
    monotonic instant it must be done by; return within ``seconds``. ``what(key)`` names
    a job in the error of one that missed the deadline.

    Per key: the job's result, the :class:`SourceError` it raised, or
    :class:`DeadlineExceeded` for a job not done in time. Any other exception (a bug) is
    raised here once every job is done or abandoned.
    """
    until = time.monotonic() + seconds
    if not jobs:
        return {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs))),
                              thread_name_prefix="source-read")
    try:
        futures: dict[K, Future[T]] = {key: pool.submit(job, until)
                                       for key, job in jobs.items()}
        wait(futures.values(), timeout=left(until))
    finally:
        # never wait on a read still running: it ends on its own (capped) HTTP timeout
        pool.shutdown(wait=False, cancel_futures=True)
    out: dict[K, T | SourceError] = {}
    for key, future in futures.items():
        if not future.done() or future.cancelled():
            out[key] = DeadlineExceeded(f"{what(key)}: no answer within the {seconds:.3g}s "
                                        "deadline")
            continue
        error = future.exception()
        if error is None:
            out[key] = future.result()
        elif isinstance(error, SourceError):
            out[key] = error
        else:
            raise error
    return out


class LateLog:
    """WARNING once when a read starts missing the deadline, INFO once when it is back."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._late: set[tuple[str, Hashable]] = set()
        self._lock = threading.Lock()

    def update(self, module: str, late: Mapping[K, DeadlineExceeded],
               answered: Iterable[K], shown: Callable[[K], str] = str) -> None:
        with self._lock:
            new = [k for k in late if (module, k) not in self._late]
            back = [k for k in answered if (module, k) in self._late]
            self._late |= {(module, k) for k in late}
            self._late -= {(module, k) for k in back}
        if new:
            first = late[new[0]]
            self._log.warning("module %s: %s missed the deadline (%s); judged without "
                              "them until they answer in time (a slow source: raise the "
                              "source's deadline_fraction or the module's interval)", module,
                              ", ".join(shown(k) for k in new), first)
        if back:
            self._log.info("module %s: %s answer in time again", module,
                           ", ".join(shown(k) for k in back))
