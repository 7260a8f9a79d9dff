#!/usr/bin/env python3
"""Scale: one daemon guarding 1,000 modules x 5 metrics at a 10 s interval against one
real Prometheus (issue 19, "Measured: Scale").

    .venv/bin/python bench/scale.py [--modules 1000] [--seconds 150] [--no-batch]
        [--batch-window SECONDS]

Real processes on loopback: an exporter (this file, ``exporter`` mode) exposing the
standard metrics of every module and both versions (labels module/version: 8 series per
module and version), Debian's ``prometheus`` scraping it every 10 s (honor_labels), and
``rollout-watchdog run`` with a generated config: every module on the shipped-style
templates (5 metrics, 5 rules), the ``prometheus`` source, the file actuator, the API
on a free port for /metrics.

After a warm-up (the first ticks fetch whole windows), between two readings ``--seconds``
apart it reports: the range and instant queries Prometheus answered per interval (its own
``prometheus_http_requests_total``; target: one per metric template, 5), the evaluation
duration p99 over every module's ticks (the daemon's
``watchdog_evaluation_duration_seconds`` histogram, interpolated as histogram_quantile
does, and the bucket bound; target: < 50 % of the interval), the daemon's resident memory
(VmRSS, VmHWM) and CPU per module tick. ``--no-batch`` runs the per-module queries
(the ``batch: false`` option) for comparison.

Where the CPU goes, with the same exporter and Prometheus but the daemon in this process:
``--profile ROUNDS`` ticks every module in turn at each grid point under cProfile (CPU per
module tick without contention: load-independent), ``--sample`` runs the whole daemon for
``--seconds`` and splits its CPU per module tick between the ticks and the other threads;
``--sample --commits`` instead counts the journal's commits (each one an fsync on disk)
a second, by the caller that made them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from watchdog.demo.processes import Children, DemoError, cli_command, env_for_children

SEL = '{module="{module}",version="{version}"}'
RULES = """\
modules:
  - name: "*"
    interval: @INTERVAL@s
    metrics:
      latency_p95_ms:
        direction: higher_is_worse
        query: >-
          1000 * histogram_quantile(0.95, sum by (le)
          (rate(http_request_duration_seconds_bucket@SEL@[1m])))
      error_rate:
        direction: higher_is_worse
        query: >-
          sum(rate(http_requests_failed_total@SEL@[1m]))
          / sum(rate(http_requests_total@SEL@[1m]))
      throughput_rps:
        direction: lower_is_worse
        query: sum(rate(http_requests_total@SEL@[1m]))
      parse_rate:
        direction: lower_is_worse
        query: >-
          sum(rate(messages_parsed_total@SEL@[1m]))
          / sum(rate(messages_received_total@SEL@[1m]))
      memory_rss_bytes:
        direction: growth_is_worse
        warmup: 5m
        query: max(process_resident_memory_bytes@SEL@)
    rules:
      - {name: lat, kind: relative, test: sequential, metric: latency_p95_ms,
          max_increase: 5%, window: 1m, long_window: 5m, for: 20s}
      - {name: err, kind: relative, test: sequential, metric: error_rate, max_increase: 50%,
          min_effect: 0.003, window: 1m, long_window: 5m}
      - {name: tput, kind: relative, test: sequential, metric: throughput_rps,
          max_decrease: 5%, against: live, window: 1m}
      - {name: parse, kind: absolute, metric: parse_rate, below: 0.5}
      - {name: mem, kind: growth, metric: memory_rss_bytes, test: sequential,
          max_growth_per_hour: 10%, window: 30m, envelope: 5m}
    plan: {stages: [5, 100], hold: 1d}
"""
CONFIG = """\
db: journal.db
rules: [rules.yaml]
source:
  plugin: prometheus
  options: {{url: "http://127.0.0.1:{prom_port}", batch: {batch}{batch_window}}}
actuators:
  - plugin: file
    options: {{path: "{{state_dir}}/{{module}}.flags.json", format: json}}
api: {{enabled: true, host: 127.0.0.1, port: {api_port}}}
modules:
{modules}
log_level: warning
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the exporter --------------------------------------------------------------------------

