"""The daemon fed impossible values (issue 16, item 6): a real ``rollout-watchdog run``
replaying a healthy rollout whose V2 latency is 1e308 or -50 ms for five minutes and whose
V1 error rate is -1.003 for a minute and a half (what the fault-injection audit's broken
Prometheus returned). They are missing data: no rollback, every dropped sample counted
once on the daemon's /metrics, one log line when each kind of drop begins, and every
decision's evidence strict JSON in the journal."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from watchdog.journal.store import Journal

POISONED = (300.0, 600.0)  # V2 latency: 1e308 and -50 ms alternately, t in [300, 600)
NEGATIVE_V1 = (300.0, 390.0)  # V1 error rate -1.003, t in [300, 390)


def poison(source: Path, target: Path) -> None:
    lines = source.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        item = json.loads(line)
        t, version, metric = item["t"], item["version"], item["metric"]
        if version == "v2" and metric == "latency_p95_ms" and POISONED[0] <= t < POISONED[1]:
            item["value"] = 1e308 if int(t) % 20 == 0 else -50.0
        if version == "v1" and metric == "error_rate" and NEGATIVE_V1[0] <= t < NEGATIVE_V1[1]:
            item["value"] = -1.003
        out.append(json.dumps(item))
    target.write_text("\n".join(out) + "\n")


def last_tick(db: Path) -> float:
    journal = Journal(db)
    try:
        cp = journal.checkpoint("checkout")
    finally:
        journal.close()
    return -1.0 if cp is None or cp.last_tick_at is None else cp.last_tick_at


def rejected(metrics: str) -> dict[tuple[str, str, str], float]:
    pattern = (r'watchdog_samples_rejected_total\{metric="([^"]+)",module="checkout",'
               r'reason="([^"]+)",version="([^"]+)"\} (\S+)')
    return {(version, metric, reason): float(value)
            for metric, reason, version, value in re.findall(pattern, metrics)}


def test_impossible_values_are_counted_logged_and_never_roll_back(
        dkit: Any, spawn: Any, tmp_path: Path) -> None:
    scenario = tmp_path / "aa-clean-poisoned.jsonl"
    poison(dkit.SCENARIOS / "aa-clean-1000.jsonl", scenario)
    setup = dkit.make_setup(tmp_path / "run", scenario=str(scenario), pace="20ms",
                            extra="api: {enabled: true, port: 0}\n")
    proc = spawn(setup)
    proc.wait_for("HTTP API listening on")
    url = re.search(r"HTTP API listening on (\S+)", proc.log())
    assert url is not None
    dkit.until(lambda: last_tick(setup.db) >= 800.0, 60, "ticks past the poisoned span")
    found = rejected(httpx.get(url[1] + "/metrics", timeout=10).text)
    assert found[("v2", "latency_p95_ms", "above_max")] == 15  # 1e308 at 300, 320, ... 580
    assert found[("v2", "latency_p95_ms", "below_min")] == 15  # -50 at 310, 330, ... 590
    assert found[("v1", "error_rate", "below_min")] == 9
    assert found[("v2", "error_rate", "above_max")] == 0  # created at 0
    log = proc.log()
    for what in ("V2 samples of latency_p95_ms outside its domain [0, 1e+100] (above_max)",
                 "V2 samples of latency_p95_ms outside its domain [0, 1e+100] (below_min)",
                 "V1 samples of error_rate outside its domain [0, 1] (below_min)"):
        assert log.count(what) == 1, (what, log[-3000:])
    with sqlite3.connect(setup.db) as db:
        rows = db.execute("SELECT action, json_valid(evidence), evidence FROM decisions "
                          "ORDER BY id").fetchall()
    assert rows and all(valid == 1 for _, valid, _ in rows)
    assert "rollback" not in [action for action, _, _ in rows]
    # a decision made while they were in the judged data says what was dropped
    assert any("samples out of domain" in evidence for _, _, evidence in rows)
