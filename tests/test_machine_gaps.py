"""Time while no evaluation ran never counts toward a stage's hold (issue 16, item 5).

``on_verdict(..., max_gap=G)``: when more than G seconds passed since the last evaluation
(the daemon was down, ticks were missed), the healthy run is banked up to that evaluation
and starts again at this one: the gap does not count. ``max_gap=None`` keeps the old
behaviour (the engine passes ``machine.max_gap(interval)``).

The property: whatever the verdicts and the gaps between them, the healthy time counted
toward a hold never exceeds the sum of the intervals between consecutive evaluations of
the stage that were each within ``max_gap`` and found it healthy at both ends (the
stage's start counts as one); so nothing advances before its hold was observed.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from watchdog.model import Action, Verdict, VerdictKind
from watchdog.rollout import machine
from watchdog.rollout.state import Checkpoint, Phase

MODULE = "checkout"
EPS = 1e-6
HEALTHY = Verdict(MODULE, 0.0, VerdictKind.HEALTHY, ())


def healthy(cp: Checkpoint, plan: Any, now: float, max_gap: float | None
            ) -> tuple[Checkpoint, list[Any]]:
    return machine.on_verdict(cp, HEALTHY, plan, now, max_gap=max_gap)


def test_a_restart_after_downtime_does_not_count_the_downtime(kit: Any) -> None:
    # the audit: killed 3 s into a 30 s hold, down 35 s, restarted: advanced at once,
    # "healthy for 38.8s". Now the 3 s seen before are kept, and 27 more must be seen.
    plan = kit.plan(stages=(10, 50, 100), hold=30.0)
    cp, _ = machine.start(MODULE, plan, 0.0)
    for t in (1.0, 2.0, 3.0):
        cp, decisions = healthy(cp, plan, t, 2.5)
        assert decisions == []
    cp, decisions = healthy(cp, plan, 38.0, 2.5)  # 35 s without an evaluation
    assert decisions == []
    assert cp.healthy_banked == 3.0 and cp.healthy_since == 38.0
    t = 38.0
    while not decisions:
        t += 1.0
        cp, decisions = healthy(cp, plan, t, 2.5)
    assert t == 65.0  # 3 s before the gap + 27 s after it
    (advance,) = decisions
    assert advance.action is Action.ADVANCE
    assert advance.reasons[0].startswith("healthy for 30s at 10%")


def test_without_max_gap_the_old_behaviour_is_kept(kit: Any) -> None:
    plan = kit.plan(stages=(10, 50, 100), hold=30.0)
    cp, _ = machine.start(MODULE, plan, 0.0)
    for t in (1.0, 2.0, 3.0):
        cp, _ = healthy(cp, plan, t, None)
    cp, decisions = healthy(cp, plan, 38.0, None)
    assert [d.action for d in decisions] == [Action.ADVANCE]


def test_a_gap_right_after_the_start_does_not_count(kit: Any) -> None:
    # killed before its first evaluation: the stage's start is the last time it was seen
    plan = kit.plan(stages=(10, 100), hold=30.0)
    cp, _ = machine.start(MODULE, plan, 0.0)
    cp, decisions = healthy(cp, plan, 40.0, 2.5)
    assert decisions == [] and cp.healthy_banked == 0.0 and cp.healthy_since == 40.0


def test_a_gap_during_missing_data_and_a_gap_of_exactly_max_gap(kit: Any) -> None:
    plan = kit.plan(stages=(10, 100), hold=30.0)
    cp, _ = machine.start(MODULE, plan, 0.0)
    cp, _ = healthy(cp, plan, 10.0, 10.0)  # exactly max_gap: counts
    assert cp.healthy_since == 0.0
    gone = Verdict(MODULE, 0.0, VerdictKind.INCONCLUSIVE, (), (), ("r: no data",))
    cp, _ = machine.on_verdict(cp, gone, plan, 20.0, max_gap=10.0)
    assert cp.healthy_banked == 10.0 and cp.healthy_since is None
    cp, _ = healthy(cp, plan, 100.0, 10.0)
    assert cp.healthy_banked == 10.0 and cp.healthy_since == 100.0


# -- the property ------------------------------------------------------------------------

KINDS = [VerdictKind.HEALTHY] * 4 + [VerdictKind.INCONCLUSIVE, VerdictKind.WARNING,
                                     VerdictKind.CRITICAL]
events = st.lists(st.tuples(st.floats(min_value=0.01, max_value=120.0),  # to the next tick
                            st.sampled_from(KINDS), st.booleans() | st.just(False)),
                  max_size=80)
HELD = re.compile(r"healthy for ([-+.0-9e]+)s")


def verdict(kind: VerdictKind) -> Verdict:
    if kind is VerdictKind.HEALTHY:
        return HEALTHY
    firing = ("r",) if kind in (VerdictKind.WARNING, VerdictKind.CRITICAL) else ()
    return Verdict(MODULE, 0.0, kind, (), firing, (f"r: {kind.value}",))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evs=events, max_gap=st.sampled_from([1.0, 5.0, 21.0, 60.0]),
       hold=st.sampled_from([5.0, 30.0, 120.0]))
@example(evs=[(1.0, VerdictKind.HEALTHY, False)] * 3 + [(35.0, VerdictKind.HEALTHY, False)],
         max_gap=2.5, hold=30.0)
def test_counted_healthy_time_never_exceeds_the_observed_healthy_intervals(
        kit: Any, evs: list[tuple[float, VerdictKind, bool]], max_gap: float,
        hold: float) -> None:
    plan = kit.plan(stages=(5, 25, 50, 100), hold=hold, consecutive=3, cumulative=5)
    cp, _ = machine.start(MODULE, plan, 0.0)
    now = 0.0
    observed = 0.0  # healthy seconds between evaluations within max_gap, this stage
    prev_ok = True  # the previous evaluation (or the stage's start) found it healthy
    for dt, kind, kill in evs:
        now += dt
        cp, decisions = machine.on_verdict(cp, verdict(kind), plan, now, kill_switch=kill,
                                           max_gap=max_gap)
        ok = kind is VerdictKind.HEALTHY and not kill
        if ok and prev_ok and dt <= max_gap:
            observed += dt
        prev_ok = ok
        for d in decisions:
            if d.action in (Action.ADVANCE, Action.PROMOTE):
                found = HELD.match(d.reasons[0])
                assert found is not None, d.reasons
                counted = float(found.group(1))
                assert counted <= observed + 1e-3, (counted, observed)  # printed with :g
                assert observed >= plan.hold_of(d.from_stage) - EPS
                observed, prev_ok = 0.0, True  # the next stage starts here
        if cp.phase is not Phase.PROGRESSING:
            break
        if cp.healthy_since is not None:
            assert cp.healthy_banked + now - cp.healthy_since <= observed + EPS


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evs=events, hold=st.sampled_from([5.0, 30.0, 120.0]))
def test_with_no_gap_above_max_gap_max_gap_changes_nothing(
        kit: Any, evs: list[tuple[float, VerdictKind, bool]], hold: float) -> None:
    plan = kit.plan(stages=(5, 25, 50, 100), hold=hold, consecutive=3, cumulative=5)
    a, _ = machine.start(MODULE, plan, 0.0)
    b = a
    now = 0.0
    for dt, kind, kill in evs:
        now += dt
        a, da = machine.on_verdict(a, verdict(kind), plan, now, kill_switch=kill)
        # (a gap of 120 s summed from floats may read 120.00000000000003: the limit is
        # 120 s plus a float's rounding, so no gap the events draw exceeds it)
        b, db = machine.on_verdict(b, verdict(kind), plan, now, kill_switch=kill,
                                   max_gap=120.0 + 1e-6)
        assert (a, da) == (b, db)
