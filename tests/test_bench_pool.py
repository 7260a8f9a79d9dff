"""bench/pool.py: the pooled figures are those of all rows together, from either bench's files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import pool  # a bench script, not a package: imported from its folder


def _row(name: str, expect: str, verdict: str, delay: int | None) -> dict[str, object]:
    return {"scenario": name, "shape": name.rsplit("-", 1)[0], "expect": expect,
            "onset": 0 if expect == "rollback" else None, "verdict": verdict,
            "outcome": "x", "rollback_at": delay, "delay": delay, "reason": ""}


def test_two_files_pool_into_one_score_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calib = tmp_path / "a.json"  # bench/calibrate.py --save
    calib.write_text(json.dumps({"figures": {}, "rows": [
        _row("reg-a-1", "rollback", "detected", 30), _row("reg-a-2", "rollback", "detected", 90),
        _row("aa-b-1", "no_rollback", "promoted", None)]}))
    real = tmp_path / "b.json"  # bench/realnoise.py --save: one entry per judge
    real.write_text(json.dumps({"ours": {"figures": {}, "rows": [
        _row("reg-a-3", "rollback", "missed", None), _row("reg-a-4", "rollback", "detected", 50),
        _row("aa-b-2", "no_rollback", "false_rollback", 100)]},
        "kayenta": {"figures": {}, "rows": []}}))
    assert pool.main([str(calib), str(real)]) == 0
    out = capsys.readouterr().out
    assert "2 sets, 6 rollouts" in out
    assert "0.750 detection (3 of 4)" in out
    assert "0.500 false rollbacks (1 of 2)" in out
    assert "median delay 50 s" in out
    assert "0.667 of detections within 60 s" in out
    with pytest.raises(SystemExit, match="no judge 'threshold'"):
        pool.main([str(real), "--judge", "threshold"])
