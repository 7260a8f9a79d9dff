"""`rollout-watchdog baseline capture --config`: V1 captured live through the configured
source — here a real Prometheus scraping real apps — and stored in the journal."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from watchdog.journal.store import Journal

EXE = Path(sys.executable).parent / "rollout-watchdog"


def test_capture_from_prometheus_stores_v1_per_metric(prometheus_setup: Any,
                                                      tmp_path: Path) -> None:
    config = tmp_path / "watchdog.yaml"
    config.write_text(
        f"db: {tmp_path / 'journal.db'}\n"
        f"source: {{plugin: prometheus, options: {{url: \"{prometheus_setup.prometheus.url}\"}}}}\n"
        f"actuators: [{{plugin: file, options: {{path: \"{tmp_path}/{{module}}.json\"}}}}]\n"
        "modules: [checkout]\n")
    done = subprocess.run([str(EXE), "baseline", "capture", "--config", str(config),
                           "--module", "checkout", "--window", "2m", "--pin",
                           # the fixture's Prometheus has scraped for seconds, not 2 minutes
                           "--min-samples", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    journal = Journal(tmp_path / "journal.db")
    try:
        stored = {b.metric: b for b in journal.baselines(module="checkout")}
    finally:
        journal.close()
    memory = stored["memory_rss_bytes"]
    assert memory.count >= 1 and memory.mean == 100e6  # V1's gauge, not V2's 150 MB
    assert memory.pinned and memory.source.startswith("prometheus:")
    assert memory.window_to - memory.window_from > 119
    # V1 fails 1 request in 20: its error rate, not V2's 10 %
    assert abs(stored["error_rate"].mean - 0.05) < 0.01


def test_capture_needs_one_input_and_a_module(tmp_path: Path) -> None:
    both = subprocess.run([str(EXE), "baseline", "capture", "--db", str(tmp_path / "j.db")],
                          capture_output=True, text=True, timeout=60)
    assert both.returncode == 2 and "give --scenario FILE, or a daemon config" in both.stderr
    config = tmp_path / "watchdog.yaml"
    config.write_text("source: {plugin: nonesuch}\n")
    bad = subprocess.run([str(EXE), "baseline", "capture", "--config", str(config)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--module is required" in bad.stderr
