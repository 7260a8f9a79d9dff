"""The alert state machine: Prometheus semantics for ``for`` and ``keep_firing_for``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.config.loader import load_texts
from watchdog.engine import Engine
from watchdog.journal.store import Journal
from watchdog.judge.alerts import AlertPhase, AlertState, step

INACTIVE, PENDING, FIRING = AlertPhase.INACTIVE, AlertPhase.PENDING, AlertPhase.FIRING


def run(events: list[tuple[float, bool | None]], hold_for: float = 0.0,
        keep_firing_for: float = 0.0, state: AlertState | None = None) -> list[AlertState]:
    """Step through ``(now, breached)`` events; the state after each one."""
    states = []
    current = state or AlertState()
    for now, breached in events:
        current = step(current, breached, now, hold_for, keep_firing_for)
        states.append(current)
    return states


# -- for ---------------------------------------------------------------------------------


def test_a_breach_with_no_for_fires_at_once() -> None:
    (s,) = run([(50.0, True)])
    assert s.phase is FIRING
    assert s.active_at == 50.0
    assert s.fired_at == 50.0
    assert s.last_breach_at == 50.0


def test_first_breach_with_for_is_pending() -> None:
    (s,) = run([(50.0, True)], hold_for=30.0)
    assert s.phase is PENDING
    assert s.active_at == 50.0
    assert s.fired_at is None


def test_pending_fires_exactly_when_for_has_elapsed() -> None:
    states = run([(0.0, True), (10.0, True), (20.0, True), (29.999, True), (30.0, True)],
                 hold_for=30.0)
    assert [s.phase for s in states] == [PENDING, PENDING, PENDING, PENDING, FIRING]
    assert states[-1].active_at == 0.0
    assert states[-1].fired_at == 30.0


def test_ticks_a_few_ms_off_the_grid_still_fire_when_for_has_elapsed() -> None:
    # a live daemon's ticks 1 s apart, each waking a few ms late: for 2 s is met at the
    # third tick, not a fourth one (the allowance is a tenth of the interval)
    events = [(100.004, True), (101.001, True), (101.999, True)]
    states = []
    current = AlertState()
    for now, breached in events:
        current = step(current, breached, now, 2.0, 0.0, jitter=0.1)
        states.append(current)
    assert [s.phase for s in states] == [PENDING, PENDING, FIRING]
    # without it, the same ticks wait one more interval
    assert run(events, hold_for=2.0)[-1].phase is PENDING


def test_the_jitter_allowance_never_shortens_for_by_a_whole_interval() -> None:
    current = AlertState()
    for now in (0.0, 1.0):
        current = step(current, True, now, 1.5, 0.0, jitter=0.1)
    assert current.phase is PENDING
    current = step(current, True, 2.0, 1.5, 0.0, jitter=0.1)
    assert current.phase is FIRING


def test_keep_firing_for_with_jitter_keeps_exactly_its_evaluations() -> None:
    current = step(AlertState(), True, 0.0, 0.0, 0.0)
    for now in (1.003, 1.999):
        current = step(current, False, now, 0.0, 1.0, jitter=0.1)
    # clear since 1.003; 0.996 s later is "keep_firing_for (1 s) has passed" within jitter
    assert current.phase is INACTIVE


def test_for_clock_starting_at_time_zero_still_fires() -> None:
    # active_at == 0.0 is a real time, not "unset"
    states = run([(0.0, True), (20.0, True)], hold_for=20.0)
    assert states[-1].phase is FIRING
    assert states[-1].fired_at == 20.0


def test_a_clear_evaluation_while_pending_resets_the_for_clock() -> None:
    states = run([(0.0, True), (20.0, False), (30.0, True), (50.0, True), (60.0, True)],
                 hold_for=30.0)
    assert [s.phase for s in states] == [PENDING, INACTIVE, PENDING, PENDING, FIRING]
    assert states[2].active_at == 30.0
    assert states[-1].fired_at == 60.0


def test_pending_cleared_never_fired_so_it_is_not_resolved() -> None:
    states = run([(0.0, True), (10.0, False)], hold_for=30.0, keep_firing_for=300.0)
    # keep_firing_for protects firing alerts only
    assert states[-1] == AlertState()


def test_firing_stays_firing_while_breached() -> None:
    states = run([(0.0, True), (10.0, True), (20.0, True), (30.0, True)], hold_for=10.0)
    assert [s.phase for s in states] == [PENDING, FIRING, FIRING, FIRING]
    assert states[-1].fired_at == 10.0
    assert states[-1].active_at == 0.0
    assert states[-1].last_breach_at == 30.0


# -- keep_firing_for ---------------------------------------------------------------------


def test_without_keep_firing_for_a_clear_evaluation_resolves() -> None:
    states = run([(0.0, True), (10.0, False)])
    assert states[-1].phase is INACTIVE
    assert states[-1].resolved_at == 10.0
    assert states[-1].active_at is None
    assert states[-1].fired_at is None


def test_keep_firing_for_counts_from_the_first_clear_evaluation() -> None:
    # Prometheus stamps KeepFiringSince at the first evaluation that finds the condition
    # clear (t=10 here), not at the last breach (t=0).
    states = run([(0.0, True), (10.0, False), (19.0, False), (20.0, False)],
                 keep_firing_for=10.0)
    assert [s.phase for s in states] == [FIRING, FIRING, FIRING, INACTIVE]
    assert states[1].keep_firing_since == 10.0
    assert states[2].keep_firing_since == 10.0
    assert states[-1].resolved_at == 20.0


def test_keep_firing_for_equal_to_the_interval_keeps_one_more_evaluation() -> None:
    states = run([(0.0, True), (10.0, False), (20.0, False)], keep_firing_for=10.0)
    assert [s.phase for s in states] == [FIRING, FIRING, INACTIVE]


def test_a_breach_during_keep_firing_restarts_its_clock() -> None:
    states = run([(0.0, True), (10.0, False), (25.0, True), (30.0, False), (45.0, False),
                  (50.0, False)], keep_firing_for=20.0)
    assert [s.phase for s in states] == [FIRING, FIRING, FIRING, FIRING, FIRING, INACTIVE]
    assert states[2].keep_firing_since is None
    assert states[3].keep_firing_since == 30.0
    assert states[-1].resolved_at == 50.0
    # the alert stayed one alert throughout
    assert {s.active_at for s in states[:-1]} == {0.0}
    assert {s.fired_at for s in states[:-1]} == {0.0}


def test_resolved_alert_that_breaches_again_starts_a_new_pending_period() -> None:
    states = run([(0.0, True), (10.0, True), (20.0, False), (30.0, True), (40.0, True)],
                 hold_for=10.0)
    assert [s.phase for s in states] == [PENDING, FIRING, INACTIVE, PENDING, FIRING]
    assert states[3].active_at == 30.0
    assert states[3].resolved_at == 20.0  # history of the last resolution is kept
    assert states[4].fired_at == 40.0


# -- inconclusive (None) -----------------------------------------------------------------


@pytest.mark.parametrize("start", [
    AlertState(),
    AlertState(PENDING, active_at=0.0, last_breach_at=0.0),
    AlertState(FIRING, active_at=0.0, fired_at=0.0, last_breach_at=5.0),
    AlertState(FIRING, active_at=0.0, fired_at=0.0, last_breach_at=5.0, keep_firing_since=8.0),
    AlertState(resolved_at=3.0),
])
def test_inconclusive_changes_nothing(start: AlertState) -> None:
    assert step(start, None, 1e6, 30.0, 60.0) == start


def test_inconclusive_neither_starts_nor_completes_the_for_period() -> None:
    states = run([(0.0, None), (10.0, True), (20.0, None), (30.0, None), (40.0, True)],
                 hold_for=30.0)
    assert [s.phase for s in states] == [INACTIVE, PENDING, PENDING, PENDING, FIRING]
    assert states[-1].active_at == 10.0
    assert states[-1].fired_at == 40.0


def test_inconclusive_does_not_count_as_clear_for_keep_firing_for() -> None:
    # missing data between the breach and the first clear evaluation does not start the
    # keep-firing clock; nor does it resolve a firing alert
    states = run([(0.0, True), (10.0, None), (100.0, None), (110.0, False), (115.0, None),
                  (130.0, False)], keep_firing_for=20.0)
    assert [s.phase for s in states] == [FIRING, FIRING, FIRING, FIRING, FIRING, INACTIVE]
    assert states[3].keep_firing_since == 110.0
    assert states[-1].resolved_at == 130.0


# -- serialisation -----------------------------------------------------------------------

times = st.one_of(st.none(), st.floats(min_value=-1e9, max_value=1e9, allow_nan=False))


@given(st.builds(AlertState, st.sampled_from(list(AlertPhase)), times, times, times, times,
                 times))
def test_to_dict_round_trips(state: AlertState) -> None:
    assert AlertState.from_dict(state.to_dict()) == state


def test_from_dict_of_an_older_record_without_keep_firing_since() -> None:
    old = {"phase": "firing", "active_at": 1.0, "fired_at": 2.0, "last_breach_at": 3.0,
           "resolved_at": None}
    assert AlertState.from_dict(old) == AlertState(FIRING, 1.0, 2.0, 3.0, None, None)


# -- against a reference model of Prometheus' rules/alerting.go ------------------------


def prometheus_model(events: list[tuple[float, bool | None]], hold_for: float,
                     keep_firing_for: float) -> list[str]:
    """Phases after each evaluation; an inconclusive evaluation is skipped altogether."""
    phase, active_at, keep_since = "inactive", 0.0, None
    phases = []
    for now, breached in events:
        if breached is True:
            if phase == "inactive":
                phase, active_at = "pending", now
            keep_since = None
            if phase == "pending" and now - active_at >= hold_for:
                phase = "firing"
        elif breached is False:
            if phase == "pending":
                phase = "inactive"
            elif phase == "firing":
                keep = False
                if keep_firing_for > 0:
                    if keep_since is None:
                        keep_since = now
                    keep = now - keep_since < keep_firing_for
                if not keep:
                    phase, keep_since = "inactive", None
        phases.append(phase)
    return phases


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(min_value=1, max_value=30),
                             st.sampled_from([True, False, None])), max_size=40),
    hold_for=st.sampled_from([0.0, 10.0, 20.0, 45.0]),
    keep_firing_for=st.sampled_from([0.0, 10.0, 25.0, 60.0]),
    start=st.integers(min_value=-100, max_value=100),
)
def test_matches_prometheus_semantics(steps: list[tuple[int, bool | None]], hold_for: float,
                                      keep_firing_for: float, start: int) -> None:
    events: list[tuple[float, bool | None]] = []
    now = float(start)
    for dt, breached in steps:
        now += dt
        events.append((now, breached))
    states = run(events, hold_for, keep_firing_for)
    assert [s.phase.value for s in states] == prometheus_model(events, hold_for,
                                                               keep_firing_for)
    for (now, breached), s in zip(events, states, strict=True):
        if s.phase is FIRING:
            assert s.active_at is not None and s.fired_at is not None
            assert s.fired_at - s.active_at >= hold_for
            assert s.active_at <= s.fired_at <= now
        if s.phase is PENDING and breached is not None:
            assert s.active_at is not None and now - s.active_at < hold_for


# -- through the judge and the engine ---------------------------------------------------

KEEP_RULES = """
modules:
  - name: svc
    interval: 10s
    metrics:
      m: {direction: higher_is_worse}
    rules:
      - {name: m_high, kind: absolute, metric: m, above: 100, window: 5s, for: 20s,
         keep_firing_for: 30s, min_samples: 1, severity: warning, action: hold}
    plan:
      stages: [10, 100]
      hold: 1h
