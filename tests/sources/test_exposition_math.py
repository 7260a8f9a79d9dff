"""Exposition parsing and the scrape source's maths, without any server."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.sources import exposition as ex

INF = math.inf


def test_quantile_interpolates_within_the_bucket_like_histogram_quantile() -> None:
    buckets = {0.1: 10.0, 0.5: 60.0, 1.0: 100.0, INF: 100.0}
    assert ex.quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * (40 / 50))
    assert ex.quantile(0.05, buckets) == pytest.approx(0.05)  # first bucket starts at 0
    assert ex.quantile(0.95, buckets) == pytest.approx(0.5 + 0.5 * (35 / 40))


def test_quantile_edge_cases() -> None:
    assert ex.quantile(0.99, {0.1: 1.0, 1.0: 2.0, INF: 10.0}) == 1.0  # in +Inf: last bound
    assert ex.quantile(0.5, {0.1: 0.0, INF: 0.0}) is None  # no observations
    assert ex.quantile(0.5, {0.1: 1.0, 1.0: 2.0}) is None  # no +Inf bucket
    assert ex.quantile(0.5, {INF: 3.0}) is None  # one bucket
    assert ex.quantile(0.5, {-1.0: 4.0, 1.0: 4.0, INF: 4.0}) == -1.0  # negative first bound
    # non-monotonic counts (a scrape racing an observation) are repaired, not trusted
    assert ex.quantile(0.5, {0.1: 10.0, 0.2: 8.0, 0.3: 20.0, INF: 20.0}) == \
        ex.quantile(0.5, {0.1: 10.0, 0.2: 10.0, 0.3: 20.0, INF: 20.0})
    with pytest.raises(ValueError):
        ex.quantile(1.5, {0.1: 1.0, INF: 1.0})


@given(st.lists(st.integers(0, 50), min_size=2, max_size=8),
       st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_quantile_is_monotonic_and_inside_the_bounds(counts: list[int], q1: float,
                                                     q2: float) -> None:
    bounds = [0.1 * (i + 1) for i in range(len(counts) - 1)] + [INF]
    cumulative = [sum(counts[: i + 1]) for i in range(len(counts))]
    buckets = dict(zip(bounds, map(float, cumulative), strict=True))
    low, high = ex.quantile(min(q1, q2), buckets), ex.quantile(max(q1, q2), buckets)
    if cumulative[-1] == 0:
        assert low is None and high is None
        return
    assert low is not None and high is not None
    assert 0 <= low <= high <= bounds[-2] + 1e-12


def test_increase_handles_resets_and_new_series() -> None:
    a, b, c = (("le", "x"),), (("le", "y"),), (("le", "z"),)
    assert ex.increase({a: 10.0, b: 5.0}, {a: 15.0, b: 2.0, c: 7.0}) == 5.0 + 2.0


def test_bucket_increase_resets_a_whole_histogram_series() -> None:
    s = (("pod", "1"),)
    prev = {s: {0.1: 5.0, 1.0: 8.0, INF: 9.0}}
    assert ex.bucket_increase(prev, {s: {0.1: 6.0, 1.0: 10.0, INF: 12.0}}) == \
        {0.1: 1.0, 1.0: 2.0, INF: 3.0}
    # restarted: +Inf went 9 -> 4 while 0.1 went 5 -> 6 (fresh process, more fast requests)
    assert ex.bucket_increase(prev, {s: {0.1: 6.0, 1.0: 6.0, INF: 4.0}}) == \
        {0.1: 6.0, 1.0: 6.0, INF: 4.0}


def test_parse_reads_samples_and_matches_labels() -> None:
    text = ('# TYPE r counter\nr_total{version="v1",code="200"} 3\n'
            'r_total{version="v1",code="500"} 1\nr_total{version="v2",code="200"} 9\n'
            '# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.7\n'
            'h_count 2\ng 4\ng{x="1"} NaN\n')
    parsed = ex.parse(text)
    counters = ex.counters(parsed, "r", {"version": "v1"})
    assert counters is not None and sorted(counters.values()) == [1.0, 3.0]
    assert ex.counters(parsed, "r_total", {"code": "200"}) is not None
    assert ex.counters(parsed, "nope", {}) is None
    assert ex.histograms(parsed, "h", {}) == {(): {0.5: 1.0, INF: 2.0}}
    assert ex.gauge(parsed, "g", {}) == 4.0  # NaN is no value
    assert ex.gauge(parsed, "g", {"x": "1"}) is None


@pytest.mark.parametrize(("text", "where"), [
    ("ok 1\nbroken here\n", "line 2"),
    ("m{a=\"b\"} 1\nm{a=\"c\" 2\n", "line 2"),
    ("<!doctype html><html></html>\n", "line 1"),
])
def test_parse_errors_name_the_line(text: str, where: str) -> None:
    with pytest.raises(ex.InvalidExposition, match=where) as caught:
        ex.parse(text, where="scrape v2 http://x/metrics")
    assert "scrape v2 http://x/metrics" in str(caught.value)
    assert isinstance(caught.value.__cause__, ValueError)
