"""A stand-in service for the source tests: exports the standard rollout metrics with
prometheus_client's own HTTP server, labelled module/version, and does what stdin says.

    python testapp.py --module checkout --version v1 [--port 0]

Prints ``ready <port>`` once serving. Then one JSON command per stdin line, each answered
with ``ok`` (or ``error: ...``) on stdout:

    {"cmd": "traffic", "requests": 100, "failed": 5, "latency": 0.03}
        count requests (and failures) now, each observed at ``latency`` seconds
    {"cmd": "messages", "received": 100, "parsed": 90}
    {"cmd": "memory", "value": 1.5e8}
    {"cmd": "steady", "requests": 20, "failed": 1, "latency": 0.03, "every": 0.05}
        repeat that traffic every ``every`` seconds in the background (requests 0 stops)

Run as a separate process so a test can stop it (endpoint down) or restart it on the same
port (counters reset), exactly as a real deployment would.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class App:
    def __init__(self, module: str, version: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["module", "version"]
        self.latency = Histogram("http_request_duration_seconds", "Request latency",
                                 labels, buckets=BUCKETS, registry=self.registry
                                 ).labels(module, version)
        self.requests = Counter("http_requests", "Requests served", labels,
                                registry=self.registry).labels(module, version)
        self.failed = Counter("http_requests_failed", "Requests failed", labels,
                              registry=self.registry).labels(module, version)
        self.received = Counter("messages_received", "Messages received", labels,
                                registry=self.registry).labels(module, version)
        self.parsed = Counter("messages_parsed", "Messages parsed", labels,
                              registry=self.registry).labels(module, version)
        self.memory = Gauge("process_resident_memory_bytes", "Resident memory", labels,
                            registry=self.registry).labels(module, version)
        self.memory.set(100e6)
        self.lock = threading.Lock()
        self.steady: dict[str, Any] = {}
        self.wake = threading.Event()

    def traffic(self, requests: int, failed: int = 0, latency: float = 0.03) -> None:
        with self.lock:
            for _ in range(requests):
                self.latency.observe(latency)
            self.requests.inc(requests)
            self.failed.inc(failed)

    def run_steady(self) -> None:
        while True:
            every = float(self.steady.get("every", 0.05))
            if self.steady.get("requests"):
                self.traffic(int(self.steady["requests"]), int(self.steady.get("failed", 0)),
                             float(self.steady.get("latency", 0.03)))
            self.wake.wait(every)

    def command(self, line: str) -> None:
        cmd = json.loads(line)
        kind = cmd.pop("cmd")
        if kind == "traffic":
            self.traffic(int(cmd["requests"]), int(cmd.get("failed", 0)),
                         float(cmd.get("latency", 0.03)))
        elif kind == "messages":
            self.received.inc(float(cmd["received"]))
            self.parsed.inc(float(cmd["parsed"]))
        elif kind == "memory":
            self.memory.set(float(cmd["value"]))
        elif kind == "steady":
            self.steady = cmd
        else:
            raise ValueError(f"unknown command {kind!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--module", required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    app = App(args.module, args.version)
    server, _ = start_http_server(args.port, addr="127.0.0.1", registry=app.registry)
    threading.Thread(target=app.run_steady, daemon=True).start()
    print(f"ready {server.server_port}", flush=True)
    for line in sys.stdin:
        try:
            app.command(line)
        except Exception as err:  # report to the test, keep serving
            print(f"error: {err}", flush=True)
        else:
            print("ok", flush=True)


if __name__ == "__main__":
    main()
