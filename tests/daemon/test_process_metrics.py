"""The daemon's /metrics carries the process's own series (prometheus_client's standard
process, platform and GC collectors, on the daemon's registry, not the global one), and
/health answers HEAD (a load balancer's or uptime checker's probe): a real daemon process
with its HTTP API on a free port."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


def test_metrics_has_process_and_python_series_and_health_answers_head(
        dkit: Any, spawn: Any, tmp_path: Path) -> None:
    setup = dkit.make_setup(tmp_path, extra="api: {enabled: true, port: 0}\n")
    proc = spawn(setup)
    proc.wait_for("daemon ready")
    url = re.search(r"HTTP API listening on (\S+)", proc.log())
    assert url is not None
    text = httpx.get(url[1] + "/metrics", timeout=10).text
    found = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("process_resident_memory_bytes", "process_cpu_seconds",
                 "process_start_time_seconds", "process_open_fds", "python_info",
                 "python_gc_collections"):
        assert name in found and found[name].samples, (name, sorted(found))
    (rss,) = found["process_resident_memory_bytes"].samples
    assert rss.value > 10e6  # a Python daemon with numpy and scipy loaded
    assert {s.labels["generation"] for s in found["python_gc_collections"].samples} == \
        {"0", "1", "2"}

    head = httpx.head(url[1] + "/health", timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == "application/json"
    assert httpx.get(url[1] + "/health", timeout=10).json()["status"] == "ok"
    proc.signal(signal.SIGTERM)
    assert proc.wait() == 0
