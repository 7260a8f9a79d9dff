"""bench/atlimit.py: healthy recordings moved to the limit, V2's one metric and nothing else."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import atlimit  # a bench script, not a package: imported from its folder


def test_only_v2s_metric_of_the_healthy_recordings_moves(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    rows = [
        {"kind": "meta", "scenario": "aa-clean-1"},
        {"t": 0, "version": "v1", "metric": "latency_p95_ms", "value": 200.0},
        {"t": 0, "version": "v2", "metric": "latency_p95_ms", "value": 180.0},
        {"t": 0, "version": "v2", "metric": "error_rate", "value": 0.01},
    ]
    (src / "aa-clean-1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (src / "reg-x-1.jsonl").write_text(json.dumps(rows[0]) + "\n")
    truths = [
        {"scenario": "aa-clean-1", "expect": "no_rollback", "onset": None, "shape": "aa-clean"},
        {"scenario": "reg-x-1", "expect": "rollback", "onset": 0, "shape": "reg-x"},
    ]
    (src / "truth.json").write_text(json.dumps(truths))
    assert atlimit.main([str(src), str(dst), "--metric", "latency_p95_ms", "--factor", "1.05"]) == 0
    out = [json.loads(line) for line in (dst / "aa-clean-1.jsonl").read_text().splitlines()]
    assert [r.get("value") for r in out] == [None, 200.0, 189.0, 0.01]
    assert json.loads((dst / "truth.json").read_text()) == truths[:1]
    assert not (dst / "reg-x-1.jsonl").exists()
