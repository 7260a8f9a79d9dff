"""Stored V1 baselines: capture statistics, empty windows, expiry, and which baseline the
journal (and the engine) treats as active: pinned first, else the newest unexpired."""

from __future__ import annotations

import copy
import math
import pickle
import statistics
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.baseline import Baseline, EmptyBaseline, capture
from watchdog.engine import Engine
from watchdog.errors import JournalError
from watchdog.journal.store import Journal

MODULE = "checkout"


def points(values: list[float], start: float = 0.0, step: float = 10.0
           ) -> list[tuple[float, float]]:
    return [(start + i * step, v) for i, v in enumerate(values)]


def make(metric: str = "latency", captured_at: float = 0.0, value: float = 100.0,
         expires_at: float | None = None, module: str = MODULE) -> Baseline:
    return capture(module, metric, points([value, value + 2, value + 4]), 0.0, 100.0,
                   "test", captured_at=captured_at, expires_at=expires_at)


# -- capture -----------------------------------------------------------------------------


def test_capture_summarises_the_window_with_its_provenance() -> None:
    values = [120.0, 100.0, 140.0, 110.0, 130.0]
    b = capture(MODULE, "latency", points(values, start=-50.0), -50.0, 0.0, "prometheus",
                captured_at=5.0, expires_at=86_400.0)
    assert (b.module, b.metric, b.source) == (MODULE, "latency", "prometheus")
    assert (b.window_from, b.window_to, b.captured_at, b.expires_at) == (-50.0, 0.0, 5.0,
                                                                         86_400.0)
    assert b.count == 5
    assert b.mean == pytest.approx(statistics.mean(values))
    assert b.stddev == pytest.approx(statistics.stdev(values))
    assert b.p50 == pytest.approx(statistics.median(values))
    assert (b.min, b.max) == (100.0, 140.0)
    assert b.p90 == pytest.approx(136.0)  # linear interpolation between 130 and 140
    assert b.samples == tuple(points(values, start=-50.0))
    assert not b.pinned and b.id is None
    assert list(b.values()) == values


def test_capture_window_is_half_open() -> None:
    pts = [(-10.0, 1.0), (0.0, 2.0), (50.0, 3.0), (100.0, 4.0), (110.0, 5.0)]
    b = capture(MODULE, "m", pts, 0.0, 100.0, "test", captured_at=100.0)
    assert b.samples == ((0.0, 2.0), (50.0, 3.0))
    assert b.count == 2


def test_capture_sorts_samples_by_time() -> None:
    b = capture(MODULE, "m", [(30.0, 3.0), (10.0, 1.0), (20.0, 2.0)], 0.0, 100.0, "t", 0.0)
    assert b.samples == ((10.0, 1.0), (20.0, 2.0), (30.0, 3.0))


def test_a_single_sample_has_no_spread() -> None:
    b = capture(MODULE, "m", [(5.0, 42.0)], 0.0, 10.0, "test", captured_at=10.0)
    assert (b.count, b.mean, b.stddev, b.p50, b.p99, b.min, b.max) == (1, 42.0, 0.0, 42.0,
                                                                       42.0, 42.0, 42.0)


def test_an_empty_window_raises_empty_baseline() -> None:
    with pytest.raises(EmptyBaseline, match=r"latency.*checkout.*\[t=100s, t=200s\)"):
        capture(MODULE, "latency", points([1.0, 2.0]), 100.0, 200.0, "test", 0.0)
    with pytest.raises(EmptyBaseline):
        capture(MODULE, "latency", [], 0.0, 100.0, "test", 0.0)


def test_non_finite_values_are_not_part_of_a_baseline() -> None:
    # a source answers NaN for 0/0 (no requests in a scrape): that is no sample at all
    pts = [(0.0, 10.0), (10.0, math.nan), (20.0, 20.0), (30.0, math.inf)]
    b = capture(MODULE, "error_rate", pts, 0.0, 100.0, "test", captured_at=100.0)
    assert b.count == 2
    assert (b.mean, b.min, b.max) == (15.0, 10.0, 20.0)
    assert all(math.isfinite(x) for x in (b.stddev, b.p50, b.p90, b.p95, b.p99))
    with pytest.raises(EmptyBaseline):
        capture(MODULE, "error_rate", [(0.0, math.nan)], 0.0, 100.0, "test", 100.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1,
                max_size=60))
