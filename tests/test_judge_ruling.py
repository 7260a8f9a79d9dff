"""The gates of a relative rule's breach (judge/ruling.py), each on its own, and their
sequence. Contexts are real (default rules, series of samples); a Finding is built by
hand where a gate reads only part of it, or by relative.find where it reads the
comparison itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from watchdog.baseline import capture
from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module, RelativeRule
from watchdog.judge import ruling, stats
from watchdog.judge.context import EvalContext
from watchdog.judge.reference import Reference, ReferenceKind
from watchdog.judge.relative import evaluate_relative, find
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import RuleOutcome, Version

LATENCY = "latency_p95_ms"
STEP = 10.0
MODULE: Module = load_default_rules().for_module("svc")


def _rule(name: str = "latency_p95_regression") -> RelativeRule:
    rule = next(r for r in MODULE.rules if r.name == name)
    assert isinstance(rule, RelativeRule)
    return rule


def _ctx(series: dict[tuple[Version, str], Series], now: float, started: float = 0.0
         ) -> EvalContext:
    return EvalContext(MODULE, now, started, SeriesStore(series), {}, traffic_percent=25.0)


def _flat(start: float, end: float, level: float, seed: int = 0) -> Series:
    t = np.arange(start, end + 1, STEP)
    return Series(t, level + np.random.default_rng(seed).normal(0, 2, len(t)))


def _finding(ctx: EvalContext, *, rule: RelativeRule | None = None, z_over: bool = True,
             thin: bool = False, by_scan: bool = False,
             rejudge: Callable[[float], stats.Comparison | None] = lambda w: None
             ) -> ruling.Finding:
    """A finding of V2 at 130 against 100 (z about 10), critical z 2.5 or 11 (no breach)."""
    comp = stats.compare(130.0, 2.0, 10, 100.0, 2.0, 10, 0.05, 0.0, True)
    ref = Reference(ReferenceKind.LIVE_V1, 100.0, 2.0, 10, level=100.0)
    return ruling.Finding(rule or _rule(), ctx, comp, ref, 70.0,
                          2.5 if z_over else comp.z + 1, thin, by_scan, "summary", rejudge)


def _steady(now: float = 600.0) -> EvalContext:
    return _ctx({(Version.V1, LATENCY): _flat(0, now, 100), (Version.V2, LATENCY):
                 _flat(0, now, 130, 1)}, now)


# -- thin_window ---------------------------------------------------------------------


def test_thin_window_rules_out_a_breach_by_z_but_not_by_scan() -> None:
    ctx = _steady()
    assert ruling.thin_window(_finding(ctx, thin=True)) == ruling.Ruling(
        RuleOutcome.CLEAR, "summary")
    assert ruling.thin_window(_finding(ctx, thin=True, by_scan=True)) is None
    assert ruling.thin_window(_finding(ctx)) is None


# -- v1_excursions -------------------------------------------------------------------


def _wandering_v1() -> EvalContext:
    """V1 at 100 for an hour but at 150 for 20 minutes of it (an excursion of its own)."""
    v1 = _flat(0, 3600, 100)
    v1 = Series(v1.t, np.where((v1.t > 1200) & (v1.t <= 2400), v1.v + 50, v1.v))
    return _ctx({(Version.V1, LATENCY): v1, (Version.V2, LATENCY): _flat(3000, 3600, 130)},
                3600.0, 3000.0)


def test_v1_excursions_asks_the_breach_to_outlast_v1s_own() -> None:
    asked: list[float] = []

    def weak(width: float) -> stats.Comparison:
        asked.append(width)
        return stats.compare(101.0, 2.0, 100, 100.0, 2.0, 100, 0.05, 0.0, True)

    found = ruling.v1_excursions(_finding(_wandering_v1(), rejudge=weak))
    assert found is not None and found.outcome is RuleOutcome.CLEAR
    assert asked and asked[0] > 1000  # about V1's 20 minutes
    assert "not past V1's own excursions" in found.summary
    assert set(found.evidence) == {"episode_span", "episode_z"}


def test_v1_excursions_lets_a_lasting_breach_stand_with_its_evidence() -> None:
    def strong(width: float) -> stats.Comparison:
        return stats.compare(130.0, 1.0, 100, 100.0, 1.0, 100, 0.05, 0.0, True)

    found = ruling.v1_excursions(_finding(_wandering_v1(), rejudge=strong))
    assert found is not None and found.outcome is RuleOutcome.BREACHED
    assert found.summary == "summary" and "episode_z" in found.evidence


def test_v1_excursions_passes_a_steady_v1_and_a_scan_breach() -> None:
    def never(width: float) -> stats.Comparison:
        raise AssertionError("no longer window to judge")

    assert ruling.v1_excursions(_finding(_steady(3600.0), rejudge=never)) is None
    assert ruling.v1_excursions(_finding(_wandering_v1(), by_scan=True, rejudge=never)) is None


# -- disputed ------------------------------------------------------------------------


def _drifted(v2_level: float) -> EvalContext:
    """Live V1 fell from its stored baseline's 270 to 200; V2 at ``v2_level``."""
    rng = np.random.default_rng(4)
    tb = np.arange(-3600.0, -1800.0, STEP)
    base = replace(capture("svc", LATENCY, zip(tb.tolist(), (270 + rng.normal(0, 5, len(tb)))
                                               .tolist(), strict=True),
                           -3600.0, -1800.0, "test", -1800.0), id=1)
    t = np.arange(-1800.0, 1201.0, STEP)
    t2 = t[t > 0]
    store = SeriesStore({(Version.V1, LATENCY): Series(t, 200 + rng.normal(0, 5, len(t))),
                         (Version.V2, LATENCY): Series(t2, v2_level + rng.normal(0, 5, len(t2)))})
    return EvalContext(MODULE, 1200.0, 0.0, store, {LATENCY: base}, traffic_percent=25.0)


