"""Aligned ticks stay on the grid: whole multiples of the interval plus the offset.

The first tick of a newly planned module runs at once, by design (fresh data without
waiting up to one interval; see :mod:`watchdog.daemon.scheduler`), so it is off the grid
and left out of the phase check; every tick after it must land just after a grid point.
The real :class:`~watchdog.daemon.scheduler.Scheduler` runs here (APScheduler's thread and
pool, the wall clock). The phase tolerance (0.15 s of a 1 s interval) is generous for a
loaded 2-core machine; before the fix the phases followed the first run's instant instead
(anywhere in the second).
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime

from watchdog.daemon.scheduler import GridTrigger, JobSpec, Scheduler

INTERVAL = 1.0
OFFSET = 0.3
TOLERANCE = 0.15


def phase(t: float, interval: float = INTERVAL, offset: float = OFFSET) -> float:
    """How far past its grid point ``t`` is, in [0, interval)."""
    return (t - offset) % interval


def collect(spec: JobSpec, count: int, run_now: bool = True) -> list[float]:
    times: list[float] = []
    done = threading.Event()

    def tick(module: str) -> None:
        times.append(time.time())
        if len(times) >= count:
            done.set()

    scheduler = Scheduler(tick, max_workers=2)
    # start the plan far from the grid, so that an immediate run is visibly off it
    while not 0.6 < phase(time.time(), spec.interval, spec.offset) < 0.8:
        time.sleep(0.01)
    scheduler.plan("a", spec, run_now=run_now)
    scheduler.start()
    try:
        assert done.wait(count * spec.interval + 10), times
    finally:
        scheduler.shutdown(wait=True)
    return times


def test_ticks_after_the_immediate_first_run_land_on_the_grid_plus_offset() -> None:
    times = collect(JobSpec(INTERVAL, align=True, offset=OFFSET), 8)
    assert phase(times[0]) > 0.5  # the first run was immediate, not waiting for the grid
    phases = [round(phase(t), 3) for t in times[1:]]
    assert all(p < TOLERANCE for p in phases), phases
    gaps = [b - a for a, b in itertools.pairwise(times[1:])]
    assert all(0.5 < g < 1.5 for g in gaps), gaps  # one tick per grid point


def test_the_trigger_snaps_every_next_time_to_the_grid() -> None:
    """The trigger alone, without threads: whatever the previous fire time (the immediate
    run, a late run, a run exactly on a grid point, rounded to microseconds), the next fire
    time is the next grid point after it; when that is already past, the latest grid point
    not after now (coalesced: one run, not one per missed point)."""
    trigger = GridTrigger(interval=1.0, origin=0.3)

    def at(t: float) -> datetime:
        return datetime.fromtimestamp(t, UTC)

    base = 1_800_000_000.0
    assert trigger.get_next_fire_time(None, at(base + 0.7)) == at(base + 1.3)
    assert trigger.get_next_fire_time(None, at(base + 0.3)) == at(base + 0.3)
    assert trigger.get_next_fire_time(at(base + 0.7), at(base + 0.71)) == at(base + 1.3)
    assert trigger.get_next_fire_time(at(base + 1.3), at(base + 1.31)) == at(base + 2.3)
    assert trigger.get_next_fire_time(at(base + 1.2999999), at(base + 1.31)) == at(base + 2.3)
    assert trigger.get_next_fire_time(at(base + 1.3), at(base + 60.5)) == at(base + 60.3)
    unaligned = GridTrigger(interval=2.5, origin=base + 0.123)
    assert unaligned.get_next_fire_time(at(base + 0.123), at(base + 0.2)) == at(base + 2.623)


def test_a_tick_overrunning_several_intervals_is_followed_by_ticks_on_the_grid() -> None:
    """max_instances=1 skips the grid points that fall inside the overrun; coalesce and
    misfire_grace (one interval) run the next one once; the phase is kept throughout."""
    times: list[float] = []
    done = threading.Event()

    def tick(module: str) -> None:
        times.append(time.time())
        if len(times) == 2:
            time.sleep(1.7)  # 3.4 intervals
        if len(times) >= 6:
            done.set()

    scheduler = Scheduler(tick, max_workers=2)
    scheduler.plan("a", JobSpec(0.5, align=True, offset=0.2))
    scheduler.start()
    try:
        assert done.wait(15), times
    finally:
        scheduler.shutdown(wait=True)
    phases = [round(phase(t, 0.5, 0.2), 3) for t in times[1:]]
    assert all(p < TOLERANCE for p in phases), phases
    assert times[2] - times[1] > 1.7  # the overrun: nothing ran in between
