#!/usr/bin/env python3
"""Onset-to-flag time of a rollback under the faults of issue 16 (items 1-4), beside no fault.

    .venv/bin/python bench/rollback_under_faults.py [--runs 3] [--cap 90] [--faults a,b]

Each run starts a fresh ``rollout-watchdog run --config FILE`` daemon (system clock) with
the ``prometheus`` source pointed at a stand-in Prometheus (bench/faultkit.py: synthetic
V1/V2 series of the five standard metrics, queried with the PromQL of the shipped
defaults, ten queries a tick) and the ``webhook`` actuator pointed at a local flag server.
The plan is 5 % (hold 3 s) -> 50 % (hold 1 h) -> 100 %; one rule: V2's p95 latency more
than 20 % above live V1's over 1.5 intervals, ``for`` one interval, rollback. Once the
advance to 50 % is journaled, V2's latency becomes x3 at an onset 2-2+interval s later
(t0: from then on the source serves the regression). t1: the flag server receives V1 / 0 %.
Decision times come from the journal (sqlite3). Faults (applied ~1 s before the onset
unless said otherwise):

  none            baseline
  journal-locked  (item 1) another process holds BEGIN IMMEDIATE on the journal for 30 s
  actuator-hang   (item 2) the flag server never answers any call applying the advance to
                  50 % (from before the onset); later decisions are answered at once
  source-slow     (item 3) every query is answered after --slow-delay s (0.4 x interval)
  source-hang     (item 3) the memory queries never answer; the others answer at once
  source-down     (item 4) once the rule's alert is pending in the journal (the regression
                  was seen), the source refuses connections
  source-down-hang (item 4 variant, not in the default set) ... every query hangs instead

Prints each run, then min / median / max per fault and whether the median is within one
evaluation interval of the baseline's. A run that does not flip within --cap seconds of
the onset counts as infinitely slow. Every process and server is stopped at the end; all
traffic is to 127.0.0.1. ``--tree DIR`` runs the daemon from another checkout's package
(PYTHONPATH=DIR), e.g. ``git archive HEAD watchdog | tar -x -C DIR`` for a fixed snapshot.

Before the fixes (6964848, --runs 3, onset -> flag min / median / max): none 2.50 / 2.61 /
4.08 s; journal-locked 30.1 / 31.7 / 33.2; actuator-hang 43.7 / 43.7 / 45.4 (decided at
~22 s); source-slow (0.8 s) 18.4 / 27.3 / 27.6 (2 s per query: 42.9 / 63.2 / 63.6);
source-hang, source-down, source-down-hang: not rolled back within 90 s in 3 of 3.
A full run took 23 min before the fixes, about 5 min after.
"""

from __future__ import annotations

import argparse
import math
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultkit import FlagServer, StandInPrometheus, start_locker

from watchdog.demo.processes import (
    Child,
    Children,
    DemoError,
    cli_command,
    env_for_children,
)

FAULTS = ("none", "journal-locked", "actuator-hang", "source-slow", "source-hang",
          "source-down")
EXTRA = ("source-down-hang",)
RULE = "latency_p95_regression"
LOCK_HOLD = 30.0
QUERIES = {  # the shipped defaults' PromQL (watchdog/defaults/default.yaml)
    "latency_p95_ms": ("higher_is_worse", "1000 * histogram_quantile(0.95, sum by (le) "
                       "(rate(http_request_duration_seconds_bucket{$m}[1m])))"),
    "error_rate": ("higher_is_worse", "sum(rate(http_requests_failed_total{$m}[1m])) / "
                   "sum(rate(http_requests_total{$m}[1m]))"),
    "throughput_rps": ("lower_is_worse", "sum(rate(http_requests_total{$m}[1m])) / "
                       "count(up{$m} == 1)"),
    "parse_rate": ("lower_is_worse", "sum(rate(messages_parsed_total{$m}[1m])) / "
                   "sum(rate(messages_received_total{$m}[1m]))"),
    "memory_rss_bytes": ("growth_is_worse", "max(process_resident_memory_bytes{$m})"),
}
SELECTOR = 'module="{module}",version="{version}"'


