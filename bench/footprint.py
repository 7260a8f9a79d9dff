#!/usr/bin/env python3
"""Footprint: resident memory of a running daemon guarding 10 modules of 10 rules each.

    .venv/bin/python bench/footprint.py [--modules 10] [--seconds 30] [--interval 1]

Real processes on loopback: the demo's simulated V1 and V2 services
(watchdog/demo/service.py) and one ``rollout-watchdog run`` daemon with the scrape source
(every module scrapes both services), the file actuator and the log notifier. Each module
declares the five standard metrics and 10 rules of the kinds the shipped defaults use
(relative with the sequential test, growth, bursts, absolute), evaluated every second.
After ``--seconds`` of ticks, VmRSS (resident now) and VmHWM (peak resident) are read
from /proc/PID/status of the daemon process; the number of ticks comes from its journal.

Target: under 80 MB resident, with every dependency installed (the PostgreSQL driver
too: the SQLite daemon does not import it, nor sqlite-utils, nor httpx's command-line
client and trio when the dev extras bring them; tests/daemon/test_daemon_imports.py).
Most of the rest is the libraries the daemon uses: numpy about 15 MiB, ssl and
http.client (httpx, urllib) about 7, pydantic 4 and the config models built with it 6,
apscheduler (asyncio) 4.5, prometheus-client 2; each module adds its SQLite connection
and its series.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from watchdog.demo.processes import (
    Children,
    DemoError,
    cli_command,
    env_for_children,
    service_argv,
    wait_for_port,
)

MODULE = """\
  - name: {name}
    interval: {interval}s
    metrics:
      latency_p95_ms:
        direction: higher_is_worse
        scrape:
          {{name: http_request_duration_seconds, type: histogram, quantile: 0.95, scale: 1000}}
      error_rate:
        direction: higher_is_worse
        scrape:
          {{name: http_requests_failed_total, type: counter, denominator: http_requests_total}}
      throughput_rps:
        direction: lower_is_worse
        scrape: {{name: http_requests_total, type: counter}}
      parse_rate:
        direction: lower_is_worse
        scrape:
          {{name: messages_parsed_total, type: counter, denominator: messages_received_total}}
      memory_rss_bytes:
        direction: growth_is_worse
        warmup: 5m
        scrape: {{name: process_resident_memory_bytes, type: gauge}}
    rules:
{rules}
    plan: {{stages: [5, 100], hold: 1d}}
"""
SEQ = "kind: relative, test: sequential, window: 1m, long_window: 5m, for: 20s"
RULES = [
    f"{{name: lat5, {SEQ}, metric: latency_p95_ms, max_increase: 5%}}",
    f"{{name: lat25, {SEQ}, metric: latency_p95_ms, max_increase: 25%, against: baseline}}",
    f"{{name: err, {SEQ}, metric: error_rate, max_increase: 50%, min_effect: 0.003}}",
    f"{{name: tput, {SEQ}, metric: throughput_rps, max_decrease: 5%, against: live}}",
    f"{{name: parse, {SEQ}, metric: parse_rate, max_decrease: 3%}}",
    "{name: mem, kind: growth, metric: memory_rss_bytes, test: sequential, "
    "max_growth_per_hour: 10%, window: 30m, envelope: 5m}",
    "{name: bursts, kind: bursts, metric: error_rate, min_run: 4, sigmas: 3, "
    "min_effect: 0.02, window: 10m}",
    "{name: lat_abs, kind: absolute, metric: latency_p95_ms, above: 1000}",
    "{name: err_abs, kind: absolute, metric: error_rate, above: 0.05}",
    "{name: parse_abs, kind: absolute, metric: parse_rate, below: 0.5}",
]
CONFIG = """\
db: journal.db
rules: [rules.yaml]
source:
  plugin: scrape
  options:
    endpoints:
{endpoints}
actuators:
  - plugin: file
    options: {{path: "{{state_dir}}/{{module}}.flags.json", format: json}}
modules:
{modules}
log_level: warning
"""


def status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modules", type=int, default=10)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=1.0)
    a = p.parse_args()
    names = [f"module{i}" for i in range(a.modules)]
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp, Children() as children:
        work = Path(tmp)
        procs = {v: children.start(v, service_argv(v, 0, work / f"{v}.port"), work / f"{v}.log")
                 for v in ("v1", "v2")}
        ports = {v: wait_for_port(c, work / f"{v}.port") for v, c in procs.items()}
        rules = "\n".join(f"      - {r}" for r in RULES)
        (work / "rules.yaml").write_text("modules:\n" + "".join(
            MODULE.format(name=n, interval=a.interval, rules=rules) for n in names), "utf-8")
        endpoints = "\n".join(
            f'      {n}: {{v1: "http://127.0.0.1:{ports["v1"]}/metrics", '
            f'v2: "http://127.0.0.1:{ports["v2"]}/metrics"}}' for n in names)
        modules = "\n".join(f"  - {{name: {n}, auto_start: true}}" for n in names)
        (work / "watchdog.yaml").write_text(CONFIG.format(endpoints=endpoints,
                                                          modules=modules), "utf-8")
        daemon = children.start("daemon", [*cli_command(), "run", "--config",
                                           str(work / "watchdog.yaml")],
                                work / "daemon.log", env=env_for_children(), cwd=work)
        time.sleep(a.seconds)
        if not daemon.alive():
            raise DemoError(f"the daemon exited: {daemon.tail()}")
        mem = status(daemon.pid)
        db = sqlite3.connect(work / "journal.db")
        started = db.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        db.close()
        log_errors = sum(1 for line in daemon.log.read_text().splitlines() if " ERROR " in line)
        children.stop(daemon)
    rss, hwm = mem["VmRSS"] / 2**20, mem["VmHWM"] / 2**20
    print(f"daemon: {a.modules} modules x {len(RULES)} rules, scrape source (2 endpoints), "
          f"file actuator, interval {a.interval:g}s, after {a.seconds:g}s "
          f"(about {int(a.seconds / a.interval)} ticks per module; {started} rollouts running; "
          f"{log_errors} errors logged)")
    print(f"VmRSS {rss:.1f} MiB   VmHWM {hwm:.1f} MiB")
    print(f"target: < 80 MB resident -> {'MET' if max(rss, hwm) < 80 * 1e6 / 2**20 else 'NOT MET'}"
          f" (80 MB = {80e6 / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
