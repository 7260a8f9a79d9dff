"""When ticks run: one APScheduler 3.x job per module.

APScheduler 3.x, as its source (3.11) does it:

* ``BackgroundScheduler`` runs its loop in a thread and hands due jobs to an executor (a
  thread pool here, one worker per module, so a slow source of one module does not delay
  another module's rollback);
* ``coalesce=True``: when several run times of a job are due at once (the process was
  stopped, the machine suspended), the job runs once, not once per missed time;
* ``max_instances=1``: a tick that overruns its interval is never run twice at once; the
  run that would overlap is skipped. APScheduler logs a warning per skip (410 of them
  when 1,000 modules start at once and their first ticks fetch whole windows:
  bench/scale.py); :class:`Scheduler` drops those and logs one summary a minute at most,
  with the modules skipped most, and counts each skip (``on_skip``: the
  ``watchdog_ticks_skipped`` counter);
* ``misfire_grace_time``: checked when the executor starts the run; a run later than this
  is dropped as missed. The default is 1 s; we give one interval (a positive integer is
  required: seconds, rounded up), as a late tick still evaluates fresh data;
* ``shutdown(wait=True)`` interrupts nothing: it waits for running jobs (and runs already
  handed to the pool) to finish, which is how SIGTERM finishes the current tick.

Fresh data, no extra interval of latency: the first tick runs at once, then ticks are
aligned to whole multiples of the interval in wall-clock time plus ``offset``. The grid is
kept by :class:`GridTrigger`, not by APScheduler's ``IntervalTrigger``: that one computes
each next run as the previous run time plus the interval, so after the immediate first run
(at "now", off the grid) every later tick kept the phase of "now" and ``offset`` did
nothing. :class:`GridTrigger` snaps every next run time to the grid instead. With
``coalesce`` and ``misfire_grace``: after a stall (a suspended machine, a tick overrunning
several intervals) the next run is the latest grid point not after "now", run once
(coalesced), and dropped as missed only if the executor starts it more than
``misfire_grace`` after that grid point; the run after it is again on the grid.

The ``scrape`` source reads the endpoints inside the tick, so its data is as fresh as the tick.
Prometheus scrapes every ``scrape_interval`` at a fixed phase; with the evaluation interval
equal to the scrape interval and ``offset`` set just past the scrape's phase plus the
ingestion delay (a second or two), each tick runs right after the sample it needs landed,
instead of up to one interval later. A replay (``clock: replay``) ticks every ``pace`` real
seconds, unaligned, one simulated step per tick.

Many modules: their ticks are spread (:func:`phases`). Aligned, every module would be due
at the same instant, and a thousand threads judging at once under one GIL made each tick
last the whole round (bench/scale.py, 1,000 modules: evaluation p99 10 s at a 10-s
interval). Each module gets a ``phase``, a fixed place in the first part of the interval
(``SPREAD_PER_JOB`` per module, at most ``SPREAD_FRACTION`` of the interval), and ticks
at every grid point plus its phase; its first tick, at once otherwise, waits for its
phase too. One module, or a few, keep ticking right on the grid (phases of milliseconds).
A batched source still reads the grid points (``offset``): a tick at its phase reads the
same point a tick at the grid point would, fetched once for all.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from watchdog.clock import Clock, SystemClock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    interval: float  # real seconds between ticks
    align: bool = True
    offset: float = 0.0
    misfire_grace: float | None = None  # None: one interval
    phase: float = 0.0  # seconds after each grid point this job runs (its spread place)

    def grace(self) -> int:
        return max(1, math.ceil(self.misfire_grace if self.misfire_grace is not None
                                else self.interval))

    def first_boundary(self, now: float) -> float:
        """The first grid point after ``now``: a whole multiple of the interval (plus
        offset); not aligned, one interval after ``now``."""
        if not self.align:
            return now + self.interval
        k = math.floor((now - self.offset) / self.interval) + 1
        return k * self.interval + self.offset

    def trigger(self, now: float) -> GridTrigger:
        """Aligned: the grid of whole multiples of the interval plus the offset. Not
        aligned: every interval counted from ``now``, the time the job is planned."""
        return GridTrigger(self.interval, (self.offset if self.align else now) + self.phase)


SPREAD_PER_JOB = 0.01
"""Seconds of the interval each module's place takes when ticks are spread."""
SPREAD_FRACTION = 0.5
"""Ticks are spread over at most this share of the interval (a batched source reads the
grid point: a tick this far after it judges data that much older)."""


def phases(names: list[str], interval: float) -> dict[str, float]:
    """Each module's place after the grid point: evenly over ``SPREAD_PER_JOB`` per module,
    at most ``SPREAD_FRACTION`` of the interval, in name order (stable across restarts and
    instances)."""
    if not names:
        return {}
    width = min(SPREAD_FRACTION * interval, SPREAD_PER_JOB * len(names))
    return {name: round(i * width / len(names), 6) for i, name in enumerate(sorted(names))}


class GridTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler 3.x is untyped
    """Fires at ``origin + k * interval`` (k whole), whatever the previous fire time was.

    For an aligned job ``origin`` is the offset (the grid counts from the epoch); for an
    unaligned one it is the time the job was planned. A previous fire time within
    :attr:`slack` before a grid point counts as that point (datetimes carry microseconds,
    so a grid point read back may be a hair early; without the slack it would fire twice).
    """

    __slots__ = ("interval", "origin", "slack", "timezone")

    def __init__(self, interval: float, origin: float = 0.0, timezone: tzinfo = UTC) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be positive, not {interval!r}")
        self.interval = float(interval)
        self.origin = float(origin) % self.interval
        self.slack = min(0.001, self.interval / 100)
        self.timezone = timezone

    def _point(self, k: int) -> datetime:
        return datetime.fromtimestamp(self.origin + k * self.interval, self.timezone)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime
                           ) -> datetime:
        """The first grid point after ``previous_fire_time``; without one, the first not
        before ``now``; when that is already past ``now``, the latest point not after
        ``now`` (the same single run ``coalesce`` makes of the missed ones, found without
        walking through each of them)."""
        at_now = (now.timestamp() - self.origin) / self.interval
        if previous_fire_time is None:
            return self._point(math.ceil(at_now - self.slack / self.interval))
        before = (previous_fire_time.timestamp() - self.origin + self.slack) / self.interval
        k = math.floor(before) + 1
        return self._point(max(k, math.floor(at_now + self.slack / self.interval)))

    def __str__(self) -> str:
        return f"grid[{self.interval:g}s + {self.origin:g}s]"

    def __repr__(self) -> str:
        return f"<GridTrigger (interval={self.interval:g}, origin={self.origin:g})>"


SKIP_SUMMARY_SECONDS = 60.0
"""Skipped ticks are summarised in one log line at most this often."""


class _NoSkipWarnings(logging.Filter):
    """Drops APScheduler's warning per skipped run (the Scheduler summarises them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith('Execution of job "%s" skipped')


_APS_LOG = logging.getLogger(__name__ + ".apscheduler")  # APScheduler's own messages
_APS_LOG.addFilter(_NoSkipWarnings())


class Scheduler:
    """Runs ``run(module)`` for each planned module at its interval."""

    def __init__(self, run: Callable[[str], None], max_workers: int = 4,
                 clock: Clock | None = None,
                 on_skip: Callable[[str], None] | None = None) -> None:
        self._run = run
        self._clock: Clock = clock or SystemClock()
        self._specs: dict[str, JobSpec] = {}
        self._on_skip = on_skip
        self._skips: Counter[str] = Counter()  # since the last summary
        self._skips_lock = threading.Lock()
        self._summary_at = -math.inf  # monotonic time of the last summary
        self._scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(max(1, max_workers))},
            job_defaults={"coalesce": True, "max_instances": 1}, logger=_APS_LOG)
        self._scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)

    def _skipped(self, event: JobSubmissionEvent) -> None:
        """A module's run was skipped: its previous tick was still running."""
        if self._on_skip is not None:
            self._on_skip(event.job_id)
        with self._skips_lock:
            self._skips[event.job_id] += 1
            now = time.monotonic()
            if now - self._summary_at < SKIP_SUMMARY_SECONDS:
                return
            self._summary_at = now
        self.summarise_skips()

    def summarise_skips(self) -> None:
        """Log the skips counted since the last summary, if any (also at shutdown)."""
        with self._skips_lock:
            counts, self._skips = self._skips, Counter()
        if counts:
            most = ", ".join(f"{module} {n}" for module, n in counts.most_common(5))
            log.warning("%d tick(s) of %d module(s) skipped: the module's previous tick "
                        "was still running (it overran its interval); most: %s",
                        sum(counts.values()), len(counts), most)

    def plan(self, module: str, spec: JobSpec, run_now: bool = True) -> None:
        """Add the module's job, or change it when its spec changed (keeps it otherwise)."""
        if self._specs.get(module) == spec:
            return
        now = self._clock.now()
        trigger = spec.trigger(now)
        first = datetime.fromtimestamp(now + spec.phase, UTC) if run_now else None
        if module in self._specs:
            self._scheduler.modify_job(module, misfire_grace_time=spec.grace())
            self._scheduler.reschedule_job(module, trigger=trigger)
        else:
            kwargs = {"next_run_time": first} if first is not None else {}
            self._scheduler.add_job(self._run, trigger, args=[module], id=module,
                                    name=f"tick {module}", coalesce=True, max_instances=1,
                                    misfire_grace_time=spec.grace(), replace_existing=True,
                                    **kwargs)
        self._specs[module] = spec
        log.debug("module %s: every %gs (aligned: %s, offset %gs)", module, spec.interval,
                  spec.align, spec.offset)

    def run_now(self, module: str) -> None:
        """Run the module's job as soon as a worker is free (then on its grid again), e.g.
        the first tick after this instance took the module's lease over."""
        if module in self._specs and self._scheduler.running:
            self._scheduler.modify_job(module, next_run_time=datetime.now(UTC))

    def remove(self, module: str) -> None:
        if self._specs.pop(module, None) is not None:
            self._scheduler.remove_job(module)

    @property
    def modules(self) -> list[str]:
        return sorted(self._specs)

    def start(self) -> None:
        self._scheduler.start()

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def shutdown(self, wait: bool = True) -> None:
        """Stop scheduling; with ``wait``, return once running ticks have finished."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        self.summarise_skips()