def test_capture_statistics_match_numpy(values: list[float]) -> None:
    b = capture(MODULE, "m", points(values), 0.0, 1e9, "test", 0.0)
    arr = np.array(values)
    assert b.count == len(values)
    assert b.mean == pytest.approx(float(arr.mean()), abs=1e-6)
    assert b.stddev == pytest.approx(float(arr.std(ddof=1)) if len(values) > 1 else 0.0,
                                     abs=1e-6)
    assert b.min <= b.p50 <= b.p90 <= b.p95 <= b.p99 <= b.max
    assert (b.min, b.max) == (min(values), max(values))
    for q, got in ((50, b.p50), (90, b.p90), (95, b.p95), (99, b.p99)):
        assert got == pytest.approx(float(np.percentile(arr, q)), abs=1e-6)


def test_stat_picks_the_figure_matching_an_aggregate() -> None:
    b = capture(MODULE, "m", points([float(v) for v in range(1, 101)]), 0.0, 1e9, "t", 0.0)
    assert b.stat("mean") == b.mean == 50.5
    assert b.stat("median") == b.stat("p50") == b.p50
    assert (b.stat("p90"), b.stat("p95"), b.stat("p99")) == (b.p90, b.p95, b.p99)
    assert (b.stat("min"), b.stat("max")) == (1.0, 100.0)


def test_expiry() -> None:
    assert not make(expires_at=None).expired(1e12)
    b = make(expires_at=500.0)
    assert not b.expired(499.9)
    assert b.expired(500.0)
    assert b.expired(501.0)


# -- in the journal ----------------------------------------------------------------------


def test_saved_baseline_round_trips(journal: Journal) -> None:
    b = capture(MODULE, "latency", points([1.5, 2.5, 9.0]), 0.0, 100.0, "prometheus",
                captured_at=7.0, expires_at=1000.0)
    saved = journal.save_baseline(b)
    assert saved.id is not None
    assert saved == replace(b, id=saved.id)
    assert journal.baseline(saved.id) == saved
    assert journal.baselines(module=MODULE, metric="latency") == [saved]
    assert journal.baselines(module="other") == []


def test_active_is_the_newest_unexpired_per_metric(journal: Journal) -> None:
    old = journal.save_baseline(make("latency", captured_at=10.0, value=100.0))
    new = journal.save_baseline(make("latency", captured_at=20.0, value=200.0))
    errors = journal.save_baseline(make("errors", captured_at=5.0, value=0.01))
    journal.save_baseline(make("latency", captured_at=30.0, module="search"))
    active = journal.active_baselines(MODULE, now=100.0)
    assert active == {"latency": new, "errors": errors}
    assert old.id != new.id


def test_an_expired_baseline_gives_way_to_an_older_unexpired_one(journal: Journal) -> None:
    old = journal.save_baseline(make("latency", captured_at=10.0))
    new = journal.save_baseline(make("latency", captured_at=20.0, expires_at=100.0))
    assert journal.active_baselines(MODULE, 99.0)["latency"] == new
    assert journal.active_baselines(MODULE, 100.0)["latency"] == old


def test_no_baseline_when_all_have_expired(journal: Journal) -> None:
    journal.save_baseline(make("latency", captured_at=10.0, expires_at=50.0))
    assert journal.active_baselines(MODULE, 50.0) == {}


def test_a_pinned_baseline_wins_over_newer_ones_even_expired(journal: Journal) -> None:
    old = journal.save_baseline(make("latency", captured_at=10.0, expires_at=50.0))
    journal.save_baseline(make("latency", captured_at=20.0))
    assert old.id is not None
    pinned = journal.pin_baseline(old.id)
    assert pinned.pinned and pinned.id == old.id
    journal.save_baseline(make("latency", captured_at=30.0))
    assert journal.active_baselines(MODULE, 1000.0)["latency"] == pinned


