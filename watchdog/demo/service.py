"""A simulated version (V1 or V2) of the demo's ``checkout`` service: a real process that
exports real Prometheus metrics (prometheus_client) on a loopback port.

    python -m watchdog.demo.service --version v2 --port 9102 \\
        [--flags FILE --regress-at 50] [--regression latency --factor 1.5] [--port-file F]

It serves no real requests: a background thread simulates them, ``--rate`` a second
(Poisson), every 20 ms. Each simulated request has a lognormal latency (median 80 ms,
sigma 0.5, so a p95 near 182 ms) observed into the histogram
``http_request_duration_seconds``, counts in ``http_requests_total``, fails with
probability ``--error-rate`` (``http_requests_failed_total``) and brings 3 messages
(``messages_received_total``), 98 % of which parse (``messages_parsed_total``). The gauge
``process_resident_memory_bytes`` is simulated too (a flat 420 MB with 1 MB of noise), so
the real interpreter's memory does not enter the demo. The rate is one replica's and does
not depend on the traffic share, as throughput per replica does not (more replicas serve a
larger share): every stage gives the judge equally stable numbers.

The regression (``--regression latency|errors|parse|throughput|memory|none``, size
``--factor``) is switched on

* when the flag file ``--flags`` (the file actuator's JSON) shows this version with at least
  ``--regress-at`` percent of the traffic (the demo: from the 3rd stage), or
* by ``POST /regress?on=1`` (``on=0`` switches it off; the benchmarks use this).

Endpoints: ``GET /metrics`` (exposition), ``GET /state`` (JSON: regressed, since, traffic
seen in the flag file), ``POST /regress``. Only loopback addresses are accepted. SIGTERM or
SIGINT stops it. ``--port 0`` binds any free port; ``--port-file`` receives the port once
the server listens.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25, 0.275,
           0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.75, 1.0, 1.5, 2.5, 5.0)
"""Seconds; fine around the p95 (~0.18 s healthy, ~0.27 s at x1.5) so the interpolated
quantile moves with the distribution, not with the bucket edges."""
REGRESSIONS = ("none", "latency", "errors", "parse", "throughput", "memory")
DEFAULT_FACTOR = {"latency": 1.5, "errors": 0.05, "parse": 0.9, "throughput": 0.7,
                  "memory": 200e6, "none": 1.0}
"""latency: multiplier; errors: the failure probability; parse: the parse probability;
throughput: multiplier of the request rate; memory: growth in bytes per hour."""
STEP = 0.02
MEDIAN_S = 0.080
SIGMA = 0.5
MEMORY_BYTES = 420e6
MEMORY_NOISE = 1e6


@dataclass
class Settings:
    version: str = "v1"
    module: str = "checkout"
    rate: float = 500.0
    error_rate: float = 0.005
    parse_rate: float = 0.98
    regression: str = "none"
    factor: float | None = None
    regress_at: float | None = None
    flags: Path | None = None
    seed: int | None = None

    @property
    def size(self) -> float:
        return DEFAULT_FACTOR[self.regression] if self.factor is None else self.factor


@dataclass
class Simulator:
    """The simulated traffic of one version, and its regression switch."""

    settings: Settings
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    regressed_since: float | None = None
    traffic_seen: float | None = None
    version_seen: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        r = self.registry
        self.rng = np.random.default_rng(self.settings.seed)
        self.latency = Histogram("http_request_duration_seconds", "Request latency",
                                 buckets=BUCKETS, registry=r)
        self.requests = Counter("http_requests_total", "Requests served", registry=r)
        self.failed = Counter("http_requests_failed_total", "Requests failed", registry=r)
        self.received = Counter("messages_received_total", "Messages received", registry=r)
        self.parsed = Counter("messages_parsed_total", "Messages parsed", registry=r)
        self.memory = Gauge("process_resident_memory_bytes", "Resident memory (simulated)",
                            registry=r)
        self.memory.set(MEMORY_BYTES)
        self._leaked = 0.0

    def regressed(self) -> bool:
        return self.regressed_since is not None

    def switch(self, on: bool) -> float:
        """Turn the regression on or off; the time it happened."""
        with self._lock:
            now = time.time()
            if on and self.regressed_since is None:
                self.regressed_since = now
            elif not on:
                self.regressed_since = None
                self._leaked = 0.0
            return now

    def state(self) -> dict[str, Any]:
        s = self.settings
        return {"version": s.version, "module": s.module, "regression": s.regression,
                "factor": s.size, "regress_at": s.regress_at,
                "regressed": self.regressed(), "since": self.regressed_since,
                "traffic_percent_seen": self.traffic_seen, "version_seen": self.version_seen,
                "pid": os.getpid()}

    def step(self, dt: float) -> None:
        """Simulate ``dt`` seconds of requests."""
        s = self.settings
        bad = self.regressed() and s.regression != "none"
        rate = s.rate * (s.size if bad and s.regression == "throughput" else 1.0)
        n = int(self.rng.poisson(rate * dt))
        if n:
            scale = s.size if bad and s.regression == "latency" else 1.0
            values = self.rng.lognormal(math.log(MEDIAN_S * scale), SIGMA, n)
            for v in values.tolist():
                self.latency.observe(v)
            p_fail = s.size if bad and s.regression == "errors" else s.error_rate
            p_parse = s.size if bad and s.regression == "parse" else s.parse_rate
            messages = 3 * n
            self.requests.inc(n)
            self.failed.inc(int(self.rng.binomial(n, min(max(p_fail, 0.0), 1.0))))
            self.received.inc(messages)
            self.parsed.inc(int(self.rng.binomial(messages, min(max(p_parse, 0.0), 1.0))))
        if bad and s.regression == "memory":
            self._leaked += s.size * dt / 3600.0
        self.memory.set(MEMORY_BYTES + self._leaked + self.rng.normal(0.0, MEMORY_NOISE))

    def watch_flags(self) -> None:
        """Switch the regression on once the flag file gives this version enough traffic."""
        s = self.settings
        if s.flags is None:
            return
        data = module_flags(s.flags, s.module)
        if data is None:
            return  # not written yet
        pct = data.get("traffic_percent")
        self.traffic_seen = float(pct) if isinstance(pct, int | float) else None
        version = data.get("version")
        self.version_seen = version if isinstance(version, str) else None
        if (s.regress_at is not None and s.regression != "none" and not self.regressed()
                and self.version_seen == s.version and self.traffic_seen is not None
                and self.traffic_seen >= s.regress_at):
            self.switch(True)

    def run(self) -> None:
        last = time.monotonic()
        next_flags = 0.0
        while not self._stop.wait(STEP):
            now = time.monotonic()
            with self._lock:
                self.step(now - last)
            last = now
            if now >= next_flags:
                self.watch_flags()
                next_flags = now + 0.05

    def stop(self) -> None:
        self._stop.set()


def module_flags(path: Path, module: str) -> dict[str, Any] | None:
    """One module's flags from the file actuator's JSON file (``{"kill_switch": ...,
    "modules": {module: {"version", "traffic_percent", "decision_id"}}}``), with the kill
    switch; None while the file or the module's entry does not exist."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    modules = data.get("modules")
    entry = modules.get(module) if isinstance(modules, dict) else None
    if not isinstance(entry, dict):
        return None
    return {**entry, "kill_switch": data.get("kill_switch")}