def rules_yaml(interval: float, for_: float) -> str:
    metrics = "".join(f"      {name}:\n        direction: {d}\n"
                      f"        query: '{q.replace('$m', SELECTOR)}'\n"
                      for name, (d, q) in QUERIES.items())
    return f"""\
modules:
  - name: checkout
    interval: {interval:g}s
    metrics:
{metrics}    rules:
      - name: {RULE}
        kind: relative
        metric: latency_p95_ms
        against: live
        max_increase: 20%
        window: {1.5 * interval:g}s
        min_samples: 1
        for: {for_:g}s
        severity: critical
        action: rollback
    plan:
      stages: [{{traffic: 5, hold: 3s}}, {{traffic: 50, hold: 1h}}, 100]
      hold: 1h
"""


def config_yaml(prom_url: str, flag_url: str) -> str:
    return f"""\
db: journal.db
rules: [rules.yaml]
source:
  plugin: prometheus
  options: {{url: "{prom_url}"}}
actuators:
  - plugin: webhook
    options: {{url: "{flag_url}", secret: bench-secret}}
notifiers: [{{plugin: log}}]
modules:
  - {{name: checkout, auto_start: true}}
log_level: info
"""


def query(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows from the journal, read-only; [] while it cannot be read."""
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []


def wait_for(what: str, check: Any, timeout: float, daemon: Child, step: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if not daemon.alive():
            raise DemoError(f"daemon exited while waiting for {what}: {daemon.tail()}")
        time.sleep(step)
    raise DemoError(f"timed out after {timeout:g}s waiting for {what}: {daemon.tail()}")


def is_rollback(state: dict[str, Any]) -> bool:
    return bool(state.get("version") == "v1" and state.get("traffic_percent") == 0)


@dataclass(frozen=True)
class Run:
    fault: str
    took: float  # onset -> flag; inf: not within the cap
    decided: float | None  # onset -> the rollback decision's time (journal ``at``)
    journaled: float | None  # onset -> journaled_at
    note: str


def one_run(children: Children, work: Path, fault: str, a: argparse.Namespace,
            env: dict[str, str]) -> Run:
    work.mkdir(parents=True)
    db = work / "journal.db"
    limit = a.cap + 30
    prom = StandInPrometheus(limit)
    flags = FlagServer(limit, hang_on=(lambda s: s.get("traffic_percent") == 50)
                       if fault == "actuator-hang" else None)
    (work / "rules.yaml").write_text(rules_yaml(a.interval, a.for_), "utf-8")
    (work / "watchdog.yaml").write_text(config_yaml(prom.url, flags.url), "utf-8")
    daemon = children.start("daemon", [*cli_command(), "run", "--config",
                                       str(work / "watchdog.yaml")],
                            work / "daemon.log", env=env, cwd=work)
    locker: Child | None = None
    notes: list[str] = []
    try:
        wait_for("the advance to 50 %", lambda: query(
            db, "SELECT at FROM decisions WHERE action='advance' AND traffic_percent=50"),
            60, daemon)
        planned = time.time() + 2.0 + random.uniform(0, a.interval)
        time.sleep(max(0.0, planned - 1.0 - time.time()))
        if fault == "journal-locked":
            locker, locked_at = start_locker(children, db, LOCK_HOLD, work / "locker.log")
        elif fault == "source-slow":
            prom.faults.delay = a.slow_delay
        elif fault == "source-hang":
            prom.faults.hang = frozenset({"memory_rss_bytes"})
        onset = prom.onset = max(planned, time.time() + 0.05)
        if fault == "journal-locked":
            notes.append(f"journal locked from {locked_at - onset:+.2f}s for {LOCK_HOLD:g}s")
        down_at: float | None = None
        deadline = onset + a.cap
        flip = None
        while time.time() < deadline and flip is None:
            flip = flags.first(is_rollback)
            if fault.startswith("source-down") and down_at is None and query(
                    db, "SELECT 1 FROM alerts WHERE rule=? AND active_at>=?", (RULE, onset)):
                if fault == "source-down":
                    prom.go_down()
                else:
                    prom.faults.hang = frozenset(QUERIES)
                down_at = time.time()
                how = "down" if fault == "source-down" else "hanging"
                notes.append(f"alert pending, source {how} at {down_at - onset:+.2f}s")
            if not daemon.alive():
                raise DemoError(f"daemon exited: {daemon.tail()}")
            time.sleep(0.01)
        if fault.startswith("source-down") and down_at is None:
            notes.append("the alert was never seen pending; the source stayed up")
        if fault == "actuator-hang":
            notes.append(f"{len(flags.hung)} hung POST(s) of the 50 % advance")
        prom.release.set()
        flags.release.set()
        if locker is not None:
            children.stop(locker)
            locker = None
        rows: list[tuple[Any, ...]] = []
        if flip is not None:  # give a deferred journal write a moment
            end = time.monotonic() + 2 * a.interval + 1
            while not rows and time.monotonic() < end:
                rows = query(db, "SELECT at, journaled_at FROM decisions WHERE "
                             "action='rollback' ORDER BY id LIMIT 1")
                time.sleep(0.05)
        took = flip.at - onset if flip is not None else math.inf
        decided = rows[0][0] - onset if rows else None
        journaled = rows[0][1] - onset if rows else None
        return Run(fault, took, decided, journaled, "; ".join(notes))
    finally:
        prom.release.set()
        flags.release.set()
        children.stop(daemon)
        if locker is not None:
            children.stop(locker)
        prom.stop()
        flags.stop()


def secs(x: float | None, cap: float) -> str:
    if x is None:
        return "   -   "
    return f"{x:6.2f}s" if math.isfinite(x) else f"  >{cap:g}s"


def describe(r: Run, cap: float) -> str:
    if not math.isfinite(r.took):
        head = f"not rolled back within {cap:g} s"
    else:
        head = (f"{r.took:6.2f}s  (decided {secs(r.decided, cap)}, journaled "
                f"{secs(r.journaled, cap)})")
    return head + (f"  [{r.note}]" if r.note else "")


def summary(runs: list[Run], faults: list[str], a: argparse.Namespace) -> None:
    base = statistics.median(r.took for r in runs if r.fault == "none") \
        if "none" in faults else None
    print(f"\n{'fault':<17}{'min':>9}{'median':>9}{'max':>9}  vs baseline median "
          f"(within one interval = {a.interval:g}s?)")
    for f in faults:
        t = sorted(r.took for r in runs if r.fault == f)
        med = statistics.median(t)
        verdict = "-"
        if base is not None and f != "none":
            diff = med - base
            verdict = (f"{diff:+.2f}s " + ("yes" if diff <= a.interval else "NO")) \
                if math.isfinite(diff) else "NO (not rolled back)"
        print(f"{f:<17}{secs(t[0], a.cap):>9}{secs(med, a.cap):>9}{secs(t[-1], a.cap):>9}  "
              f"{verdict}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per fault")
    p.add_argument("--faults", default=",".join(FAULTS),
                   help=f"comma-separated, of {', '.join(FAULTS + EXTRA)}")
    p.add_argument("--cap", type=float, default=90.0, help="give up this long after onset (s)")
    p.add_argument("--interval", type=float, default=2.0, help="evaluation interval (s)")
    p.add_argument("--for", dest="for_", type=float, default=2.0, help="the rule's for (s)")
    p.add_argument("--slow-delay", type=float, help="source-slow: seconds per query "
                   "(default 0.4 x the interval: under the tick's deadline when queries run "
                   "at once, ten times that when they run one after another)")
    p.add_argument("--tree", type=Path, help="run the daemon's package from this folder")
    p.add_argument("--keep", type=Path, help="keep each run's files (daemon.log, journal.db) "
                   "in this new folder instead of a temporary one")
    a = p.parse_args()
    faults = [f.strip() for f in a.faults.split(",") if f.strip()]
    unknown = [f for f in faults if f not in FAULTS + EXTRA]
    if unknown or a.runs < 1:
        p.error(f"unknown fault(s) {', '.join(unknown)}" if unknown else "--runs must be >= 1")
    if a.slow_delay is None:
        a.slow_delay = 0.4 * a.interval
    env = env_for_children()
    if a.tree is not None:
        env["PYTHONPATH"] = str(a.tree.resolve())
    print(f"config: interval {a.interval:g}s, rule for {a.for_:g}s, window "
          f"{1.5 * a.interval:g}s, V2 p95 latency x3 from the onset, prometheus stand-in "
          f"(10 queries a tick, slow: {a.slow_delay:g}s each), webhook actuator, "
          f"{a.runs} run(s) per fault, cap {a.cap:g}s"
          + (f", daemon from {a.tree}" if a.tree else ""), flush=True)
    runs: list[Run] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rollback-faults-") as tmp, Children() as children:
        where = Path(tmp) if a.keep is None else a.keep
        for i in range(a.runs):  # rounds, so a slow patch of the machine hits every fault
            for f in faults:
                r = one_run(children, where / f"{f}-{i}", f, a, env)
                runs.append(r)
                print(f"  run {i + 1} {f:<17} {describe(r, a.cap)}", flush=True)
    summary(runs, faults, a)
    print(f"\nwall time {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
