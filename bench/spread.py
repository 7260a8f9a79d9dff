#!/usr/bin/env python3
"""Spread: three daemon instances on one PostgreSQL share 300 modules; one is killed.

    .venv/bin/python bench/spread.py [--modules 300] [--instances 3] [--interval 5]

Real parts: a PostgreSQL server started here (Debian's binaries, as tests/journal does)
and ``rollout-watchdog run`` processes (system clock, every module ticked every
``--interval`` seconds; no rollout is started, so a tick is the lease check and a
checkpoint read: what is measured is the lease traffic). The instances start one after
the other; each takes leases up to its fair share, ``ceil(modules / live instances)``,
and gives some back when the next one joins (watchdog/daemon/leases.py). Printed:

* balance: leases per instance once they settle, and the largest distance from the fair
  share (target <= 1), with the time the last join took to settle;
* takeover: one instance SIGKILLed; the time until every module it guarded is held by a
  survivor (target <= 2 intervals; the lease time to live is 1.5 intervals) and the
  balance after;
* the lease table's write rate (renewals) and each daemon's RSS.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("rollout-watchdog")
SCENARIO = ROOT / "tests" / "data" / "scenarios" / "aa-clean-1000.jsonl"


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


PG = _load(ROOT / "tests" / "journal" / "conftest.py", "bench_pg")

RULES = """modules:
  - name: "*"
    include_defaults: true
    plan: {stages: [5, 50, 100], hold: 10m}
"""


def counts(url: str, names: set[str]) -> dict[str, int]:
    from watchdog.journal import open_journal

    j = open_journal(url)
    try:
        now = time.time()
        held = [lease.holder for lease in j.leases()
                if lease.module in names and lease.held(now)]
    finally:
        j.close()
    return dict(collections.Counter(held))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def settle(url: str, names: set[str], live: list[str], timeout: float) -> float | None:
    """Seconds until every module is held by a live instance within one of fair share."""
    fair = math.ceil(len(names) / len(live))
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        c = counts(url, names)
        if sum(c.get(i, 0) for i in live) == len(names) and \
                all(abs(c.get(i, 0) - fair) <= 1 for i in live if i in c) and \
                set(c) <= set(live):
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modules", type=int, default=300)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--interval", type=float, default=5.0)
    args = ap.parse_args()
    names = [f"m{i:04d}" for i in range(args.modules)]
    server = PG.PgServer()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = []
    try:
        with tempfile.TemporaryDirectory(prefix="spread-") as tmp:
            root = Path(tmp)
            url = server.new_schema()
            (root / "rules.yaml").write_text(RULES)
            (root / "watchdog.yaml").write_text(
                f'db: "{url}"\nrules: [rules.yaml]\n'
                f'source: {{plugin: file, options: {{path: "{SCENARIO}"}}}}\n'
                'actuators: [{plugin: file, options: {path: "{state_dir}/{module}.json"}}]\n'
                f"notifiers: [{{plugin: log}}]\nmodules: [{', '.join(names)}]\n"
                f"interval: {args.interval}s\nlog_level: warning\n")
            instances = [f"i{k}" for k in range(args.instances)]
            settled: list[float | None] = []
            for k, name in enumerate(instances):
                log = (root / f"{name}.log").open("wb")
                logs.append(log)
                procs[name] = subprocess.Popen(
                    [str(EXE), "run", "--config", str(root / "watchdog.yaml")], cwd=root,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, "WATCHDOG_INSTANCE": name})
                settled.append(settle(url, set(names), instances[:k + 1], 120))
            c = counts(url, set(names))
            fair = math.ceil(len(names) / len(instances))
            worst = max(abs(c.get(i, 0) - fair) for i in instances)
            print(f"spread: {len(names)} modules, {len(instances)} instances, interval "
                  f"{args.interval:g} s (lease ttl {1.5 * args.interval:g} s)")
            print(f"  settled after each join: "
                  f"{', '.join('none' if s is None else f'{s:.1f} s' for s in settled)}")
            print(f"  leases per instance: {dict(sorted(c.items()))}; fair share {fair}; "
                  f"largest distance {worst} (target <= 1)")
            time.sleep(2 * args.interval)  # steady state
            moves = _epochs(url)
            victim = instances[0]
            theirs = {m for m, h in _holders(url).items() if h == victim and m in set(names)}
            rss = {n: rss_mib(p.pid) for n, p in procs.items()}
            t0 = time.monotonic()
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            taken = None
            while time.monotonic() - t0 < 10 * args.interval:
                held = _holders(url, live_only=True)
                if all(held.get(m) not in (None, victim) for m in theirs):
                    taken = time.monotonic() - t0
                    break
                time.sleep(0.05)
            survivors = instances[1:]
            again = settle(url, set(names), survivors, 60)
            c = counts(url, set(names))
            fair2 = math.ceil(len(names) / len(survivors))
            print(f"  killed {victim} (guarding {len(theirs)}): all taken over after "
                  + ("never" if taken is None else
                     f"{taken:.2f} s = {taken / args.interval:.2f} intervals") + " (target "
                  f"<= 2); leases after: {dict(sorted(c.items()))}, fair share {fair2}, "
                  f"largest distance {max(abs(c.get(i, 0) - fair2) for i in survivors)}"
                  + ("" if again is None else f" (settled {again:.1f} s after the kill)"))
            print(f"  lease moves before the kill (epoch bumps): {moves}; RSS per "
                  f"instance: {', '.join(f'{n} {v:.1f} MiB' for n, v in rss.items())}")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
        for log in logs:
            log.close()
        server.stop()
    return 0


def _holders(url: str, live_only: bool = False) -> dict[str, str]:
    from watchdog.journal import open_journal

    j = open_journal(url)
    try:
        now = time.time()
        return {lease.module: lease.holder for lease in j.leases()
                if not live_only or lease.held(now)}
    finally:
        j.close()


def _epochs(url: str) -> int:
    """Lease moves so far: the sum of (epoch - 1) over the module leases."""
    from watchdog.journal import open_journal

    j = open_journal(url)
    try:
        return sum(lease.epoch - 1 for lease in j.leases() if not lease.module.startswith("@"))
    finally:
        j.close()


if __name__ == "__main__":
    sys.exit(main())
