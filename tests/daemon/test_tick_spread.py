"""Many modules: their ticks are spread over the first part of the interval, and only a few
judge at once (issue 19, Scale: 1,000 modules due at the same instant on one GIL made
every tick last the whole round, evaluation p99 10 s at a 10-s interval).

The real :class:`~watchdog.daemon.service.Daemon` on a real SQLite journal and the file
source (wall clock: the recording's times are long past, so every tick holds for lack of
data, which is all these tests need); each module's engine is wrapped only to count how
many judge at the same moment.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any

from watchdog.daemon import slots
from watchdog.daemon.scheduler import SPREAD_FRACTION, SPREAD_PER_JOB, JobSpec, phases
from watchdog.daemon.service import Daemon

MODULES = 40


def daemon_with(tmp_path: Path, dkit: Any, modules: int, interval: str = "10s") -> Daemon:
    setup = dkit.make_setup(tmp_path, actuator="file")
    names = ", ".join(f"{{name: m{i:03d}, auto_start: true}}" for i in range(modules))
    setup.rules.write_text(
        "modules:\n  - name: \"*\"\n    include_defaults: true\n"
        f"    interval: {interval}\n    plan: {{stages: [5, 100], hold: 1d}}\n")
    text = setup.config.read_text().replace("modules: [{name: checkout, auto_start: true}]",
                                            f"modules: [{names}]")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("clock:"))
    setup.config.write_text(text + "\n")
    return Daemon(str(setup.config), env=dict(os.environ))


def test_phases_spread_evenly_within_half_the_interval() -> None:
    names = [f"m{i:04d}" for i in range(1000)]
    got = phases(names, 10.0)
    ordered = [got[n] for n in sorted(names)]
    assert ordered[0] == 0.0 and ordered == sorted(ordered)
    assert ordered[-1] < SPREAD_FRACTION * 10.0
    assert len(set(ordered)) == 1000
    gaps = {round(b - a, 4) for a, b in itertools.pairwise(ordered)}
    assert gaps == {0.005}, gaps  # 5 s over 1,000 modules
    assert phases(["only"], 10.0) == {"only": 0.0}  # one module ticks on the grid
    few = phases(["a", "b", "c"], 10.0)
    assert max(few.values()) < 3 * SPREAD_PER_JOB  # a few: within milliseconds


def test_the_daemon_plans_each_module_at_its_own_phase(tmp_path: Path, dkit: Any) -> None:
    daemon = daemon_with(tmp_path, dkit, MODULES)
    try:
        specs = {m: daemon._spec(m) for m in daemon.units}
        got = sorted(s.phase for s in specs.values())
        assert len(set(got)) == MODULES, got
        assert got[-1] <= SPREAD_PER_JOB * MODULES
        spec = specs["m001"]
        assert spec.interval == 10.0 and spec.align
        # the trigger fires at each grid point plus the phase
        fire = spec.trigger(0.0).get_next_fire_time(None, _utc(1000.0))
        assert abs(fire.timestamp() - (1000.0 + spec.phase)) < 1e-6
    finally:
        daemon.stop()


def test_only_a_few_ticks_judge_at_once(tmp_path: Path, dkit: Any) -> None:
    daemon = daemon_with(tmp_path, dkit, MODULES)
    lock = threading.Lock()
    now, most = 0, 0

    def counted(tick: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            nonlocal now, most
            with lock:
                now += 1
                most = max(most, now)
            try:
                time.sleep(0.02)  # a judge's CPU time, stretched: overlaps are certain
                return tick(*args, **kwargs)
            finally:
                with lock:
                    now -= 1
        return run

    for engine in daemon.engines.values():
        engine.tick = counted(engine.tick)  # type: ignore[method-assign]
    try:
        for _ in range(2):  # the rollouts' starts, then evaluations
            threads = [threading.Thread(target=daemon.tick, args=(m,)) for m in daemon.units]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
        assert daemon.stats.ticks == 2 * MODULES
        # 40 modules at 20 ms in 4 slots take about 0.2 s each round, far below the 2 s a
        # tick waits for a slot before judging without one
        assert most <= slots.SIZE, most
        assert daemon.slots.without == 0
    finally:
        daemon.stop()


def test_a_tick_waits_for_a_slot_no_longer_than_its_patience() -> None:
    pool = slots.Slots(1)
    held = threading.Event()
    release = threading.Event()

    def hog() -> None:
        with pool.hold(1.0):
            held.set()
            release.wait(30)

    t = threading.Thread(target=hog)
    t.start()
    try:
        assert held.wait(10)
        began = time.monotonic()
        with pool.hold(0.2) as got:
            waited = time.monotonic() - began
        assert got is False and pool.without == 1
        assert waited < 10  # it went on without a slot instead of waiting for the hog
    finally:
        release.set()
        t.join(10)
    assert slots.patience(10.0) == 2.0 and slots.patience(1.0) == 0.2
    assert slots.patience(0.1) == 0.05


def test_the_first_tick_also_waits_for_its_phase() -> None:
    spec = JobSpec(10.0, phase=3.0)
    assert spec.trigger(0.0).origin == 3.0


def _utc(t: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC)


def test_a_tick_does_not_wait_for_the_lease_keepers_round(tmp_path: Path, dkit: Any) -> None:
    """The keeper's round holds the guard's lock through its journal writes (a thousand
    renewals at 1,000 modules); a tick under a valid lease reads it without that lock."""
    daemon = daemon_with(tmp_path, dkit, 3)
    try:
        assert daemon.guard.for_tick("m000") is not None  # the first round
        release, held = threading.Event(), threading.Event()

        def long_round() -> None:
            with daemon.guard._lock:
                held.set()
                release.wait(30)

        keeper = threading.Thread(target=long_round)
        keeper.start()
        assert held.wait(10)
        got: list[Any] = []
        reader = threading.Thread(target=lambda: got.append(
            (daemon.guard.for_tick("m001"), daemon.guard.fence("m001"),
             daemon.guard.holds("m001"))))
        reader.start()
        reader.join(10)  # the round "lasts" 30 s
        release.set()
        keeper.join(10)
        assert got and got[0][0] is not None and got[0][1].epoch > 0 and got[0][2], got
    finally:
        daemon.stop()


def test_the_status_line_of_many_modules_is_not_built_after_every_tick(
        tmp_path: Path, dkit: Any) -> None:
    """It lists every module; after each of 1,000 ticks it cost more than the ticks. A real
    notification socket receives it at most about once a second above 50 modules."""
    import socket

    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.setblocking(False)
        os.environ["NOTIFY_SOCKET"] = path
        try:
            daemon = daemon_with(tmp_path, dkit, 60)
        finally:
            del os.environ["NOTIFY_SOCKET"]
        try:
            began = time.monotonic()
            for m in daemon.units:
                daemon._job(m)
            spent = time.monotonic() - began
            lines = []
            while True:
                try:
                    lines.append(sock.recv(1 << 20).decode())
                except BlockingIOError:
                    break
            status = [x for x in lines if x.startswith("STATUS=")]
            assert status and len(status) <= 2 + spent, (len(status), spent)
        finally:
            daemon.stop()
