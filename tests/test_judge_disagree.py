"""Live V1 and its stored baseline disagree (V1 drifted): V2 must be worse than both.

Imitates what rolled healthy real-noise rollouts back (issue 17): V1 fell from its usual
level while V2 stayed where V1 had been, and V2 read worse "against live V1".
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from watchdog.baseline import capture
from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module, RelativeRule
from watchdog.judge import tuning as tuning_mod
from watchdog.judge.context import EvalContext
from watchdog.judge.relative import evaluate_relative
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import RuleResult, Version

STEP = 10.0
METRIC = "latency_p95_ms"


def _module() -> Module:
    return load_default_rules().for_module("svc")


def _rule(module: Module) -> RelativeRule:
    rule = next(r for r in module.rules if r.name == "latency_p95_regression")
    assert isinstance(rule, RelativeRule)
    return rule


def judge(v1_level: float, v2_level: float, *, disagree: bool = True) -> RuleResult:
    rng = np.random.default_rng(4)
    tb = np.arange(-3600.0, -1800.0, STEP)
    base = capture("svc", METRIC, zip(tb.tolist(), (270 + rng.normal(0, 5, len(tb))).tolist(),
                                      strict=True), -3600.0, -1800.0, "test", -1800.0)
    base = replace(base, id=1)
    now = 1200.0
    t = np.arange(-1800.0, now + 1, STEP)
    t2 = t[t > 0]
    store = SeriesStore({
        (Version.V1, METRIC): Series(t, v1_level + rng.normal(0, 5, len(t))),
        (Version.V2, METRIC): Series(t2, v2_level + rng.normal(0, 5, len(t2))),
    })
    module = _module()
    ctx = EvalContext(module, now, 0.0, store, {METRIC: base}, traffic_percent=25.0,
                      stage_started_at=0.0)
    before = tuning_mod.tuning()
    tuning_mod.use(replace(before, disagreeing_references=disagree))
    try:
        return evaluate_relative(_rule(module), ctx)
    finally:
        tuning_mod.use(before)


def test_v2_at_the_baseline_while_v1_drifted_down_is_inconclusive() -> None:
    assert judge(200.0, 270.0, disagree=False).breached is True  # the judge before
    found = judge(200.0, 270.0)
    assert found.breached is None
    assert found.evidence["disagree"] == 1
    assert "references disagree" in found.summary


def test_v2_worse_than_both_references_breaches() -> None:
    found = judge(200.0, 400.0)
    assert found.breached is True, found.summary


def test_agreeing_references_judge_against_live_v1_as_before() -> None:
    found = judge(270.0, 300.0)
    assert found.breached is True, found.summary
    assert "disagree" not in found.evidence


def test_a_disagreement_clears_a_pending_alert_and_holds() -> None:
    # a disagreement is evidence (V2 is not worse than the baseline), not missing data: a
    # breach pending before it must not be carried on to a rollback
    from watchdog.judge.alerts import AlertPhase, AlertState
    from watchdog.judge.verdict import judge as judge_module
    from watchdog.model import VerdictKind

    rng = np.random.default_rng(4)
    tb = np.arange(-3600.0, -1800.0, STEP)
    base = replace(capture("svc", METRIC, zip(tb.tolist(), (270 + rng.normal(0, 5, len(tb)))
                                              .tolist(), strict=True),
                           -3600.0, -1800.0, "test", -1800.0), id=1)
    now = 1200.0
    t = np.arange(-1800.0, now + 1, STEP)
    t2 = t[t > 0]
    store = SeriesStore({
        (Version.V1, METRIC): Series(t, 200 + rng.normal(0, 5, len(t))),
        (Version.V2, METRIC): Series(t2, 270 + rng.normal(0, 5, len(t2))),
    })
    module = _module().model_copy(update={"rules": [_rule(_module())]})
    ctx = EvalContext(module, now, 0.0, store, {METRIC: base}, traffic_percent=25.0,
                      stage_started_at=0.0)
    pending = {"latency_p95_regression": AlertState(AlertPhase.PENDING, active_at=now - 5,
                                                    last_breach_at=now - 5)}
    verdict, states = judge_module(ctx, pending)
    assert verdict.kind is VerdictKind.INCONCLUSIVE
    assert "references disagree" in verdict.reasons[0]
    # V1's level strayed 26 % from its baseline: the level-episode hold (levelhold.py)
    # bridges the pending alert over this evaluation, which never fires it
    assert states["latency_p95_regression"].phase is AlertPhase.PENDING
    before = tuning_mod.tuning()
    tuning_mod.use(replace(before, level_hold=False))
    try:
        verdict, states = judge_module(ctx, pending)
    finally:
        tuning_mod.use(before)
    assert verdict.kind is VerdictKind.INCONCLUSIVE
    assert states["latency_p95_regression"].phase is AlertPhase.INACTIVE