def exposition(names: list[str], age: float) -> bytes:
    lines = []
    for name in names:
        for version, slow, failing in (("v1", 0.9, 0.01), ("v2", 0.85, 0.012)):
            n = int(age * 50)
            lab = f'module="{name}",version="{version}"'
            lines += [
                f'http_request_duration_seconds_bucket{{{lab},le="0.05"}} {int(n * slow)}',
                f'http_request_duration_seconds_bucket{{{lab},le="0.1"}} {n}',
                f'http_request_duration_seconds_bucket{{{lab},le="+Inf"}} {n}',
                f"http_requests_total{{{lab}}} {n}",
                f"http_requests_failed_total{{{lab}}} {int(n * failing)}",
                f"messages_received_total{{{lab}}} {n}",
                f"messages_parsed_total{{{lab}}} {int(n * 0.99)}",
                f"process_resident_memory_bytes{{{lab}}} 1e8"]
    return ("\n".join(lines) + "\n").encode()


def exporter(port_file: Path, modules: int) -> None:
    names = [f"m{i:04d}" for i in range(modules)]
    t0 = time.time()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition(names, time.time() - t0)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


# -- readings ------------------------------------------------------------------------------

def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return str(answer.read().decode())


def wait_http(url: str, child: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not child.alive():
            raise DemoError(f"{child.name} exited: {child.tail()}")
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.3)
    raise DemoError(f"{url} did not answer in {seconds:g}s: {child.tail()}")


def prom_requests(port: int) -> dict[str, float]:
    text = get(f"http://127.0.0.1:{port}/metrics")
    out: dict[str, float] = {}
    for m in re.finditer(r'^prometheus_http_requests_total\{code="\d+",handler="([^"]+)"\} '
                         r"(\S+)$", text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(2))
    return out


def evaluations(api_port: int) -> dict[float, float]:
    """Cumulative bucket counts of watchdog_evaluation_duration_seconds, all modules."""
    text = get(f"http://127.0.0.1:{api_port}/metrics")
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("watchdog_evaluation_duration_seconds_bucket{"):
            found = re.search(r'le="([^"]+)"', line)
            if found is not None:
                le = float(found.group(1))
                out[le] = out.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def quantile(q: float, buckets: dict[float, float]) -> tuple[float, float]:
    """histogram_quantile's linear interpolation, and the bucket's upper bound."""
    bounds = sorted(buckets)
    total = buckets[math_inf()] if math_inf() in buckets else buckets[bounds[-1]]
    rank, below, lower = q * total, 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if le == math_inf():
                return lower, le
            return lower + (le - lower) * (rank - below) / max(buckets[le] - below, 1e-9), le
        below, lower = buckets[le], le
    return lower, bounds[-1]


def math_inf() -> float:
    return float("inf")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def source_only(a: argparse.Namespace, work: Path, prom_port: int) -> int:
    """The prometheus source alone, in this process: every module's fetch at each grid
    point, a thread per module; the makespan of each interval's fetches."""
    import threading

    from watchdog.config.loader import load_paths
    from watchdog.engine import DRIFT_LOOKBACK, NOISE_WINDOW
    from watchdog.sources.prometheus import PrometheusSource

    rules = load_paths([work / "rules.yaml"])
    mods = [rules.for_module(f"m{i:04d}") for i in range(a.modules)]
    spec = mods[0]
    back = max(max(r.window for r in spec.rules), NOISE_WINDOW) + DRIFT_LOOKBACK + max(
        spec.warmup_of(m) for m in spec.metrics)
    source = PrometheusSource(f"http://127.0.0.1:{prom_port}", batch=not a.no_batch)
    source.plan(mods, 0.0)
    spans: list[float] = []
    failures = 0
    cpu0, req0 = time.process_time(), prom_requests(prom_port)
    rounds = max(2, int((a.seconds + a.warmup) / a.interval))
    for k in range(rounds):
        grid = (int(time.time() / a.interval) + 1) * a.interval
        time.sleep(max(0.0, grid - time.time()))
        done: list[float] = []

        def tick(m: Any, done: list[float] = done) -> None:
            nonlocal failures
            now = time.time()
            try:
                source.fetch(m, now - back, now)
            except Exception:
                failures += 1
            done.append(time.time())
        threads = [threading.Thread(target=tick, args=(m,)) for m in mods]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        spans.append(max(done) - grid)
        print(f"interval {k}: all {a.modules} fetches done {spans[-1]:.2f}s after the grid "
              f"point", flush=True)
    req1 = prom_requests(prom_port)
    steady = sorted(spans[2:] or spans)
    ranges = req1.get("/api/v1/query_range", 0) - req0.get("/api/v1/query_range", 0)
    print(f"source only ({'per module' if a.no_batch else 'batched'}): {rounds} intervals, "
          f"{ranges / rounds:.1f} range queries per interval (first: cold windows); "
          f"makespan after the first two: max {steady[-1]:.2f}s, median "
          f"{steady[len(steady) // 2]:.2f}s; CPU {(time.process_time() - cpu0) / rounds:.2f}s "
          f"per interval; {failures} fetches failed; RSS {memory(os.getpid())['VmRSS']:.0f} MiB")
    source.close()
    return 0


