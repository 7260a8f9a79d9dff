"""A recording scraped every 30 s (not 10 s) is judged as well: the module is evaluated
every step and a rule's window widens to hold ``min_samples`` samples (judge.context.span).
With 1-minute windows and 30-s samples every relative rule once held 2 samples of the 3
it needs, forever: no regression was rolled back and no healthy rollout was promoted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watchdog.backtest import replay
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import RuleSet, load_default_rules

DATA = Path(__file__).parent / "data" / "scenarios"
TRUTH = {t["scenario"]: t for t in json.loads((DATA / "truth.json").read_text())}


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_default_rules()


def _every(path: Path, step: int, out: Path) -> Path:
    """The recording with only the samples on a ``step``-second grid, as a scrape every
    ``step`` seconds would have stored it."""
    lines = path.read_text().splitlines()
    meta = json.loads(lines[0])
    meta["step_seconds"] = step
    kept = [json.dumps(meta)] + [ln for ln in lines[1:] if json.loads(ln)["t"] % step == 0]
    target = out / path.name
    target.write_text("\n".join(kept) + "\n")
    return target


@pytest.mark.parametrize("path", sorted(DATA.glob("*.jsonl")), ids=lambda p: p.stem)
def test_a_recording_scraped_every_30s_is_judged(path: Path, rules: RuleSet,
                                                  tmp_path: Path) -> None:
    truth = TRUTH[path.stem]
    result = replay.run(load_scenario(_every(path, 30, tmp_path)), rules)
    if truth["expect"] == "rollback":
        assert result.outcome == "rolled_back", result.decisions[-1].decision.reasons
        assert result.rollback_at is not None and result.rollback_at >= truth["onset"]
    elif path.stem.startswith("aa-gaps"):
        # whole-scrape gaps of up to 250 s at 30-s samples may hold it past the recording
        assert result.outcome in ("promoted", "in_progress")
    else:
        assert result.outcome == "promoted", result.decisions[-1].decision.reasons


def test_the_window_widens_only_where_samples_are_sparse(rules: RuleSet,
                                                         tmp_path: Path) -> None:
    scenario = load_scenario(_every(DATA / "aa-clean-1000.jsonl", 30, tmp_path))
    module = replay.rules_at_step(rules, scenario).for_module(scenario.module)
    assert module.interval == 30
    ten = load_scenario(DATA / "aa-clean-1000.jsonl")
    assert replay.rules_at_step(rules, ten) is rules  # 10-s recordings: the rules as given


def _without(path: Path, metrics: tuple[str, ...], out: Path) -> Path:
    lines = path.read_text().splitlines()
    meta = json.loads(lines[0])
    for m in metrics:
        del meta["metrics"][m]
    kept = [json.dumps(meta)] + [ln for ln in lines[1:] if json.loads(ln)["metric"] not in metrics]
    target = out / path.name
    target.write_text("\n".join(kept) + "\n")
    return target


def test_rules_on_a_metric_the_recording_lacks_are_not_judged(rules: RuleSet,
                                                              tmp_path: Path) -> None:
    # a recording without parse rate and memory: their rules would hold it forever as
    # missing data (nothing promoted); they are left out, and the output says so
    path = _without(DATA / "aa-clean-1000.jsonl", ("parse_rate", "memory_rss_bytes"), tmp_path)
    result = replay.run(load_scenario(path), rules)
    assert result.outcome == "promoted"
    assert result.not_judged == ("parse_rate_regression", "memory_growth")
    assert result.to_json()["not_judged"] == ["parse_rate_regression", "memory_growth"]
    # the regressions on the metrics it has are still judged
    lat = _without(DATA / "reg-latency-x1.4-1388.jsonl", ("parse_rate",), tmp_path)
    judged = replay.run(load_scenario(lat), rules)
    assert judged.outcome == "rolled_back" and judged.not_judged == ("parse_rate_regression",)
    # a full recording: every rule judged, and no new key in the JSON contract
    full = replay.run(load_scenario(DATA / "aa-clean-1000.jsonl"), rules)
    assert full.not_judged == () and "not_judged" not in full.to_json()


def test_span_widens_a_window_only_to_hold_min_samples() -> None:
    from watchdog.config.loader import load_texts
    from watchdog.judge.context import EvalContext, span
    from watchdog.judge.series import SeriesStore

    text = """
modules:
  - name: svc
    interval: {interval}
    metrics:
      m: {{direction: higher_is_worse}}
    rules:
      - {{name: last, kind: absolute, metric: m, above: 1, window: 5s, min_samples: 1}}
      - {{name: minute, kind: absolute, metric: m, above: 1, window: 1m}}
"""
    for interval, expected in (("10s", {"last": 5.0, "minute": 60.0}),
                               ("30s", {"last": 15.0, "minute": 75.0}),
                               ("1m", {"last": 30.0, "minute": 150.0})):
        module = load_texts([("t.yaml", text.format(interval=interval))]).for_module("svc")
        ctx = EvalContext(module, 1000.0, 0.0, SeriesStore(), {})
        # (last): the newest sample only, at any interval; (minute): three samples
        assert {r.name: span(r, ctx) for r in module.rules} == expected
