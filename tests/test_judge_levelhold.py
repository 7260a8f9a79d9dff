"""Level episodes: where V1's own level strays, a breach must outlast one episode
(judge/levelhold.py).

Series are generated from a few parameters (tests never read recorded data), at one
sample a minute as host metrics are. The V1 with episodes imitates a property of real
host latency: level episodes (real hosts: the 10-minute median 25 % above the previous
hour's 7-54 times a day, most lasting 10-30 minutes); here one 10-minute rise of 35 % in
its hour before the rollout, over noise of 10 % of the level. A healthy V2 has an
episode of its own host: latency x2.5 for 8 minutes, which no test on a few minutes of
V2 tells from a regression. The steady V1 is white noise of 5 % of its level: there the
hold must cost nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from watchdog.backtest import replay
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import load_default_rules
from watchdog.judge import levelhold
from watchdog.judge import tuning as tuning_mod
from watchdog.judge.context import EvalContext
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Version

STEP = 60
METRIC = "latency_p95_ms"
LEVEL = 200.0
ONSET = 2700  # the 25 % stage
HOLD = tuning_mod.tuning().level_hold_seconds


@contextmanager
def settings(**changes: object) -> Iterator[None]:
    before = tuning_mod.tuning()
    tuning_mod.use(replace(before, **changes))  # type: ignore[arg-type]
    try:
        yield
    finally:
        tuning_mod.use(before)


def v1_level(t: np.ndarray, episodes: bool) -> np.ndarray:
    """V1's level: flat, or 35 % higher for 10 minutes of its hour before the rollout."""
    if not episodes:
        return np.full(len(t), LEVEL)
    return LEVEL * np.where((t >= -1800) & (t < -1200), 1.35, 1.0)


