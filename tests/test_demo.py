"""The demo: its simulated service exports real Prometheus metrics, and a whole
``python -m watchdog.demo --fast`` run catches the regression and rolls back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from watchdog.demo.processes import Children, http_json, service_argv, wait_for_port
from watchdog.demo.service import module_flags
from watchdog.journal.store import Journal
from watchdog.model import Action

EXPECTED = {
    "http_request_duration_seconds": "histogram",
    "http_requests": "counter",
    "http_requests_failed": "counter",
    "messages_received": "counter",
    "messages_parsed": "counter",
    "process_resident_memory_bytes": "gauge",
}


def _families(port: int) -> dict[str, dict[str, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == EXPECTED.get(family.name, family.type), family.name
        out[family.name] = {s.name + str(sorted(s.labels.items())): s.value
                            for s in family.samples}
    return out


def test_service_exports_the_standard_metrics(tmp_path: Path) -> None:
    with Children() as children:
        child = children.start("V2", service_argv("v2", 0, tmp_path / "port",
                                                  regression="latency", factor=2.0),
                               tmp_path / "v2.log")
        port = wait_for_port(child, tmp_path / "port")
        time.sleep(0.5)
        first = _families(port)
        assert set(EXPECTED) <= set(first)
        time.sleep(0.5)
        second = _families(port)
        served = second["http_requests"]["http_requests_total[]"]
        assert served > first["http_requests"]["http_requests_total[]"] > 0
        failed = second["http_requests_failed"]["http_requests_failed_total[]"]
        assert 0 <= failed < 0.05 * served
        parsed = second["messages_parsed"]["messages_parsed_total[]"]
        received = second["messages_received"]["messages_received_total[]"]
        assert 0.9 * received < parsed <= received == 3 * served
        buckets = {k: v for k, v in second["http_request_duration_seconds"].items()
                   if "_bucket" in k}
        assert max(buckets.values()) == served  # +Inf holds every request
        rss = second["process_resident_memory_bytes"]["process_resident_memory_bytes[]"]
        assert 400e6 < rss < 440e6
        assert http_json(f"http://127.0.0.1:{port}/state")["regressed"] is False
        switched = http_json(f"http://127.0.0.1:{port}/regress?on=1", method="POST")
        assert switched["regressed"] is True and switched["since"] <= time.time()
        pid = child.pid
    assert child.popen.returncode is not None  # stopped on the way out
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.slow
def test_fast_demo_rolls_back_after_the_regression_stage(tmp_path: Path) -> None:
    out = tmp_path / "demo-output"
    done = subprocess.run([sys.executable, "-m", "watchdog.demo", "--fast", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "outcome: ROLLED BACK" in done.stdout
    journal = Journal(out / "journal.db")
    try:
        decisions = [jd.decision for jd in journal.decisions(module="checkout")]
    finally:
        journal.close()
    regress_stage = next(d for d in decisions
                         if d.action is Action.ADVANCE and d.traffic_percent == 50)
    rollbacks = [d for d in decisions if d.action is Action.ROLLBACK]
    assert len(rollbacks) == 1
    assert rollbacks[0].at >= regress_stage.at
    assert not any(d.action is Action.ROLLBACK and d.at < regress_stage.at for d in decisions)
    flags = module_flags(out / "journal.state" / "checkout.flags.json", "checkout")
    assert flags is not None
    assert (flags["version"], flags["traffic_percent"]) == ("v1", 0)
    # the daemon scraped both services every tick; the log does not list each request
    log = (out / "logs" / "daemon.log").read_text("utf-8")
    assert "rolled back" in log.lower() or "rollback" in log.lower()
    assert "HTTP Request" not in log