def profile(a: argparse.Namespace, work: Path) -> int:
    """No daemon process: the daemon's object in this process (its real journal, source
    and Prometheus), every module ticked one after another at each grid point under
    cProfile; CPU per module tick and where it goes (the batched fetch runs in the
    source's pool threads, which cProfile does not see: its CPU is in the per-tick
    figure, not in the table)."""
    import cProfile
    import pstats

    from watchdog.daemon.service import Daemon

    os.chdir(work)
    daemon = Daemon(str(work / "watchdog.yaml"))
    daemon.guard.start()
    names = sorted(daemon.units)
    prof = cProfile.Profile()
    spent: list[float] = []
    for k in range(a.profile + 1):
        grid = (int(time.time() / a.interval) + 1) * a.interval
        time.sleep(max(0.0, grid - time.time()))
        cpu = time.process_time()
        if k:
            prof.enable()
        for name in names:
            daemon.tick(name)
        if k:
            prof.disable()
            spent.append((time.process_time() - cpu) / len(names))
        print(f"round {k}: {(time.process_time() - cpu) / len(names) * 1000:.2f} ms CPU per "
              f"module tick ({time.time() - grid:.1f}s wall for {len(names)} modules)"
              f"{' (the first: starts, cold windows; not counted)' if not k else ''}",
              flush=True)
    print(f"CPU per module tick (rounds 1-{a.profile}): "
          f"{sum(spent) / len(spent) * 1000:.2f} ms (min {min(spent) * 1000:.2f})")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(45)
    daemon.guard.stop()
    return 0


def count_commits() -> dict[str, int]:
    """Every SQLite connection the daemon opens from now on counts its commits (a COMMIT
    of a transaction that changed rows, or a write outside a transaction: its own) by the
    first caller outside the journal package: who makes the journal fsync, how often."""
    import sqlite3
    import threading

    import watchdog.journal.store as store

    counts: dict[str, int] = {}
    lock = threading.Lock()
    connect = vars(store)["connect"]  # the name the SQLite journal opens with
    skip = ("/watchdog/journal/", "/contextlib.py", "/functools.py")

    def caller() -> str:
        frame = sys._getframe(2)
        while frame is not None and any(s in frame.f_code.co_filename for s in skip):
            frame = frame.f_back  # type: ignore[assignment]
        code = frame.f_code if frame is not None else None
        return "?" if code is None else \
            f"{code.co_filename.rsplit('/watchdog/', 1)[-1]}:{code.co_name}"

    def counting(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kwargs)

        began = [0]

        def trace(sql: str) -> None:
            head = sql.lstrip()[:6].upper()
            if head == "BEGIN ":
                began[0] = conn.total_changes
            # a COMMIT that changed nothing writes nothing (and syncs nothing)
            if (head == "COMMIT" and conn.total_changes != began[0]) or (
                    head in ("INSERT", "UPDATE", "DELETE") and not conn.in_transaction):
                where = caller()
                with lock:
                    counts[where] = counts.get(where, 0) + 1
        conn.set_trace_callback(trace)
        return conn

    vars(store)["connect"] = counting
    return counts


