"""`rollout-watchdog baseline capture --config` stores no sample outside its metric's
domain (issue 16, item 6): a real HTTP server on loopback stands in for a broken
Prometheus answering every range query with 0.01, -1.003, 1e308 and 0.03. Before the
fix the error rate's stored baseline held all four (mean 2.5e307)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from watchdog.journal.store import Journal

EXE = Path(sys.executable).parent / "rollout-watchdog"


def test_capture_drops_values_outside_each_metrics_domain(stub: Any, tmp_path: Path) -> None:
    now = time.time()
    values = [[now - 60 + 10 * i, str(v)] for i, v in enumerate([0.01, -1.003, 1e308, 0.03])]
    stub.reply({"body": json.dumps({"status": "success", "data": {
        "resultType": "matrix", "result": [{"metric": {}, "values": values}]}}),
        "content_type": "application/json"})
    config = tmp_path / "watchdog.yaml"
    config.write_text(
        f"db: {tmp_path / 'journal.db'}\n"
        f"source: {{plugin: prometheus, options: {{url: \"{stub.url}\"}}}}\n"
        f"actuators: [{{plugin: file, options: {{path: \"{tmp_path}/{{module}}.json\"}}}}]\n"
        "modules: [checkout]\n")
    done = subprocess.run([str(EXE), "baseline", "capture", "--config", str(config),
                           "--module", "checkout", "--window", "2m", "--min-samples", "2"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    journal = Journal(tmp_path / "journal.db")
    try:
        stored = {b.metric: b for b in journal.baselines(module="checkout")}
    finally:
        journal.close()
    for metric in ("error_rate", "parse_rate", "latency_p95_ms", "memory_rss_bytes"):
        assert [v for _, v in stored[metric].samples] == [0.01, 0.03], metric
        assert abs(stored[metric].mean - 0.02) < 1e-12
