"""A breach that was seen is not forgotten when the data goes missing (issue 16, item 4).

A rule with action rollback whose alert is pending or firing, and whose data then goes
missing, keeps counting its ``for`` on the last evidence (the last breach), for at most
``carry_for`` after that breach (the judge passes the rule's ``for`` plus three
intervals): a regression that takes V2's metrics endpoint down with it is still rolled
back. Evidence older than that is stale: the alert freezes as before (missing data holds).
A rule that had not breached stays missing; other actions keep today's semantics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.config.loader import load_texts
from watchdog.engine import Engine
from watchdog.journal.store import Journal
from watchdog.judge.alerts import AlertPhase, AlertState, carried, step
from watchdog.model import Action, VerdictKind

INACTIVE, PENDING, FIRING = AlertPhase.INACTIVE, AlertPhase.PENDING, AlertPhase.FIRING


def run(events: list[tuple[float, bool | None]], hold_for: float, carry_for: float,
        state: AlertState | None = None) -> list[AlertState]:
    states = []
    current = state or AlertState()
    for now, breached in events:
        current = step(current, breached, now, hold_for, 0.0, carry_for=carry_for)
        states.append(current)
    return states


# -- the alert step ----------------------------------------------------------------------


def test_a_pending_alert_keeps_counting_for_on_its_last_breach_while_data_is_missing() -> None:
    states = run([(0.0, True), (10.0, True), (20.0, None), (30.0, None), (40.0, None)],
                 hold_for=30.0, carry_for=60.0)
    assert [s.phase for s in states] == [PENDING, PENDING, PENDING, FIRING, FIRING]
    assert states[3].fired_at == 30.0 and states[3].active_at == 0.0
    assert states[-1].last_breach_at == 10.0  # missing data is not a breach


def test_without_carry_a_pending_alert_freezes_while_data_is_missing() -> None:
    states = run([(0.0, True), (10.0, None), (100.0, None)], hold_for=30.0, carry_for=0.0)
    assert [s.phase for s in states] == [PENDING, PENDING, PENDING]


def test_stale_evidence_is_not_carried() -> None:
    # the last breach is older than carry_for (say the daemon was down): frozen, as before
    states = run([(0.0, True), (10.0, True), (100.0, None), (200.0, None)],
                 hold_for=30.0, carry_for=60.0)
    assert [s.phase for s in states] == [PENDING, PENDING, PENDING, PENDING]
    assert not carried(states[-1], 200.0, 60.0)
    assert carried(states[1], 70.0, 60.0)


def test_data_that_returns_clear_resets_the_carried_pending_alert() -> None:
    states = run([(0.0, True), (10.0, None), (20.0, False), (30.0, None), (60.0, None)],
                 hold_for=30.0, carry_for=60.0)
    assert [s.phase for s in states] == [PENDING, PENDING, INACTIVE, INACTIVE, INACTIVE]


def test_a_rule_that_never_breached_stays_inactive_while_data_is_missing() -> None:
    states = run([(0.0, None), (10.0, False), (20.0, None), (90.0, None)],
                 hold_for=0.0, carry_for=60.0)
    assert {s.phase for s in states} == {INACTIVE}
    assert not carried(states[-1], 90.0, 60.0)


def test_a_firing_alert_stays_firing_while_data_is_missing() -> None:
    states = run([(0.0, True), (10.0, None), (500.0, None)], hold_for=0.0, carry_for=30.0)
    assert [s.phase for s in states] == [FIRING, FIRING, FIRING]


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(min_value=1, max_value=40),
                                st.sampled_from([True, False, None])), max_size=40),
       hold_for=st.sampled_from([0.0, 10.0, 30.0, 60.0]),
       carry_extra=st.sampled_from([0.0, 10.0, 30.0]))
def test_an_alert_fires_only_on_breaches_seen_within_the_carry(
        steps: list[tuple[int, bool | None]], hold_for: float, carry_extra: float) -> None:
    carry_for = hold_for + carry_extra
    now, current = 0.0, AlertState()
    for dt, breached in steps:
        now += dt
        before = current
        current = step(current, breached, now, hold_for, 0.0, carry_for=carry_for)
        if current.phase is FIRING and before.phase is not FIRING:
            assert current.active_at is not None and current.last_breach_at is not None
            assert now - current.active_at >= hold_for  # `for` is never shortened
            if breached is None:  # fired on carried evidence: recent enough
                assert now - current.last_breach_at <= carry_for
        if breached is None and not carried(before, now, carry_for):
            assert current == before  # outside the carry, missing data changes nothing


def test_the_last_breach_summary_round_trips() -> None:
    state = AlertState(PENDING, active_at=1.0, last_breach_at=2.0,
                       breach_summary="m mean 180 over 3 samples (breached when above 150)")
    assert AlertState.from_dict(state.to_dict()) == state


# -- through the judge and the engine ----------------------------------------------------

RULES = """
modules:
  - name: svc
    interval: 10s
    metrics:
      m: {direction: higher_is_worse}
    rules:
      - {name: m_critical, kind: absolute, metric: m, above: 150, window: 5s, for: 40s,
         min_samples: 1, severity: critical, action: rollback}
      - {name: m_hold, kind: absolute, metric: m, above: 150, window: 5s, for: 40s,
         min_samples: 1, severity: warning, action: hold}
    plan:
      stages: [10, 50, 100]
      hold: 1h
      failure_limits: {consecutive: 1, cumulative: 3}