"""


def test_for_and_keep_firing_for_shape_the_engines_verdicts(kit: Any, tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.db")
    source = kit.ScriptedSource()
    engine = Engine(load_texts([("<keep rules>", KEEP_RULES)]), journal, source)
    engine.start("svc", 0.0)
    # breached 10..40, clear from 50; one tick of missing data at 60
    feed = {10: 150.0, 20: 150.0, 30: 150.0, 40: 150.0, 50: 50.0, 60: None, 70: 50.0,
            80: 50.0, 90: 50.0}
    seen = {}
    try:
        for t, value in feed.items():
            source.feed(float(t), value)
            result = engine.tick("svc", float(t))
            assert result.verdict is not None
            seen[t] = (result.verdict.kind.value, result.checkpoint.alerts["m_high"].phase.value)
        cp = journal.checkpoint("svc")
        assert cp is not None and cp.alerts == result.checkpoint.alerts  # journaled each tick
    finally:
        journal.close()
    assert seen == {
        10: ("healthy", "pending"), 20: ("healthy", "pending"),
        30: ("warning", "firing"),   # `for` 20s after the first breach at 10
        40: ("warning", "firing"),
        50: ("warning", "firing"),   # clear: keep firing for 30s from here
        60: ("warning", "firing"),   # no data: changes nothing
        70: ("warning", "firing"),
        80: ("healthy", "inactive"),  # 30s after the first clear evaluation
        90: ("healthy", "inactive"),
    }


# A bridge (the level-episode hold, judge/levelhold.py): a pending alert stays pending
# through clear evaluations soon after its last breach, and fires only on a breach.


def bridged(events: list[tuple[float, bool | None]], hold_for: float,
            bridge: float) -> list[AlertState]:
    states, current = [], AlertState()
    for now, breached in events:
        current = step(current, breached, now, hold_for, 0.0, 0.0, 0.0, bridge)
        states.append(current)
    return states


def test_a_bridge_keeps_a_flickering_breach_pending_and_fires_it_on_a_breach() -> None:
    events = [(0.0, True), (10.0, False), (20.0, True), (30.0, False), (40.0, True),
              (50.0, False), (60.0, True)]
    states = bridged(events, hold_for=60.0, bridge=20.0)
    assert [s.phase for s in states[:-1]] == [PENDING] * 6
    assert all(s.active_at == 0.0 for s in states)  # one pending episode, never restarted
    assert states[-1].phase is FIRING and states[-1].fired_at == 60.0
    # without the bridge the first clear evaluation resets it, and it never fires
    assert [s.phase for s in run(events, hold_for=60.0)][-1] is PENDING
    assert run(events, hold_for=60.0)[-1].active_at == 60.0


def test_a_clear_evaluation_never_fires_a_bridged_alert() -> None:
    states = bridged([(0.0, True), (50.0, True), (70.0, False)], hold_for=60.0, bridge=30.0)
    assert [s.phase for s in states] == [PENDING, PENDING, PENDING]


def test_a_clear_run_longer_than_the_bridge_resets_the_alert() -> None:
    states = bridged([(0.0, True), (10.0, False), (20.0, False), (31.0, False), (40.0, True)],
                     hold_for=60.0, bridge=20.0)
    assert [s.phase for s in states] == [PENDING, PENDING, PENDING, INACTIVE, PENDING]
    assert states[-1].active_at == 40.0


def test_a_bridge_changes_nothing_once_firing() -> None:
    states = bridged([(0.0, True), (10.0, False)], hold_for=0.0, bridge=60.0)
    assert [s.phase for s in states] == [FIRING, INACTIVE]
