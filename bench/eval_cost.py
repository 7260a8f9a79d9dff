#!/usr/bin/env python3
"""Evaluation cost: CPU per tick for 10, 100, 1,000 and 10,000 rules, source I/O excluded.

    .venv/bin/python bench/eval_cost.py [--sizes 10,100,1000,10000]

One module with the five standard metrics and N rules cycling through the kinds the shipped
defaults use (relative with the sequential test against V1: latency, error rate, throughput
(live), parse rate; growth on memory; bursts on the error rate; plus an absolute latency
limit), each rule with its own tolerance. Every rule is ``action: notify`` so no verdict
ever rolls the module back and every tick evaluates every rule. The samples are an
in-memory :class:`SeriesStore` (V1 and V2, one sample per metric every 10 s, 10 minutes of
history before the first tick, healthy noise as in the recorded scenarios); the journal is
SQLite ``:memory:``. Each tick is ``Engine.tick(module, now, store=...)``, the daemon's
code path minus the source: judge, state machine, checkpoint and decision journaling.
CPU is ``time.process_time()`` over many ticks after two warm-up ticks.

Prints ms/tick and µs/rule per size and whether the growth is linear (µs/rule within a
factor of 2 of the smallest size's, or falling). Target: under 1 ms per rule.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from watchdog.config.loader import RuleSet
from watchdog.config.schema import Module
from watchdog.engine import Engine
from watchdog.journal.store import Journal
from watchdog.judge.series import SeriesStore
from watchdog.model import Sample, Version

STEP = 10.0
HISTORY = 600.0
METRICS: dict[str, dict[str, Any]] = {
    "latency_p95_ms": {"direction": "higher_is_worse"},
    "error_rate": {"direction": "higher_is_worse"},
    "throughput_rps": {"direction": "lower_is_worse"},
    "parse_rate": {"direction": "lower_is_worse"},
    "memory_rss_bytes": {"direction": "growth_is_worse", "warmup": "5m"},
}


def rule(i: int) -> dict[str, Any]:
    base = {"name": f"r{i}", "severity": "warning", "action": "notify"}
    k = i % 7
    tol = f"{5 + i % 11}%"
    seq = {"kind": "relative", "test": "sequential", "window": "1m", "long_window": "5m",
           "for": "20s"}
    if k == 0:
        return {**base, **seq, "metric": "latency_p95_ms", "max_increase": tol}
    if k == 1:
        return {**base, **seq, "metric": "error_rate", "max_increase": "50%",
                "min_effect": 0.003}
    if k == 2:
        return {**base, **seq, "metric": "throughput_rps", "against": "live",
                "max_decrease": tol}
    if k == 3:
        return {**base, **seq, "metric": "parse_rate", "max_decrease": "3%"}
    if k == 4:
        return {**base, "kind": "growth", "metric": "memory_rss_bytes", "test": "sequential",
                "max_growth_per_hour": "10%", "window": "30m", "envelope": "5m"}
    if k == 5:
        return {**base, "kind": "bursts", "metric": "error_rate", "min_run": 4, "sigmas": 3,
                "min_effect": 0.02, "window": "10m"}
    return {**base, "kind": "absolute", "metric": "latency_p95_ms", "above": 1000 + i % 100}


def module(n: int) -> Module:
    return Module.model_validate({
        "name": "checkout", "interval": "10s", "metrics": METRICS,
        "rules": [rule(i) for i in range(n)],
        "plan": {"stages": [5, 100], "hold": "30d"}})


def store(until: float, seed: int = 1) -> SeriesStore:
    rng = np.random.default_rng(seed)
    samples: list[Sample] = []
    for t in np.arange(-HISTORY, until + STEP, STEP):
        for version in (Version.V1, Version.V2):
            values = {"latency_p95_ms": rng.normal(182, 6),
                      "error_rate": rng.binomial(2000, 0.005) / 2000,
                      "throughput_rps": rng.poisson(500) / 10,
                      "parse_rate": rng.binomial(6000, 0.98) / 6000,
                      "memory_rss_bytes": 420e6 + (t % 300) / 300 * 14.5e6
                      + rng.normal(0, 2e6)}
            samples += [Sample(float(t), "checkout", version, m, float(v))
                        for m, v in values.items()]
    return SeriesStore.of(samples)


def measure(n: int, ticks: int) -> float:
    """CPU seconds per tick with ``n`` rules."""
    mod = module(n)
    engine = Engine(RuleSet(modules={"checkout": mod}), Journal(":memory:"),
                    source=None)  # type: ignore[arg-type]  # never used: store= is given
    data = store((ticks + 3) * STEP)
    now = 0.0
    for _ in range(2):  # the start, then one tick (caches, first checkpoint)
        engine.tick("checkout", now, store=data)
        now += STEP
    began = time.process_time()
    for _ in range(ticks):
        engine.tick("checkout", now, store=data)
        now += STEP
    spent = (time.process_time() - began) / ticks
    cp = engine.checkpoint("checkout")
    assert cp is not None and cp.phase.value == "progressing", cp
    engine.journal.close()
    return spent


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10,100,1000,10000")
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    print("rules  ticks   ms/tick   us/rule")
    per_rule: list[float] = []
    for n in sizes:
        ticks = max(5, min(200, 20000 // n))
        spent = measure(n, ticks)
        per_rule.append(spent / n * 1e6)
        print(f"{n:>5}  {ticks:>5}  {spent * 1e3:8.2f}  {per_rule[-1]:8.1f}", flush=True)
    first = per_rule[0]
    linear = all(u <= 2 * first for u in per_rule)
    print(f"growth: {'linear (or better)' if linear else 'SUPERLINEAR'} "
          f"(us/rule from {per_rule[0]:.1f} at {sizes[0]} to {per_rule[-1]:.1f} at {sizes[-1]})")
    worst = max(per_rule)
    print(f"target: < 1 ms (1000 us) per rule -> {'MET' if worst < 1000 else 'NOT MET'} "
          f"(worst {worst:.1f} us/rule)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
