"""The APScheduler 3.x jobs as the daemon sets them up: coalesced, never overlapping,
aligned to the interval, and a shutdown that waits for the running tick."""

from __future__ import annotations

import threading
import time

from watchdog.daemon.scheduler import JobSpec, Scheduler


def test_a_slow_tick_never_overlaps_and_shutdown_waits_for_it() -> None:
    running = 0
    overlap = False
    runs: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def tick(module: str) -> None:
        nonlocal running, overlap
        with lock:
            running += 1
            overlap = overlap or running > 1
        began = time.monotonic()
        time.sleep(0.25)  # five intervals of 50 ms
        with lock:
            running -= 1
            runs.append((module, began, time.monotonic()))

    scheduler = Scheduler(tick, max_workers=4)
    scheduler.plan("a", JobSpec(0.05, align=False))
    scheduler.start()
    try:
        time.sleep(0.9)
    finally:
        scheduler.shutdown(wait=True)
        stopped = time.monotonic()
    assert not overlap
    assert 2 <= len(runs) <= 4  # back to back, the overdue runs skipped or coalesced
    assert runs[-1][2] <= stopped  # the last run finished before shutdown returned
    assert all(m == "a" for m, _, _ in runs)


def test_ticks_land_on_the_interval_boundaries_plus_the_offset() -> None:
    times: list[float] = []
    scheduler = Scheduler(lambda module: times.append(time.time()), max_workers=2)
    scheduler.plan("a", JobSpec(0.5, align=True, offset=0.1), run_now=False)
    scheduler.start()
    try:
        deadline = time.monotonic() + 3
        while len(times) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        scheduler.shutdown(wait=True)
    assert len(times) >= 2
    phases = [(t - 0.1) % 0.5 for t in times]
    assert all(p < 0.15 for p in phases), phases  # just after each boundary
    scheduler2 = Scheduler(lambda module: None)
    scheduler2.plan("a", JobSpec(10.0))
    scheduler2.plan("a", JobSpec(10.0))  # unchanged: kept
    assert scheduler2.modules == ["a"]
    scheduler2.remove("a")
    assert scheduler2.modules == []


def test_skipped_ticks_are_counted_and_summarised_not_logged_one_by_one(caplog) -> None:  # type: ignore[no-untyped-def]
    """A tick that overruns its interval makes APScheduler skip the runs that would
    overlap; it logs a warning for each (410 at a 1,000-module start-up). Here: the first
    skip is summarised at once, the rest at shutdown (within a minute), every skip counted
    (on_skip: the watchdog_ticks_skipped counter), and no per-skip warning gets through."""
    skipped: list[str] = []
    scheduler = Scheduler(lambda module: time.sleep(0.3), max_workers=2,
                          on_skip=skipped.append)
    scheduler.plan("slow", JobSpec(0.05, align=False))
    caplog.set_level("WARNING")
    scheduler.start()
    try:
        time.sleep(1.0)
    finally:
        scheduler.shutdown(wait=True)
    assert len(skipped) >= 3 and set(skipped) == {"slow"}
    assert not [r for r in caplog.records if "skipped: maximum number" in r.getMessage()]
    summaries = [r.getMessage() for r in caplog.records if "tick(s) of" in r.getMessage()]
    assert len(summaries) == 2, summaries
    assert summaries[0].startswith("1 tick(s) of 1 module(s) skipped")
    counted = sum(int(s.split(" ", 1)[0]) for s in summaries)
    assert counted == len(skipped)
    assert summaries[1].endswith(f"most: slow {len(skipped) - 1}")
