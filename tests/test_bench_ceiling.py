"""bench/ceiling.py: the window detectors and the whole-set choice its figures rest on.

The closing argument of issue 17 (no rule that reads windows of V2 against V1 or the
baseline reaches the real-noise targets) is only as good as these few functions, so
they are checked on generated recordings with a known answer (never on ../shared).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import ceiling  # a bench script, not a package: imported from its folder

END = 10800  # the real-noise recordings' length (s), one sample a minute


def _write(folder: Path, name: str, v1: dict[str, np.ndarray], v2: dict[str, np.ndarray],
           v1_until: int = 7200) -> None:
    """A recording in the scenario format: V1 from -3600 until ``v1_until``, V2 from 0."""
    lines = [json.dumps({"kind": "meta", "scenario": name, "end": END, "step_seconds": 60})]
    for metric, values in v1.items():
        for i, t in enumerate(range(-3600, v1_until, 60)):
            lines.append(json.dumps({"t": t, "version": "v1", "metric": metric,
                                     "value": float(values[i])}))
    for metric, values in v2.items():
        for i, t in enumerate(range(0, END, 60)):
            lines.append(json.dumps({"t": t, "version": "v2", "metric": metric,
                                     "value": float(values[i])}))
    (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")


def _set(folder: Path, size: float, healthy: int = 20, regressed: int = 10,
         seed: int = 1) -> None:
    """Healthy pairs of white latency noise (5 % of 200 ms), and latency x``size`` from
    an onset of 2700 s."""
    rng = np.random.default_rng(seed)
    truths = []
    n1, n2 = (7200 + 3600) // 60, END // 60
    for i in range(healthy):
        name = f"aa-white-{i}"
        _write(folder, name, {"latency_p95_ms": 200 + rng.normal(0, 10, n1)},
               {"latency_p95_ms": 200 + rng.normal(0, 10, n2)})
        truths.append({"scenario": name, "expect": "no_rollback", "onset": None,
                       "shape": "aa-white"})
    for i in range(regressed):
        name = f"reg-latency-x{size}-{i}"
        v2 = 200 + rng.normal(0, 10, n2)
        v2[2700 // 60:] *= size
        _write(folder, name, {"latency_p95_ms": 200 + rng.normal(0, 10, n1)},
               {"latency_p95_ms": v2})
        truths.append({"scenario": name, "expect": "rollback", "onset": 2700,
                       "shape": f"reg-latency-x{size}"})
    (folder / "truth.json").write_text(json.dumps(truths))


def test_a_regression_far_outside_white_noise_is_caught_whole_with_no_false_rollback(
        tmp_path: Path) -> None:
    _set(tmp_path, 2.0)
    s = ceiling.scored(str(tmp_path))
    chosen = ceiling.whole_set(s, 0.05)
    assert chosen.hits.all() and not chosen.fired.any()
    assert chosen.rules["latency_p95_ms"] is not None


def test_a_regression_inside_the_noise_is_not_caught_at_a_small_false_budget(
        tmp_path: Path) -> None:
    # x1.001 is 0.2 ms on 10 ms of noise: no window of any width tells it apart
    _set(tmp_path, 1.001, healthy=40, regressed=20)
    chosen = ceiling.whole_set(ceiling.scored(str(tmp_path)), 0.05)
    assert np.mean(chosen.fired) <= 0.05
    assert np.mean(chosen.hits) < 0.5


def test_the_whole_set_choice_keeps_within_its_budget_and_holds_out(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    _set(a, 1.08, healthy=40, regressed=20, seed=2)
    _set(b, 1.08, healthy=40, regressed=20, seed=3)
    sa, sb = ceiling.scored(str(a)), ceiling.scored(str(b))
    for budget in (0.0, 0.05, 0.25):
        assert np.mean(ceiling.whole_set(sa, budget).fired) <= budget
    # rules chosen on one set, scored on another: the same thresholds, other data
    held = ceiling.apply(ceiling.whole_set(sa, 0.05).rules, sb)
    assert held.fired.shape == (40,) and held.hits.shape == (20,)


def test_a_regression_is_scored_only_on_windows_after_its_onset(tmp_path: Path) -> None:
    _set(tmp_path, 2.0, healthy=1, regressed=1)
    s = ceiling.scored(str(tmp_path))
    d = ceiling.Detector("latency_p95_ms", "live", "mean", 30)
    assert s.reg[d][0] == pytest.approx(math.log(2.0), abs=0.05)
    # V2 x2 from 2700 s: a window that starts 10 minutes earlier averages two levels
    series = ceiling.load(str(tmp_path / "reg-latency-x2.0-0.jsonl"))["latency_p95_ms"]
    early = ceiling.window_scores(series, d, 2700 // 60 - 10)
    assert early[0] < math.log(2.0) - 0.1


def test_where_v1_stops_the_baseline_stands_in_and_both_takes_the_smaller(
        tmp_path: Path) -> None:
    n1, n2 = (7200 + 3600) // 60, END // 60
    v1 = np.full(n1, 200.0)
    v1[3600 // 60:] = 300.0  # live V1 rose by half after the start; the baseline is 200
    _write(tmp_path, "x", {"latency_p95_ms": v1}, {"latency_p95_ms": np.full(n2, 300.0)})
    series = ceiling.load(str(tmp_path / "x.jsonl"))["latency_p95_ms"]
    live = ceiling.window_scores(series, ceiling.Detector("latency_p95_ms", "live",
                                                          "median", 15), 0)
    both = ceiling.window_scores(series, ceiling.Detector("latency_p95_ms", "both",
                                                          "median", 15), 0)
    assert live[0] == pytest.approx(0.0)  # V2 where live V1 is
    assert live[-1] == pytest.approx(math.log(1.5))  # V1 gone: against the baseline
    assert both.max() == pytest.approx(math.log(1.5)) and both[0] == pytest.approx(0.0)


def test_the_slope_detector_reads_growth_per_hour_as_a_share_of_v1s_level(
        tmp_path: Path) -> None:
    n1, n2 = (7200 + 3600) // 60, END // 60
    minutes = np.arange(n2)
    v2 = 4e8 * (1 + 0.5 * minutes / 60)  # +50 %/h of V1's level
    _write(tmp_path, "m", {"memory_rss_bytes": np.full(n1, 4e8)}, {"memory_rss_bytes": v2})
    series = ceiling.load(str(tmp_path / "m.jsonl"))["memory_rss_bytes"]
    for ref in ("baseline", "live", "both"):
        d = ceiling.Detector("memory_rss_bytes", ref, "slope", 60)
        assert ceiling.score(series, d, 0) == pytest.approx(0.5, rel=1e-6)


def test_a_folder_without_a_set_is_a_clear_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert ceiling.main([str(tmp_path)]) == 2
    assert "holds no truth.json" in capsys.readouterr().err