def sample(a: argparse.Namespace, work: Path) -> int:
    """The whole daemon (scheduler, outbox, leases, API) in this process for ``--seconds``
    after ``--warmup``: the process's CPU per module tick, the share of it spent inside
    the ticks (each tick's own thread CPU time), and a cProfile of the ticks (each tick
    profiled in its own thread, the profiles added up; the profiler's overhead inflates
    the seconds, not much the shares)."""
    import cProfile
    import logging
    import pstats
    import threading

    from watchdog.daemon.service import Daemon

    os.chdir(work)
    logging.basicConfig(filename=str(work / "daemon.log"), level=logging.WARNING)
    commits = count_commits() if a.commits else {}
    daemon = Daemon(str(work / "watchdog.yaml"))
    job = daemon._job
    lock = threading.Lock()
    inside = [0.0]
    profiles: list[cProfile.Profile] = []
    local = threading.local()
    on = threading.Event()

    def timed(module: str) -> None:
        began = time.thread_time()
        prof = getattr(local, "prof", None) if on.is_set() else None
        if on.is_set() and prof is None:
            prof = local.prof = cProfile.Profile()
            with lock:
                profiles.append(prof)
        if prof is not None:
            prof.enable()
        try:
            job(module)
        finally:
            if prof is not None:
                prof.disable()
            with lock:
                inside[0] += time.thread_time() - began

    daemon._job = timed  # type: ignore[method-assign]
    daemon.scheduler._run = timed
    daemon.start()
    time.sleep(a.warmup)
    ticks0, cpu0, in0 = daemon.stats.ticks, time.process_time(), inside[0]
    commits0 = dict(commits)
    if not a.commits:
        on.set()
    time.sleep(a.seconds)
    on.clear()
    if a.commits:
        ticks = daemon.stats.ticks - ticks0
        made = {k: n - commits0.get(k, 0) for k, n in commits.items()}
        daemon.stop()
        print(f"{ticks} module ticks in {a.seconds:g}s; journal commits (fsyncs) "
              f"{sum(made.values()) / a.seconds:.1f} a second, by caller:")
        for where, n in sorted(made.items(), key=lambda kv: -kv[1]):
            if n:
                print(f"  {n / a.seconds:8.1f}/s  {n / max(ticks, 1):6.3f} per tick  {where}")
        return 0
    ticks, cpu = daemon.stats.ticks - ticks0, time.process_time() - cpu0
    spent = inside[0] - in0
    daemon.stop()
    print(f"{ticks} module ticks in {a.seconds:g}s (profiled); process CPU {cpu:.1f}s = "
          f"{cpu / max(ticks, 1) * 1000:.2f} ms per module tick; inside the ticks "
          f"{spent / max(ticks, 1) * 1000:.2f} ms, other threads "
          f"{(cpu - spent) / max(ticks, 1) * 1000:.2f} ms")
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        stats.add(prof)
    stats.sort_stats("tottime").print_stats(35)
    stats.sort_stats("cumulative").print_stats(50)
    return 0


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "exporter":
        exporter(Path(sys.argv[2]), int(sys.argv[3]))
        return 0
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modules", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=150.0, help="measured span")
    p.add_argument("--warmup", type=float, default=40.0, help="seconds before measuring")
    p.add_argument("--interval", type=float, default=10.0)
    p.add_argument("--no-batch", action="store_true")
    p.add_argument("--batch-window", type=float, metavar="SECONDS",
                   help="the source's batch_window (default: the source's own, 6 h)")
    p.add_argument("--source-only", action="store_true",
                   help="no daemon: this process ticks every module's fetch at each grid "
                   "point (a thread per module, as the scheduler does) and times them")
    p.add_argument("--profile", type=int, default=0, metavar="ROUNDS",
                   help="no daemon process: tick every module in this process, one after "
                   "another, for ROUNDS grid points after --warmup, under cProfile")
    p.add_argument("--sample", action="store_true",
                   help="no daemon process: the daemon in this process for --seconds after "
                   "--warmup, its threads' stacks sampled (where the CPU goes)")
    p.add_argument("--commits", action="store_true",
                   help="with --sample: count the journal's commits a second by caller "
                   "(no profile)")
    p.add_argument("--tmp", help="folder for the journal, Prometheus data and logs "
                   "(default: the system's temporary folder), e.g. /dev/shm")
    p.add_argument("--keep", type=Path, help="keep the daemon's folder (config, logs) here")
    a = p.parse_args()
    binary = shutil.which("prometheus")
    if binary is None:
        print("the prometheus binary is not on PATH (scripts/ensure-prometheus.sh)")
        return 2
    names = [f"m{i:04d}" for i in range(a.modules)]
    with tempfile.TemporaryDirectory(prefix="scale-", dir=a.tmp) as tmp, Children() as children:
        work = Path(tmp)
        exp = children.start("exporter", [sys.executable, __file__, "exporter",
                                          str(work / "exporter.port"), str(a.modules)],
                             work / "exporter.log")
        while not (work / "exporter.port").exists() or not (work / "exporter.port").read_text():
            if not exp.alive():
                raise DemoError(exp.tail())
            time.sleep(0.1)
        exp_port = int((work / "exporter.port").read_text())
        prom_port = free_port()
        (work / "prometheus.yml").write_text(json.dumps({
            "global": {"scrape_interval": f"{a.interval:g}s"},
            "scrape_configs": [{"job_name": "fleet", "honor_labels": True,
                                "scrape_timeout": f"{a.interval:g}s",
                                "static_configs": [{"targets": [f"127.0.0.1:{exp_port}"]}]}]}))
        prom = children.start("prometheus", [
            binary, f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn"], work / "prometheus.log")
        wait_http(f"http://127.0.0.1:{prom_port}/-/ready", prom)
        deadline = time.monotonic() + 3 * a.interval + 30
        while "http_requests_total" not in get(
                f"http://127.0.0.1:{prom_port}/api/v1/label/__name__/values"):
            if time.monotonic() > deadline:
                raise DemoError("prometheus has no samples of the exporter")
            time.sleep(0.5)
        (work / "rules.yaml").write_text(RULES.replace("@SEL@", SEL).replace(
            "@INTERVAL@", f"{a.interval:g}"))
        api_port = free_port()
        modules = "\n".join(f"  - {{name: {n}, auto_start: true}}" for n in names)
        (work / "watchdog.yaml").write_text(CONFIG.format(
            prom_port=prom_port, batch="false" if a.no_batch else "true", api_port=api_port,
            modules=modules, batch_window="" if a.batch_window is None
            else f", batch_window: {a.batch_window:g}s"))
        if a.source_only:
            return source_only(a, work, prom_port)
        if a.profile:
            time.sleep(a.warmup)
            return profile(a, work)
        if a.sample:
            return sample(a, work)
        started = time.monotonic()
        daemon = children.start("daemon", [*cli_command(), "run", "--config",
                                           str(work / "watchdog.yaml")],
                                work / "daemon.log", env=env_for_children(), cwd=work)
        wait_http(f"http://127.0.0.1:{api_port}/metrics", daemon, 120)
        ready = time.monotonic() - started
        time.sleep(a.warmup)
        first_mem = memory(daemon.pid)
        req0, ev0, cpu0, t0 = (prom_requests(prom_port), evaluations(api_port),
                               cpu_seconds(daemon.pid), time.monotonic())
        time.sleep(a.seconds)
        req1, ev1, cpu1, t1 = (prom_requests(prom_port), evaluations(api_port),
                               cpu_seconds(daemon.pid), time.monotonic())
        mem = memory(daemon.pid)
        if not daemon.alive():
            raise DemoError(f"the daemon exited: {daemon.tail()}")
        log = daemon.log.read_text("utf-8", errors="replace").splitlines()
        warnings = [line for line in log if " WARNING " in line or " ERROR " in line]
        prom_cpu = cpu_seconds(prom.pid)
        children.stop(daemon)
        if a.keep is not None:
            shutil.copytree(work, a.keep, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("data", "*.db*"))
    intervals = (t1 - t0) / a.interval
    ranges = req1.get("/api/v1/query_range", 0) - req0.get("/api/v1/query_range", 0)
    instants = req1.get("/api/v1/query", 0) - req0.get("/api/v1/query", 0)
    delta = {le: ev1.get(le, 0.0) - ev0.get(le, 0.0) for le in ev1}
    ticks = delta.get(math_inf(), 0.0)
    p99, bound = quantile(0.99, delta)
    p50, _ = quantile(0.50, delta)
    per_tick_cpu = (cpu1 - cpu0) / max(ticks, 1)
    mode = "per-module queries (batch: false)" if a.no_batch else "batched (default)"
    print(f"scale: {a.modules} modules x 5 metrics x 2 versions, interval {a.interval:g}s, "
          f"{mode}; daemon up and serving /metrics {ready:.1f}s after start; measured "
          f"{t1 - t0:.0f}s ({intervals:.1f} intervals) after {a.warmup:g}s of warm-up")
    print(f"queries per interval: {ranges / intervals:.1f} range + {instants / intervals:.1f} "
          f"instant (target: 5, one per metric template)")
    print(f"evaluations: {ticks:.0f} ({ticks / max(intervals, 1e-9) / a.modules:.2f} per "
          f"module and interval); duration p50 {p50:.2f}s, p99 {p99:.2f}s (bucket <= "
          f"{bound:g}s); target p99 < {a.interval / 2:g}s (50 % of the interval) -> "
          f"{'MET' if p99 < a.interval / 2 else 'NOT MET'}")
    print(f"daemon RSS: {mem['VmRSS']:.1f} MiB now (at warm-up end {first_mem['VmRSS']:.1f}), "
          f"peak {mem['VmHWM']:.1f} MiB")
    print(f"daemon CPU: {(cpu1 - cpu0) / (t1 - t0) * 100:.0f} % of one core; "
          f"{per_tick_cpu * 1000:.2f} ms per module tick; prometheus CPU in total "
          f"{prom_cpu:.0f}s")
    print(f"daemon warnings/errors logged: {len(warnings)}"
          + (f" (first: {warnings[0][:200]})" if warnings else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