def scenario(tmp_path: Path, episodes: bool, v2_shape: str, seed: int) -> Path:
    """A recorded rollout (FORMAT.md): 5/25/50/75/100 %, 30 minutes a stage."""
    rng = np.random.default_rng(seed)
    t1 = np.arange(-3600, 7200, STEP, dtype=float)
    t2 = np.arange(0, 10800, STEP, dtype=float)
    v1 = v1_level(t1, episodes) + rng.normal(0, (0.1 if episodes else 0.05) * LEVEL, len(t1))
    v2 = LEVEL + rng.normal(0, 0.05 * LEVEL, len(t2))
    if v2_shape == "episode":  # V2's host: x2.5 for 8 minutes, then back
        v2 = np.where((t2 >= 4200) & (t2 < 4680), 2.5 * v2, v2)
    elif v2_shape == "regression":  # x1.5 from ONSET on, for good
        v2 = np.where(t2 >= ONSET, 1.5 * v2, v2)
    elif v2_shape == "down":  # x2.5 from ONSET, and V2's metrics gone 5 minutes later
        v2 = np.where(t2 >= ONSET, 2.5 * v2, v2)
        keep = t2 < ONSET + 300
        t2, v2 = t2[keep], v2[keep]
    meta = {"kind": "meta", "scenario": f"levelhold-{v2_shape}", "module": "svc",
            "step_seconds": STEP, "baseline": {"from": -3600, "to": 0},
            "plan": {"stages": [5, 25, 50, 75, 100], "stage_seconds": 1800}, "end": 10800,
            "metrics": {METRIC: "higher_is_worse"}}
    lines = [json.dumps(meta)]
    for version, times, values in (("v1", t1, v1), ("v2", t2, v2)):
        lines += [json.dumps({"t": int(t), "version": version, "metric": METRIC,
                              "value": round(float(v), 3)}) for t, v in zip(times, values,
                                                                           strict=True)]
    path = tmp_path / f"{v2_shape}-{seed}.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(path: Path) -> replay.BacktestResult:
    return replay.run(load_scenario(path), load_default_rules())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_episode_of_v2s_host_is_not_rolled_back_where_v1_has_episodes(
        tmp_path: Path, seed: int) -> None:
    path = scenario(tmp_path, episodes=True, v2_shape="episode", seed=seed)
    assert run(path).outcome == "promoted"
    with settings(level_hold=False):  # the mechanism is what keeps it
        off = run(path)
    assert off.outcome == "rolled_back" and 4200 <= (off.rollback_at or 0) <= 4800


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_regression_is_rolled_back_once_it_outlasts_an_episode(
        tmp_path: Path, seed: int) -> None:
    path = scenario(tmp_path, episodes=True, v2_shape="regression", seed=seed)
    result = run(path)
    assert result.outcome == "rolled_back"
    # not before it has lasted the hold; before the last stage (its breach flickers under
    # this much noise, so a run of the hold may take longer than the hold)
    assert ONSET + HOLD <= (result.rollback_at or 0) < 7200
    # the reason says why it took that long
    rollback = [d.to_dict() for d in result.decisions if d.to_dict()["action"] == "rollback"]
    assert f"(held {HOLD:g}s first: V1's own level strayed" in rollback[0]["reasons"][0]
    with settings(level_hold=False):  # the price: without the hold it goes sooner
        off = run(path)
    assert off.outcome == "rolled_back" and (off.rollback_at or 0) < (result.rollback_at or 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_on_a_steady_v1_the_hold_costs_nothing(tmp_path: Path, seed: int) -> None:
    path = scenario(tmp_path, episodes=False, v2_shape="regression", seed=seed)
    result = run(path)
    with settings(level_hold=False):
        off = run(path)
    assert result.outcome == off.outcome == "rolled_back"
    assert result.rollback_at == off.rollback_at
    assert (result.rollback_at or 0) - ONSET < 600


def test_a_held_breach_whose_data_goes_missing_is_carried_to_a_rollback(
        tmp_path: Path) -> None:
    """The regression takes V2's metrics endpoint down with it while its breach waits
    out the hold: the last breach is carried for the hold (verdict.carry_for), so it
    still rolls back, once the hold has passed, instead of holding until data returns."""
    path = scenario(tmp_path, episodes=True, v2_shape="down", seed=1)
    result = run(path)
    assert result.outcome == "rolled_back"
    assert ONSET + HOLD <= (result.rollback_at or 0) <= ONSET + 300 + HOLD + 60
    with settings(level_hold=False):
        off = run(path)
    assert off.outcome == "rolled_back" and (off.rollback_at or 0) < ONSET + 300


def _context(episodes: bool, now: float = 3000.0) -> EvalContext:
    module = load_default_rules().for_module("svc")
    rng = np.random.default_rng(5)
    t1 = np.arange(-3600.0, now + 1, STEP)
    v1 = v1_level(t1, episodes) + rng.normal(0, 0.1 * LEVEL, len(t1))
    t2 = np.arange(0.0, now + 1, STEP)
    store = SeriesStore({(Version.V1, METRIC): Series(t1, v1),
                         (Version.V2, METRIC): Series(t2, np.full(len(t2), LEVEL))})
    return EvalContext(module, now, 0.0, store, {}, traffic_percent=25.0,
                       stage_started_at=1800.0)


def test_the_hold_applies_to_rollback_rules_on_the_straying_metric_only() -> None:
    ctx = _context(episodes=True)
    rules = {r.name: r for r in ctx.module.rules}
    held = levelhold.hold(rules["latency_p95_regression"], ctx)
    assert held.seconds == HOLD and held.bridge == tuning_mod.tuning().level_hold_bridge
    assert 600 <= held.episode <= 900  # the 10-minute rise, read on 5-minute medians
    # a rate whose noise is modelled from counts is not held
    assert levelhold.hold(rules["error_rate_regression"], ctx) == levelhold.NONE
    assert levelhold.hold(rules["latency_p95_regression"], _context(False)) == levelhold.NONE
    with settings(level_hold=False):
        assert levelhold.hold(rules["latency_p95_regression"], ctx) == levelhold.NONE


@pytest.mark.parametrize("v1_gone", [False, True])
def test_a_held_breach_is_carried_over_v2s_missing_data_not_over_v1_gone(
        v1_gone: bool) -> None:
    """Pending under the hold for longer than the hold, last breached 2 minutes ago:
    V2's data missing carries that breach (it fires); V1 no longer serving (the rule
    against live V1 is inapplicable) is no sign of V2 and carries it only for the rule's
    own ``for`` (it stays pending)."""
    from watchdog.judge.alerts import AlertPhase, AlertState
    from watchdog.judge.verdict import judge

    metric = "throughput_rps"
    module = load_default_rules().for_module("svc")
    module = module.model_copy(update={"rules": [r for r in module.rules
                                                 if r.name == "throughput_regression"]})
    rng = np.random.default_rng(3)
    now = 10900.0 if v1_gone else 7500.0
    v1_until, v2_until = (7200.0, now) if v1_gone else (now, 7000.0)
    t1 = np.arange(-3600.0, v1_until, 10.0)  # a service's 10 s samples
    v1 = 50.0 * np.where((t1 >= -1800) & (t1 < -1200), 0.6, 1.0) \
        + rng.normal(0, 1.0, len(t1))  # demand 40 % down for 10 minutes: an episode
    t2 = np.arange(0.0, v2_until + 1, 10.0)
    store = SeriesStore({(Version.V1, metric): Series(t1, v1),
                         (Version.V2, metric): Series(t2, 50.0 + rng.normal(0, 1.0, len(t2)))})
    ctx = EvalContext(module, now, 0.0, store, {}, traffic_percent=100.0 if v1_gone
                      else 75.0, stage_started_at=7200.0 if v1_gone else 5400.0)
    pending = {"throughput_regression": AlertState(
        AlertPhase.PENDING, active_at=now - HOLD - 100, last_breach_at=now - 120)}
    verdict, states = judge(ctx, pending)
    result = verdict.results[0]
    assert result.evidence.get("level_hold") == HOLD
    if v1_gone:  # inapplicable: not carried past the rule's own `for`
        assert result.outcome.value == "inapplicable"
        assert states["throughput_regression"].phase is AlertPhase.PENDING
    else:  # V2's data missing: carried for the hold, and the hold has passed
        assert result.outcome.value == "missing"
        assert states["throughput_regression"].phase is AlertPhase.FIRING