def make_handler(sim: Simulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "watchdog-demo-service"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, data: dict[str, Any]) -> None:
            self._send(code, json.dumps(data).encode(), "application/json")

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/metrics":
                with sim._lock:
                    body = generate_latest(sim.registry)
                self._send(200, body, CONTENT_TYPE_LATEST)
            elif path == "/state":
                self._json(200, sim.state())
            else:
                self._json(404, {"error": "not found: try /metrics, /state"})

        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/regress":
                self._json(404, {"error": "not found: POST /regress?on=1|0"})
                return
            on = parse_qs(parts.query).get("on", ["1"])[0] not in ("0", "false", "off")
            at = sim.switch(on)
            self._json(200, {**sim.state(), "switched_at": at})

    return Handler


def serve(settings: Settings, host: str, port: int, port_file: Path | None) -> int:
    if not ipaddress.ip_address(host).is_loopback:
        print(f"error: {host} is not a loopback address; the demo serves on loopback only",
              file=sys.stderr)
        return 2
    sim = Simulator(settings)
    try:
        server = ThreadingHTTPServer((host, port), make_handler(sim))
    except OSError as err:
        print(f"error: cannot listen on {host}:{port}: {err.strerror or err}", file=sys.stderr)
        return 1
    server.daemon_threads = True
    bound = int(server.server_address[1])
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threads = [threading.Thread(target=sim.run, name="traffic", daemon=True),
               threading.Thread(target=server.serve_forever, name="http", daemon=True)]
    for t in threads:
        t.start()
    if port_file is not None:
        tmp = port_file.with_name(port_file.name + ".tmp")
        tmp.write_text(f"{bound}\n", "utf-8")
        tmp.replace(port_file)
    print(f"{settings.version}: serving http://{host}:{bound}/metrics (regression "
          f"{settings.regression}, from {settings.regress_at}%)", flush=True)
    done.wait()
    sim.stop()
    server.shutdown()
    server.server_close()
    return 0


def parse_args(argv: Sequence[str] | None = None) -> tuple[Settings, str, int, Path | None]:
    p = argparse.ArgumentParser(prog="python -m watchdog.demo.service",
                                description="A simulated service version for the demo.")
    p.add_argument("--version", choices=("v1", "v2"), default="v1")
    p.add_argument("--module", default="checkout")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9101, help="0: any free port")
    p.add_argument("--port-file", type=Path, help="write the bound port here once listening")
    p.add_argument("--rate", type=float, default=500.0, help="simulated requests per second")
    p.add_argument("--error-rate", type=float, default=0.005)
    p.add_argument("--parse-rate", type=float, default=0.98)
    p.add_argument("--regression", choices=REGRESSIONS, default="none")
    p.add_argument("--factor", type=float, help="size of the regression (see the module doc)")
    p.add_argument("--flags", type=Path, help="the file actuator's JSON flag file to watch")
    p.add_argument("--regress-at", type=float,
                   help="switch the regression on from this traffic percent (needs --flags)")
    p.add_argument("--seed", type=int)
    a = p.parse_args(argv)
    if a.rate <= 0:
        p.error("--rate must be positive")
    settings = Settings(version=a.version, module=a.module, rate=a.rate,
                        error_rate=a.error_rate, parse_rate=a.parse_rate,
                        regression=a.regression, factor=a.factor, regress_at=a.regress_at,
                        flags=a.flags, seed=a.seed)
    return settings, a.host, a.port, a.port_file


def main(argv: Sequence[str] | None = None) -> int:
    settings, host, port, port_file = parse_args(argv)
    return serve(settings, host, port, port_file)


if __name__ == "__main__":
    sys.exit(main())
