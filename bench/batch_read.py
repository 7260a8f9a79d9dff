#!/usr/bin/env python3
"""The prometheus source's CPU per module tick in the steady state: every module's tick
reading its whole window (the shipped rules: 125 minutes, 750 points a series at 10 s)
from the batch cache.

    .venv/bin/python bench/batch_read.py [--modules 200] [--ticks 5] [--repeat 3]

``bench/scale.py`` runs the real daemon against a real Prometheus, but for minutes: its
series hold a few minutes of points, not the two hours a module reads once it has run that
long. This bench holds the whole window from the start. It runs the source in this
process against an in-process stand-in for Prometheus's range-query API (an
``httpx.MockTransport``: the point is the source's own CPU, not Prometheus's): one
answer per batched query, a series per module and version on the query's grid. After
two ticks (the first fetches every window: cold), it ticks every module ``--ticks`` more
times, as the daemon does (each grid point: the first module fetches the new points for
all, the others read the cache), and prints the CPU (this process, all threads: the
source's background fetch and the stand-in included) per module tick, the best of
``--repeat`` runs. Runs from any checkout (``PYTHONPATH=TREE``): it uses only
``PrometheusSource``'s public methods.
"""

from __future__ import annotations

import argparse
import re
import time
import zlib
from urllib.parse import parse_qs

import httpx

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module
from watchdog.engine import tick_window
from watchdog.sources.prometheus import PrometheusSource

T0 = 1_800_000_000.0  # a grid point of 10 s
STEP = 10.0


def answer(request: httpx.Request) -> httpx.Response:
    """A range query's answer: a series per module and version the query names."""
    form = parse_qs(request.content.decode()) if request.content else {}
    form.update(parse_qs(request.url.query.decode()))
    query = form["query"][0]
    start, end, step = (float(form[k][0]) for k in ("start", "end", "step"))
    modules = _names(query, "module")
    versions = _names(query, "version")
    times = [start + i * step for i in range(round((end - start) / step) + 1)]
    result = []
    for m in modules:
        for v in versions:
            base = 100.0 + zlib.crc32(f"{m}/{v}".encode()) % 50
            result.append({"metric": {"module": m, "version": v},
                           "values": [[t, repr(base + (t % 70.0))] for t in times]})
    body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return httpx.Response(200, json=body)


def _names(query: str, label: str) -> list[str]:
    found = re.search(label + r'=~"([^"]*)"', query)
    if found is None:
        exact = re.search(label + r'="([^"]*)"', query)
        return [exact.group(1)] if exact else []
    return [re.sub(r"\\(.)", r"\1", n) for n in found.group(1).split("|")]


def one_run(modules: list[Module], ticks: int) -> float:
    clock = [T0]
    source = PrometheusSource("http://prometheus.invalid", transport=httpx.MockTransport(answer),
                              now=lambda: clock[0] + 60.0)
    source.plan(modules, offset=0.0)
    window = tick_window(modules[0])
    try:
        cpu = 0.0
        for k in range(ticks + 2):
            end = T0 + k * STEP
            clock[0] = end
            before = time.process_time()
            sent = source.queries_sent
            for module in modules:
                # the cold windows may take long to build here; then the daemon's deadline
                store = source.fetch(module, end - window, end,
                                     deadline=600.0 if k < 2 else None)
                # the whole window, from the batch cache: the point of this bench
                assert store.count() >= 2 * len(module.metrics) * (window / STEP - 1), k
            if k >= 2:  # the first two: cold windows
                cpu += time.process_time() - before
                assert source.queries_sent - sent <= len(module.metrics), "not batched"
    finally:
        source.close()
    return cpu / (ticks * len(modules))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modules", type=int, default=200)
    p.add_argument("--ticks", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    template = load_default_rules().for_module("any")
    modules = [template.model_copy(update={"name": f"m{i:04d}"}) for i in range(a.modules)]
    window = tick_window(modules[0])
    runs = [one_run(modules, a.ticks) for _ in range(a.repeat)]
    series = sum(1 for m in modules[0].metrics.values() if m.query) * 2
    print(f"batched read, steady state: {a.modules} modules, a tick reads {window:.0f} s "
          f"({window / STEP:.0f} points x {series} series): "
          f"{1000 * min(runs):.2f} ms CPU per module tick (best of {a.repeat}; runs "
          + ", ".join(f"{1000 * r:.2f}" for r in runs) + ")")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
