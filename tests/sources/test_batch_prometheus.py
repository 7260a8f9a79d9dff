"""Batched fetches (one query per template for all modules, window cache) against a real
Prometheus: what each module sees equals what its own per-module queries return.

The Prometheus scrapes one in-process exporter as one target per (module, version) every
second (the target's labels are the module and version, so ``up`` has them too):

* ``a``, ``b``: steady traffic, both versions;
* ``c.x``: v2 appears 6 s in (a series appearing mid-window); a dot in the name, and a
  module ``cax`` with data that an unescaped ``c.x`` regex would also match;
* ``d``: v1's memory gauge disappears 6 s in (Prometheus writes stale markers), v2's is NaN;
* ``nodata``: declared, no target at all.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.sources.conftest import PrometheusProcess, free_port
from watchdog.config.schema import MetricSpec, Module
from watchdog.errors import SourceError
from watchdog.model import Direction, Version
from watchdog.sources.prometheus import PrometheusSource

SEL = '{module="{module}",version="{version}"}'
QUERIES = {
    "latency_p95_ms": "1000 * histogram_quantile(0.95, sum by (le) "
                      f"(rate(http_request_duration_seconds_bucket{SEL}[1m])))",
    "error_rate": f"sum(rate(http_requests_failed_total{SEL}[1m])) "
                  f"/ sum(rate(http_requests_total{SEL}[1m]))",
    "throughput_rps": f"sum(rate(http_requests_total{SEL}[1m])) / count(up{SEL} == 1)",
    "memory_rss_bytes": f"max(process_resident_memory_bytes{SEL})",
    "up_raw": f"up{SEL}",  # not aggregated: the one series per target as it is
    "per_module_only": f"sum(rate(http_requests_total{SEL}[1m])) / scalar(sum(up))",
}
TARGETS = [("a", "v1"), ("a", "v2"), ("b", "v1"), ("b", "v2"), ("c.x", "v1"), ("c.x", "v2"),
           ("cax", "v1"), ("cax", "v2"), ("d", "v1"), ("d", "v2")]
MODULES = ["a", "b", "c.x", "d", "nodata"]
WINDOW = 8.0


def exposition(module: str, version: str, age: float) -> str:
    if module == "c.x" and version == "v2" and age < 6:
        return ""
    n = round(age * (50 if module != "cax" else 500))
    failed = round(age * (2 if version == "v2" else 1))
    lines = [f"http_requests_total {n}", f"http_requests_failed_total {failed}"]
    for le, share in (("0.05", 0.9 if version == "v1" else 0.5), ("0.1", 1.0), ("+Inf", 1.0)):
        lines.append(f'http_request_duration_seconds_bucket{{le="{le}"}} {round(n * share)}')
    if module == "d" and version == "v2":
        lines.append("process_resident_memory_bytes NaN")
    elif not (module == "d" and version == "v1" and age >= 6):
        lines.append(f"process_resident_memory_bytes {1e8 if version == 'v1' else 1.5e8}")
    return "\n".join(lines) + "\n"


class Fleet:
    """The exporter. Its clock (``t0``) starts at Prometheus's first scrape, not when the
    fleet is made: a Prometheus slow to start (6 s and more on a loaded machine) would
    otherwise first scrape after the mid-window changes and never see what was before."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.started = False
        lock = threading.Lock()
        fleet = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                with lock:
                    if not fleet.started:
                        fleet.t0, fleet.started = time.time(), True
                body = exposition(query["module"][0], query["version"][0],
                                  time.time() - fleet.t0).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


def start_prometheus(binary: str, folder: Path, fleet: Fleet) -> PrometheusProcess:
    """The conftest's PrometheusProcess with one target per (module, version) of the fleet
    (URL parameters tell the exporter which)."""
    import json
    server = PrometheusProcess.__new__(PrometheusProcess)
    server.binary, server.folder, server.targets = binary, folder, []
    server.port, server.proc, server.log = free_port(), None, folder / "prometheus.log"
    configs = [{"targets": [fleet.address],
                "labels": {"module": m, "version": v, "__param_module": m,
                           "__param_version": v}} for m, v in TARGETS]
    server.config = folder / "prometheus.yml"
    server.config.write_text(json.dumps({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "fleet", "scrape_interval": "1s",
                            "scrape_timeout": "1s", "static_configs": configs}]}))
    server.start()
    return server


@pytest.fixture(scope="module")
def fleet_prometheus(prometheus_bin: str, tmp_path_factory: pytest.TempPathFactory
                     ) -> Iterator[tuple[PrometheusProcess, Fleet]]:
    fleet = Fleet()
    server = start_prometheus(prometheus_bin, tmp_path_factory.mktemp("fleet"), fleet)
    try:
        # 15 s of scrapes: the mid-window changes at 6 s lie inside the compared windows
        server.wait_for('count(up{job="fleet"} == 1) == 10')
        time.sleep(max(0.0, fleet.t0 + 15 - time.time()))
        yield server, fleet
    finally:
        server.stop()
        fleet.server.shutdown()