"""


def ticks(kit: Any, tmp_path: Path, feed: dict[int, float | None]) -> list[Any]:
    journal = Journal(tmp_path / "journal.db")
    source = kit.ScriptedSource()
    engine = Engine(load_texts([("<rules>", RULES)]), journal, source)
    engine.start("svc", 0.0)
    out = []
    try:
        for t, value in feed.items():
            source.feed(float(t), value)
            out.append(engine.tick("svc", float(t)))
    finally:
        journal.close()
    return out


def test_a_regression_whose_metrics_go_missing_while_pending_is_rolled_back(
        kit: Any, tmp_path: Path) -> None:
    # breached at 10 and 20 (pending since 10), then the endpoint is gone
    feed: dict[int, float | None] = {10: 200.0, 20: 200.0, 30: None, 40: None, 50: None,
                                     60: None}
    results = ticks(kit, tmp_path, feed)
    kinds = [r.verdict.kind for r in results]
    assert kinds[:3] == [VerdictKind.HEALTHY, VerdictKind.HEALTHY,
                         VerdictKind.INCONCLUSIVE]
    # `for` 40 s after the first breach at 10: the rollback comes at 50, on the evidence
    # last seen at 20
    assert kinds[3] is VerdictKind.INCONCLUSIVE and kinds[4] is VerdictKind.CRITICAL
    (decision,) = [d for d in results[4].decisions if d.action is Action.ROLLBACK]
    reason = decision.reasons[0]
    assert reason.startswith("m_critical: data missing for 30s")
    assert "last seen breached: m mean 200 over 1 samples" in reason
    # while it was pending, the hold said so as plainly
    held = results[2].verdict.reasons
    assert any(r.startswith("m_critical: data missing for 10s") and "pending" in r
               for r in held), held
    # the hold rule (a missing hold rule already holds) is not carried: still pending
    assert results[4].checkpoint.alerts["m_hold"].phase is PENDING


@pytest.mark.parametrize("feed", [
    {10: 100.0, 20: None, 30: None, 40: None, 50: None, 60: None},  # never breached
    {10: 200.0, 20: 100.0, 30: None, 40: None, 50: None, 60: None},  # breach cleared
])
def test_missing_data_without_a_standing_breach_holds_and_never_rolls_back(
        kit: Any, tmp_path: Path, feed: dict[int, float | None]) -> None:
    results = ticks(kit, tmp_path, feed)
    assert all(r.verdict.kind is not VerdictKind.CRITICAL for r in results)
    assert results[-1].verdict.kind is VerdictKind.INCONCLUSIVE
    assert all(d.action is not Action.ROLLBACK for r in results for d in r.decisions)


KEEP_RULES = RULES.replace("for: 40s,\n         min_samples: 1, severity: critical",
                           "for: 0s, keep_firing_for: 60s,\n         min_samples: 1, "
                           "severity: critical")


def test_the_reason_of_a_rule_kept_firing_then_missing_says_it_was_clear_last(
        kit: Any, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    source = kit.ScriptedSource()
    rules = load_texts([("<rules>", KEEP_RULES.replace("consecutive: 1, cumulative: 3",
                                                  "consecutive: 5, cumulative: 5"))])
    engine = Engine(rules, journal, source)
    engine.start("svc", 0.0)
    try:
        for t, value in {10: 200.0, 20: 100.0, 30: None}.items():
            source.feed(float(t), value)
            result = engine.tick("svc", float(t))
    finally:
        journal.close()
    assert result.verdict is not None and result.verdict.kind is VerdictKind.CRITICAL
    (reason,) = [r for r in result.verdict.reasons if r.startswith("m_critical")]
    assert reason.startswith("m_critical: data missing (")
    assert "clear when last seen, kept firing for its keep_firing_for 60s" in reason
    assert reason.endswith("last breached 20s ago: m mean 200 over 1 samples "
                           "(breached when above 150)")
