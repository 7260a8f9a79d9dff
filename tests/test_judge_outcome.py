"""A rule's outcome is a RuleOutcome; the verdict decides on it alone (issue 17 item 1).

The evidence flags (warming, disagree, inapplicable, stale) stay in the journal, written
from the outcome; no code decides on them. ``RuleResult(name, metric, True|False|None,
...)`` still builds breached / clear / missing, and ``.breached`` stays True/False/None.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module, Rule
from watchdog.judge import verdict as verdict_mod
from watchdog.judge.alerts import AlertPhase, AlertState
from watchdog.judge.context import EvalContext, inconclusive
from watchdog.judge.reference import ReferenceKind
from watchdog.judge.relative import evaluate_relative
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import RuleOutcome, RuleResult, VerdictKind, Version

RULE = "latency_p95_regression"


def _module() -> Module:
    return load_default_rules().for_module("svc")


def test_breached_is_derived_from_the_outcome() -> None:
    assert {o: o.breached for o in RuleOutcome} == {
        RuleOutcome.BREACHED: True, RuleOutcome.CLEAR: False, RuleOutcome.MISSING: None,
        RuleOutcome.WARMING: None, RuleOutcome.DISPUTED: None,
        RuleOutcome.INAPPLICABLE: None, RuleOutcome.UNCONFIRMED: None}
    for value in (True, False, None):
        assert RuleOutcome.of(value).breached is value


def test_the_old_constructor_builds_breached_clear_or_missing() -> None:
    assert RuleResult("r", "m", True, "s").outcome is RuleOutcome.BREACHED
    assert RuleResult("r", "m", False, "s", {"n": 1}).outcome is RuleOutcome.CLEAR
    assert RuleResult("r", "m", None, "s").outcome is RuleOutcome.MISSING
    assert RuleResult("r", "m", np.float64(3.0) > 2.0, "s").breached is True  # numpy bools
    found = RuleResult("r", "m", RuleOutcome.WARMING, "s")
    assert found.breached is None and found.evidence == {}
    # dataclasses.replace (domain.annotate, groups) keeps the outcome
    assert replace(found, summary="t").outcome is RuleOutcome.WARMING
    assert found == RuleResult("r", "m", RuleOutcome.WARMING, "s", {})


def test_inconclusive_writes_the_flag_of_its_outcome() -> None:
    rule = next(r for r in _module().rules if r.name == RULE)
    flags = {o: {k: v for k, v in inconclusive(rule, "why", o, n_v2=2).evidence.items()
                 if k not in ("inconclusive", "n_v2")}
             for o in (RuleOutcome.MISSING, RuleOutcome.WARMING, RuleOutcome.DISPUTED,
                       RuleOutcome.INAPPLICABLE)}
    assert flags == {RuleOutcome.MISSING: {}, RuleOutcome.WARMING: {"warming": True},
                     RuleOutcome.DISPUTED: {"disagree": 1},
                     RuleOutcome.INAPPLICABLE: {"inapplicable": True}}
    assert inconclusive(rule, "why").outcome is RuleOutcome.MISSING


def test_the_verdict_maps_every_outcome() -> None:
    assert set(verdict_mod.ALERT_SEES) == set(RuleOutcome)
    assert {RuleOutcome.MISSING, RuleOutcome.DISPUTED,
            RuleOutcome.UNCONFIRMED} == verdict_mod.UNSURE


PENDING = AlertState(AlertPhase.PENDING, active_at=0.0, last_breach_at=0.0)


def _judge(monkeypatch: pytest.MonkeyPatch, outcome: RuleOutcome, evidence: dict[str, Any]
           ) -> tuple[VerdictKind, AlertState]:
    """The verdict on one rule whose evaluation is replaced by a chosen result (a stub:
    no series can make a result whose evidence flags contradict its outcome, which is
    what shows the verdict no longer reads them). The other rules are clear."""
    module = _module()

    def fake(rule: Rule, ctx: EvalContext) -> RuleResult:
        if rule.name == RULE:
            return RuleResult(rule.name, rule.metric, outcome, "chosen", dict(evidence))
        return RuleResult(rule.name, rule.metric, False, "clear")

    monkeypatch.setattr(verdict_mod, "evaluate", fake)
    ctx = EvalContext(module, 1.0, 0.0, SeriesStore({}), {})
    found, states = verdict_mod.judge(ctx, {RULE: PENDING})
    return found.kind, states[RULE]


@pytest.mark.parametrize(("outcome", "evidence", "kind", "phase"), [
    # flags that once decided are ignored: the outcome decides
    (RuleOutcome.MISSING, {"warming": True, "inapplicable": True}, VerdictKind.INCONCLUSIVE,
     AlertPhase.PENDING),
    (RuleOutcome.WARMING, {}, VerdictKind.HEALTHY, AlertPhase.INACTIVE),
    (RuleOutcome.DISPUTED, {}, VerdictKind.INCONCLUSIVE, AlertPhase.INACTIVE),
    (RuleOutcome.INAPPLICABLE, {}, VerdictKind.HEALTHY, AlertPhase.PENDING),
    (RuleOutcome.CLEAR, {"disagree": 1}, VerdictKind.HEALTHY, AlertPhase.INACTIVE),
])
def test_the_verdict_decides_on_the_outcome_not_on_evidence_flags(
        monkeypatch: pytest.MonkeyPatch, outcome: RuleOutcome, evidence: dict[str, Any],
        kind: VerdictKind, phase: AlertPhase) -> None:
    found, state = _judge(monkeypatch, outcome, evidence)
    assert (found, state.phase) == (kind, phase)


def test_reference_kinds_are_journaled_as_plain_strings() -> None:
    module = _module()
    rule = next(r for r in module.rules if r.name == RULE)
    t = np.arange(0.0, 301.0, 10.0)
    rng = np.random.default_rng(1)
    store = SeriesStore({(Version.V1, rule.metric): Series(t, 100 + rng.normal(0, 2, len(t))),
                         (Version.V2, rule.metric): Series(t, 100 + rng.normal(0, 2, len(t)))})
    found = evaluate_relative(rule, EvalContext(module, 300.0, 0.0, store, {}))
    against = found.evidence["against"]
    assert type(against) is str and against == ReferenceKind.LIVE_V1.value
    assert json.loads(json.dumps(found.evidence))["against"] == "live_v1"
    assert "vs live V1" in found.summary
    assert [k.label for k in ReferenceKind] == ["live V1", "baseline", "rebased baseline"]