def module(name: str) -> Module:
    return Module(name=name, interval=1.0, metrics={
        metric: MetricSpec(direction=Direction.HIGHER_IS_WORSE, query=query)
        for metric, query in QUERIES.items()})


def seen(source: PrometheusSource, mod: Module, end: float) -> dict[str, Any]:
    """What a tick of ``mod`` at ``end`` sees: its samples, or the error it raised, and the
    kinds of the per-metric problems."""
    try:
        store = source.fetch(mod, end - WINDOW, end)
    except SourceError as err:
        return {"raised": type(err).__name__}
    samples = {(v.value, m): [(round(t, 3), pytest.approx(x, rel=1e-9))
                              for t, x in zip(store.get(v, m).t, store.get(v, m).v,
                                              strict=True)]
               for v in (Version.V1, Version.V2) for m in mod.metrics}
    errors = {(k[0].value, k[1]): type(e).__name__ for k, e in source.errors[mod.name].items()}
    return {"samples": {k: s for k, s in samples.items() if s}, "errors": errors}


def test_batched_fetches_equal_the_per_module_queries(
        fleet_prometheus: tuple[PrometheusProcess, Fleet]) -> None:
    server, fleet = fleet_prometheus
    modules = [module(name) for name in MODULES]
    plain = PrometheusSource(server.url)
    batched = PrometheusSource(server.url, recheck=0.0)
    batched.plan(modules, offset=0.0)
    first_end = math.floor(fleet.t0) + 4.0
    last_end = math.floor(time.time()) - 2.0  # every point settled in Prometheus
    ends = [first_end + k for k in range(int(last_end - first_end) + 1)]
    assert len(ends) >= 8
    sent: list[int] = []
    try:
        for end in ends:
            before = batched.queries_sent
            for mod in modules:
                expected, got = seen(plain, mod, end), seen(batched, mod, end)
                assert got == expected, f"module {mod.name} at {end - fleet.t0:.0f}s"
            sent.append(batched.queries_sent - before)
        middle = math.floor(fleet.t0) + 11.0  # the window (3 s, 11 s] spans the changes
        saw = {m.name: seen(plain, m, middle) for m in modules}
    finally:
        plain.close()
        batched.close()
    # the scenario really has what the docstring says, at the end of the run
    assert saw["nodata"] == {"raised": "EmptyResult"}
    assert ("v2", "memory_rss_bytes") in saw["c.x"]["samples"]
    gone = saw["d"]["samples"][("v1", "memory_rss_bytes")]  # stale since 6 s
    assert gone[-1][0] < fleet.t0 + 7 < middle - 3
    assert ("v2", "memory_rss_bytes") not in saw["d"]["samples"]  # NaN
    assert saw["d"]["samples"][("v1", "up_raw")]
    assert saw["a"]["errors"] == {}
    # one range query per batchable template (5; per_module_only is not) and tick, only
    # the new point: the first tick fetched each window once, for all five modules
    assert sent[0] == 5 and set(sent[1:]) == {5}


def test_a_template_that_does_not_batch_says_why() -> None:
    from watchdog.sources.promql import batch_report
    report = batch_report(module("a"))
    assert {m for m, why in report.items() if why is None} == set(QUERIES) - {
        "per_module_only"}
    assert "scalar() is not known to keep the module and version labels" \
        in str(report["per_module_only"])


def test_a_module_joining_later_gets_its_window_then_shares(
        fleet_prometheus: tuple[PrometheusProcess, Fleet]) -> None:
    """A module the daemon did not plan (a lease taken over) gets one query of its own
    per template, then rides along; with every point still fresh (recheck longer than the
    data's age) each tick fetches the whole window again, in one query per template, and
    the cache never holds more than the window."""
    server, _ = fleet_prometheus
    plain = PrometheusSource(server.url)
    batched = PrometheusSource(server.url, recheck=3600.0)
    batched.plan([module("a"), module("b")], offset=0.0)
    end = math.floor(time.time()) - 4.0
    try:
        for name in ("a", "b"):
            assert seen(batched, module(name), end) == seen(plain, module(name), end)
        before = batched.queries_sent
        assert seen(batched, module("c.x"), end) == seen(plain, module("c.x"), end)
        assert batched.queries_sent - before == 5  # its own window, once per template
        for tick in (1.0, 2.0):
            before = batched.queries_sent
            for name in ("a", "b", "c.x"):
                assert seen(batched, module(name), end + tick) == \
                    seen(plain, module(name), end + tick)
            assert batched.queries_sent - before == 5
        for group in batched._batches.groups():
            assert set(group.cached) == {"a", "b", "c.x"}
            assert group.n <= WINDOW + 2
    finally:
        plain.close()
        batched.close()
