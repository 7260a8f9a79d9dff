#!/usr/bin/env python3
"""Time to rollback: from the moment a breach is visible in the source to the flag flipped.

    .venv/bin/python bench/time_to_rollback.py [--runs 20] [--interval 1] [--for 2]

Real processes on loopback: the demo's simulated V1 and V2 services
(watchdog/demo/service.py, 500 requests/s each) and, for each run, a fresh
``rollout-watchdog run`` daemon (scrape source, file actuator) with a tiny plan (stages
5/100, a hold of an hour, so it stays at 5 %) and one rule: V2's p95 latency more than 20 %
above live V1's over the last sample (``test: none``), ``for`` the given time, rollback.
Once the rule has been healthy for 2 s (plus a random 0-1 s, so the switch falls anywhere
between two evaluations), V2 switches to latency x3 (``POST /regress``): t0 is that switch
(from then on its endpoint serves the regression). t1 is the modification time of the file
actuator's flag file once it shows ``v1`` / 0. Prints every run, p50 and p99.

Target: p99 <= the rule's ``for`` + one evaluation interval + 100 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from watchdog.demo.processes import (
    Children,
    DemoError,
    cli_command,
    env_for_children,
    http_json,
    service_argv,
    wait_for_port,
)
from watchdog.demo.service import module_flags
from watchdog.journal.store import Journal

RULES = """\
modules:
  - name: checkout
    interval: {interval}s
    metrics:
      latency_p95_ms:
        direction: higher_is_worse
        unit: ms
        scrape:
          {{name: http_request_duration_seconds, type: histogram, quantile: 0.95, scale: 1000}}
    rules:
      - name: latency_p95_regression
        kind: relative
        metric: latency_p95_ms
        against: live
        max_increase: 20%
        window: {window}s
        min_samples: 1
        for: {for_}s
        severity: critical
        action: rollback
    plan:
      stages: [5, 100]
      hold: 1h
"""

CONFIG = """\
db: journal.db
rules: [rules.yaml]
source:
  plugin: scrape
  options:
    timeout: 1.0
    endpoints:
      checkout: {{v1: "{v1}", v2: "{v2}"}}
actuators:
  - plugin: file
    options: {{path: "{{state_dir}}/{{module}}.flags.json", format: json}}
modules:
  - {{name: checkout, auto_start: true}}
log_level: warning
"""


def wait(what: str, check: object, timeout: float, step: float = 0.01) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out waiting for {what}")
        time.sleep(step)


def one_run(children: Children, work: Path, urls: dict[str, str], v2_port: int,
            interval: float, for_: float) -> tuple[float, float, float]:
    """Seconds from the switch to: the rollback's tick, its journaling, the flag file."""
    work.mkdir(parents=True)
    (work / "rules.yaml").write_text(RULES.format(interval=interval, window=1.5 * interval,
                                                  for_=for_), "utf-8")
    (work / "watchdog.yaml").write_text(CONFIG.format(v1=urls["v1"], v2=urls["v2"]), "utf-8")
    flags = work / "journal.state" / "checkout.flags.json"
    daemon = children.start("daemon", [*cli_command(), "run", "--config",
                                       str(work / "watchdog.yaml")],
                            work / "daemon.log", env=env_for_children(), cwd=work)
    try:
        wait("the rollout to start", lambda: (module_flags(flags, "checkout") or {}).get(
            "traffic_percent") == 5, 30)
        journal = Journal(work / "journal.db")

        def healthy_for_2s() -> bool:
            if not daemon.alive():
                raise DemoError(f"daemon exited: {daemon.tail()}")
            v = journal.setting("verdict:checkout") or {}
            return v.get("kind") == "healthy" and time.time() - float(v["since"]) >= 2.0

        wait("healthy verdicts", healthy_for_2s, 30, step=0.05)
        journal.close()
        time.sleep(random.uniform(0, interval))
        t0 = float(http_json(f"http://127.0.0.1:{v2_port}/regress?on=1",
                             method="POST")["switched_at"])

        def flipped() -> bool:
            f = module_flags(flags, "checkout") or {}
            return f.get("version") == "v1" and f.get("traffic_percent") == 0

        wait("the rollback", flipped, 30, step=0.002)
        t1 = flags.stat().st_mtime
        journal = Journal(work / "journal.db")
        last = journal.last_decision("checkout")
        journal.close()
        assert last is not None and last.decision.action.value == "rollback", last
        return last.decision.at - t0, last.journaled_at - t0, t1 - t0
    finally:
        children.stop(daemon)
        http_json(f"http://127.0.0.1:{v2_port}/regress?on=0", method="POST")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--interval", type=float, default=1.0, help="evaluation interval (s)")
    p.add_argument("--for", dest="for_", type=float, default=2.0, help="the rule's for (s)")
    a = p.parse_args()
    target = a.for_ + a.interval + 0.1
    print(f"config: interval {a.interval:g}s, rule for {a.for_:g}s, window "
          f"{1.5 * a.interval:g}s, latency x3 on V2, {a.runs} runs; "
          f"target p99 <= for + interval + 100 ms = {target:.2f}s")
    times: list[float] = []
    parts: list[tuple[float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="ttr-") as tmp, Children() as children:
        base = Path(tmp)
        procs = {v: children.start(v, service_argv(v, 0, base / f"{v}.port",
                                                   regression="latency" if v == "v2" else "none",
                                                   factor=3.0 if v == "v2" else None),
                                   base / f"{v}.log") for v in ("v1", "v2")}
        ports = {v: wait_for_port(c, base / f"{v}.port") for v, c in procs.items()}
        urls = {v: f"http://127.0.0.1:{p}/metrics" for v, p in ports.items()}
        for i in range(a.runs):
            tick, journaled, took = one_run(children, base / f"run{i}", urls, ports["v2"],
                                            a.interval, a.for_)
            times.append(took)
            parts.append((tick, journaled - tick, took - journaled))
            print(f"  run {i + 1:>2}: {took:6.3f}s  (the rollback's tick at {tick:6.3f}s, "
                  f"journaled {1000 * (journaled - tick):5.1f} ms later, flag file "
                  f"{1000 * (took - journaled):5.1f} ms after that)", flush=True)
    arr = np.array(times)
    p50, p99 = np.percentile(arr, [50, 99])
    print(f"time to rollback: p50 {p50:.3f}s  p99 {p99:.3f}s  (min {arr.min():.3f}s, "
          f"max {arr.max():.3f}s, n={len(arr)})")
    tick_ms = 1000 * np.array([p[1] + p[2] for p in parts])
    print(f"from the rollback's tick to the flag file: p50 {np.median(tick_ms):.1f} ms, "
          f"max {tick_ms.max():.1f} ms")
    print(f"target: p99 <= {target:.2f}s -> {'MET' if p99 <= target else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