def test_pinning_unpins_the_others_of_the_same_metric_only(journal: Journal) -> None:
    a = journal.save_baseline(make("latency", captured_at=10.0))
    b = journal.save_baseline(make("latency", captured_at=20.0))
    e = journal.save_baseline(make("errors", captured_at=10.0))
    assert a.id is not None and b.id is not None and e.id is not None
    journal.pin_baseline(e.id)
    journal.pin_baseline(a.id)
    journal.pin_baseline(b.id)
    pinned = {x.id for x in journal.baselines(module=MODULE) if x.pinned}
    assert pinned == {b.id, e.id}


def test_pinning_an_unknown_baseline_is_an_error(journal: Journal) -> None:
    with pytest.raises(JournalError, match="no baseline with id 99"):
        journal.pin_baseline(99)


def test_fingerprint_changes_when_baselines_are_added_or_pinned(journal: Journal) -> None:
    seen = {journal.baseline_fingerprint(MODULE)}
    a = journal.save_baseline(make("latency", captured_at=10.0))
    seen.add(journal.baseline_fingerprint(MODULE))
    b = journal.save_baseline(make("latency", captured_at=20.0))
    seen.add(journal.baseline_fingerprint(MODULE))
    assert a.id is not None and b.id is not None
    journal.pin_baseline(a.id)
    seen.add(journal.baseline_fingerprint(MODULE))
    journal.pin_baseline(b.id)
    seen.add(journal.baseline_fingerprint(MODULE))
    assert len(seen) == 5
    before = journal.baseline_fingerprint(MODULE)
    journal.save_baseline(make("latency", module="search"))
    assert journal.baseline_fingerprint(MODULE) == before  # other modules do not count


# -- the engine's view of the active baselines ------------------------------------------


def engine(kit: Any, journal: Journal) -> Engine:
    return Engine(kit.engine_rules(), journal, kit.ScriptedSource())


def test_engine_sees_a_newly_saved_or_pinned_baseline(kit: Any, journal: Journal) -> None:
    e = engine(kit, journal)
    assert e.baselines("svc", 0.0) == {}
    first = journal.save_baseline(make("m", captured_at=10.0, module="svc"))
    assert e.baselines("svc", 20.0) == {"m": first}
    second = journal.save_baseline(make("m", captured_at=20.0, module="svc"))
    assert e.baselines("svc", 30.0) == {"m": second}
    assert first.id is not None
    journal.pin_baseline(first.id)
    assert e.baselines("svc", 40.0)["m"].id == first.id


def test_engine_stops_using_a_baseline_once_it_expires(kit: Any, journal: Journal) -> None:
    e = engine(kit, journal)
    old = journal.save_baseline(make("m", captured_at=10.0, module="svc"))
    new = journal.save_baseline(make("m", captured_at=20.0, module="svc", expires_at=100.0))
    assert e.baselines("svc", 50.0) == {"m": new}
    assert e.baselines("svc", 100.0) == {"m": old}


def test_a_baseline_hashes_and_compares_by_its_fields_and_shares_its_values() -> None:
    # the hash is made once (the judge's caches are keyed by the baseline every tick) and
    # is the one the dataclass would make; values() is one read-only array
    b = capture("checkout", "latency", [(float(t), 100.0 + t % 7) for t in range(60)],
                0.0, 60.0, "test", captured_at=60.0)
    same = replace(b)
    other = replace(b, samples=(*b.samples[:-1], (59.0, 1e6)))
    fields_hash = hash((b.module, b.metric, b.window_from, b.window_to, b.source,
                        b.captured_at, b.count, b.mean, b.stddev, b.p50, b.p90, b.p95,
                        b.p99, b.min, b.max, b.samples, b.pinned, b.expires_at, b.id))
    assert hash(b) == hash(same) == fields_hash and b == same
    assert other != b and hash(other) != hash(b)
    assert {b: 1}[same] == 1
    values = b.values()
    assert values is b.values() and values.tolist() == [v for _, v in b.samples]
    with pytest.raises(ValueError):
        values[0] = 0.0
    copied = pickle.loads(pickle.dumps(b))
    assert copied == b and "_hash" not in copied.__dict__ and hash(copied) == hash(b)
    assert copy.deepcopy(b) == b and copy.copy(b).values().tolist() == values.tolist()