def test_disputed_when_v2_is_worse_than_live_v1_only() -> None:
    found = find(_rule(), _drifted(270.0))
    assert isinstance(found, tuple)
    ruled = ruling.disputed(found[0])
    assert ruled is not None and ruled.outcome is RuleOutcome.DISPUTED
    assert "references disagree" in ruled.summary
    result = evaluate_relative(_rule(), _drifted(270.0))
    assert result.outcome is RuleOutcome.DISPUTED and result.evidence["disagree"] == 1


def test_disputed_passes_v2_worse_than_both_and_a_reference_with_a_note() -> None:
    found = find(_rule(), _drifted(400.0))
    assert isinstance(found, tuple) and ruling.disputed(found[0]) is None
    found = find(_rule(), _drifted(270.0))
    assert isinstance(found, tuple)
    noted = replace(found[0], ref=replace(found[0].ref, note="small share"))
    assert ruling.disputed(noted) is None


# -- stale_window --------------------------------------------------------------------


def test_stale_window_when_v2_stopped_reporting() -> None:
    ctx = _ctx({(Version.V1, LATENCY): _flat(0, 600, 100),
                (Version.V2, LATENCY): _flat(0, 540, 130)}, 600.0)
    found = ruling.stale_window(_finding(ctx))
    assert found is not None and found.outcome is RuleOutcome.MISSING
    assert found.evidence == {"stale": 60.0}
    assert found.summary.startswith("no new V2 sample for 60s") and "summary" in found.summary
    assert ruling.stale_window(_finding(_steady())) is None


# -- still_settling ------------------------------------------------------------------


def _settling(now: float, decaying: bool) -> EvalContext:
    t = np.arange(0.0, now + 1, STEP)
    rng = np.random.default_rng(2)
    excess = 100 * np.exp(-t / 150) if decaying else np.full(len(t), 30.0)
    return _ctx({(Version.V1, LATENCY): Series(t, 100 + rng.normal(0, 2, len(t))),
                 (Version.V2, LATENCY): Series(t, 100 + excess + rng.normal(0, 2, len(t)))},
                now)


def test_still_settling_while_v2s_excess_falls() -> None:
    found = ruling.still_settling(_finding(_settling(300.0, decaying=True)))
    assert found is not None and found.outcome is RuleOutcome.WARMING
    assert found.summary.startswith("V2 still settling after start")


def test_still_settling_passes_a_flat_excess_and_a_settled_v2() -> None:
    assert ruling.still_settling(_finding(_settling(300.0, decaying=False))) is None
    # past the metric's settle period (600 s for latency) nothing is settling any more
    assert ruling.still_settling(_finding(_settling(700.0, decaying=True))) is None


# -- warming_with --------------------------------------------------------------------


@pytest.mark.parametrize(("v2_latency", "warming"), [(150.0, True), (100.0, False)])
def test_warming_with_while_v2_is_still_slow(v2_latency: float, warming: bool) -> None:
    rule = _rule("throughput_regression")  # settles with latency_p95_ms
    ctx = _ctx({(Version.V1, LATENCY): _flat(0, 120, 100),
                (Version.V2, LATENCY): _flat(0, 120, v2_latency, 1)}, 120.0)
    found = ruling.warming_with(_finding(ctx, rule=rule))
    assert (found is not None and found.outcome is RuleOutcome.WARMING) is warming
    # a metric that settles with no other is never warming in one
    assert ruling.warming_with(_finding(ctx)) is None


# -- the sequence --------------------------------------------------------------------


def test_the_gates_run_in_this_order() -> None:
    assert [g.__name__ for g in ruling.GATES] == [
        "thin_window", "v1_excursions", "disputed", "stale_window", "still_settling",
        "warming_with"]
    assert all(g.__doc__ for g in ruling.GATES)


def test_a_clear_comparison_passes_no_gate() -> None:
    def boom(f: ruling.Finding) -> ruling.Ruling | None:
        raise AssertionError("a gate ran on a clear finding")

    found = ruling.rule_on(_finding(_steady(), z_over=False), [boom])
    assert found == ruling.Ruling(RuleOutcome.CLEAR, "summary")


def test_the_first_gate_that_rules_the_breach_out_ends_the_sequence() -> None:
    seen: list[str] = []

    def stands(f: ruling.Finding) -> ruling.Ruling | None:
        seen.append(f.summary)
        return ruling.Ruling(RuleOutcome.BREACHED, f.summary + "+", {"a": 1})

    def passes(f: ruling.Finding) -> ruling.Ruling | None:
        seen.append(f.summary)
        return None

    def rules_out(f: ruling.Finding) -> ruling.Ruling | None:
        seen.append(f.summary)
        return ruling.Ruling(RuleOutcome.WARMING, "why: " + f.summary, {"b": 2})

    def never(f: ruling.Finding) -> ruling.Ruling | None:
        raise AssertionError("ran after the breach was ruled out")

    found = ruling.rule_on(_finding(_steady()), [stands, passes, rules_out, never])
    assert found == ruling.Ruling(RuleOutcome.WARMING, "why: summary+", {"a": 1, "b": 2},
                                  "rules_out")
    assert seen == ["summary", "summary+", "summary+"]
    kept = ruling.rule_on(_finding(_steady()), [stands, passes])
    assert kept == ruling.Ruling(RuleOutcome.BREACHED, "summary+", {"a": 1})
