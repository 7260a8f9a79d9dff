"""The ``scrape`` source against the test app's real /metrics endpoints (v1 and v2 in their
own processes on loopback), with an injected clock so rates are exact."""

from __future__ import annotations

import time
from typing import Any

import pytest

from watchdog.clock import FakeClock
from watchdog.config.loader import load_default_rules
from watchdog.config.schema import MetricSpec, Module, ScrapeSpec
from watchdog.errors import EmptyResult, SourceError, SourceUnavailable
from watchdog.model import Direction, Version
from watchdog.sources.exposition import InvalidExposition
from watchdog.sources.scrape import ScrapeSource

V1, V2 = Version.V1, Version.V2
Values = dict[tuple[Version, str], list[float]]
SPECS = {
    "latency_p95_ms": ScrapeSpec(name="http_request_duration_seconds", type="histogram",
                                 quantile=0.95, scale=1000),
    "error_rate": ScrapeSpec(name="http_requests_failed_total", type="counter",
                             denominator="http_requests_total"),
    "throughput_rps": ScrapeSpec(name="http_requests_total", type="counter"),
    "parse_rate": ScrapeSpec(name="messages_parsed", type="counter",
                             denominator="messages_received"),
    "memory_rss_bytes": ScrapeSpec(name="process_resident_memory_bytes"),
}


def module(**specs: ScrapeSpec | None) -> Module:
    chosen = specs or SPECS
    return Module(name="checkout", metrics={
        name: MetricSpec(direction=Direction.HIGHER_IS_WORSE, scrape=spec,
                         query=None if spec else "up")
        for name, spec in chosen.items()})


class Pair:
    """v1 and v2 apps, a source scraping them, and the clock it reads."""

    def __init__(self, v1: Any, v2: Any, v2_url: str | None = None, **options: Any) -> None:
        self.v1, self.v2 = v1, v2
        self.clock = FakeClock(1000.0)
        self.source = ScrapeSource({"checkout": {"v1": v1.url, "v2": v2_url or v2.url}},
                                   clock=self.clock, **options)

    def tick(self, mod: Module | None = None, seconds: float = 10.0) -> Values:
        """Advance the clock, fetch, and return this tick's values per (version, metric)."""
        self.clock.advance(seconds)
        now = self.clock.now()
        store = self.source.fetch(mod or module(), now - seconds, now)
        out: Values = {}
        for version, metric in sorted(store.keys()):
            series = store.get(version, metric)
            assert series.t.tolist() == [now] * len(series)
            out[(version, metric)] = series.v.tolist()
        return out


@pytest.fixture(scope="module")
def shared_apps(start_module_app: Any) -> tuple[Any, Any]:
    """One v1/v2 pair for the tests that only add traffic: each test gets a fresh source,
    so only the deltas from its own first scrape count."""
    return start_module_app.pair("checkout")


@pytest.fixture
def pair(shared_apps: tuple[Any, Any]) -> Pair:
    v1, v2 = shared_apps
    v1.send("memory", value=100e6)
    v2.send("memory", value=150e6)
    return Pair(v1, v2)


@pytest.fixture
def own_pair(start_app: Any) -> Pair:
    """A pair of its own, for tests that stop or restart an app."""
    v1, v2 = start_app.pair("checkout")
    v2.send("memory", value=150e6)
    return Pair(v1, v2)


def test_gauges_come_at_once_rates_need_two_scrapes(pair: Pair) -> None:
    first = pair.tick()
    assert first == {(V1, "memory_rss_bytes"): [100e6], (V2, "memory_rss_bytes"): [150e6]}
    pair.v2.send("memory", value=160e6)
    second = pair.tick()
    assert second[(V2, "memory_rss_bytes")] == [160e6]
    assert second[(V1, "throughput_rps")] == [0.0]  # a rate, even when nothing happened
    assert (V1, "error_rate") not in second  # 0 / 0: no requests, no ratio
    assert (V1, "latency_p95_ms") not in second  # no observations, no quantile
    assert pair.source.last_errors == {}


def test_counter_rates_and_ratios(pair: Pair) -> None:
    pair.tick()
    pair.v1.traffic(50, failed=5)
    pair.v2.traffic(80, failed=20)
    pair.v1.send("messages", received=200, parsed=180)
    values = pair.tick(seconds=10)
    assert values[(V1, "throughput_rps")] == [5.0]
    assert values[(V2, "throughput_rps")] == [8.0]
    assert values[(V1, "error_rate")] == [0.1]
    assert values[(V2, "error_rate")] == [0.25]
    assert values[(V1, "parse_rate")] == [0.9]
    assert (V2, "parse_rate") not in values
    pair.v1.traffic(30)
    assert pair.tick(seconds=4)[(V1, "throughput_rps")] == [7.5]


def test_histogram_quantiles_come_from_bucket_deltas(pair: Pair) -> None:
    pair.tick()
    pair.v1.traffic(100, latency=0.03)  # all in (0.025, 0.05]
    assert pair.tick()[(V1, "latency_p95_ms")] == [pytest.approx(48.75)]
    pair.v1.traffic(100, latency=0.07)  # all in (0.05, 0.1]; cumulative p95 would be 95 ms
    assert pair.tick()[(V1, "latency_p95_ms")] == [pytest.approx(97.5)]
    pair.v1.traffic(90, latency=0.03)
    pair.v1.traffic(10, latency=0.2)  # rank 95 is the 5th of 10 in (0.1, 0.25]
    assert pair.tick()[(V1, "latency_p95_ms")] == [pytest.approx(175.0)]
    pair.v1.traffic(10, latency=5.0)  # beyond the last finite bucket: its bound, as PromQL
    assert pair.tick()[(V1, "latency_p95_ms")] == [pytest.approx(2500.0)]


def test_counter_reset_after_a_restart(own_pair: Pair) -> None:
    pair = own_pair
    pair.tick()
    pair.v1.traffic(100, failed=10, latency=0.03)
    assert pair.tick()[(V1, "throughput_rps")] == [10.0]
    pair.v1.restart()  # same port, every counter and bucket back to zero
    pair.v1.traffic(30, failed=6, latency=0.07)
    values = pair.tick()
    assert values[(V1, "throughput_rps")] == [3.0]
    assert values[(V1, "error_rate")] == [0.2]
    assert values[(V1, "latency_p95_ms")] == [pytest.approx(97.5)]


def test_windows_come_from_the_history_which_is_bounded(shared_apps: tuple[Any, Any]) -> None:
    pair = Pair(*shared_apps, keep=25)
    for _ in range(4):  # scrapes at 1010, 1020, 1030, 1040
        pair.tick()
    store = pair.source.fetch(module(), 1005, 1035)  # scrapes again at 1040
    assert store.get(V1, "memory_rss_bytes").t.tolist() == [1020, 1030]  # 1010 is too old
    assert store.get(V1, "throughput_rps").t.tolist() == [1020, 1030]
    whole = pair.source.fetch(module(), 0, 2000)
    assert whole.get(V2, "memory_rss_bytes").t.tolist() == [1020, 1030, 1040]


def test_one_endpoint_down_still_gives_the_other(own_pair: Pair) -> None:
    pair = own_pair
    pair.tick()
    pair.v2.stop()
    values = pair.tick()
    assert values[(V1, "memory_rss_bytes")] == [100e6]
    assert all(version is V1 for version, _ in values)
    assert isinstance(pair.source.last_errors[(V2, "*")], SourceUnavailable)
    assert pair.v2.url in str(pair.source.last_errors[(V2, "*")])
    assert pair.source.errors["checkout"] is pair.source.last_errors
    pair.v2.restart()
    assert pair.tick()[(V2, "memory_rss_bytes")] == [100e6]
    assert pair.source.last_errors == {}
    pair.v1.stop()
    pair.v2.stop()
    with pytest.raises(SourceUnavailable, match="every endpoint") as caught:
        pair.tick()
    assert pair.v1.url in str(caught.value) and pair.v2.url in str(caught.value)


def test_garbage_exposition_is_reported(start_app: Any, stub: Any) -> None:
    pair = Pair(start_app("checkout", "v1"), None, v2_url=stub.url + "/metrics")
    stub.reply({"body": "# HELP ok fine\nok_metric 1\nprocess_resident_memory_bytes abc\n"})
    values = pair.tick()
    assert values == {(V1, "memory_rss_bytes"): [100e6]}
    error = pair.source.last_errors[(V2, "*")]
    assert isinstance(error, InvalidExposition) and isinstance(error, SourceError)
    assert "line 3" in str(error) and "process_resident_memory_bytes abc" in str(error)
    assert stub.url in str(error)
    stub.reply({"body": "<html><body>Sign in</body></html>"})
    pair.tick()
    assert "line 1" in str(pair.source.last_errors[(V2, "*")])
    both = ScrapeSource({"checkout": {"v1": stub.url, "v2": stub.url}}, clock=pair.clock)
    with pytest.raises(InvalidExposition, match="every endpoint"):
        both.fetch(module(), 0, 2000)


def test_a_slow_endpoint_times_out(start_app: Any, stub: Any) -> None:
    stub.reply({"delay": 5.0})
    pair = Pair(start_app("checkout", "v1"), None, v2_url=stub.url, timeout=0.3)
    began = time.monotonic()
    assert pair.tick() == {(V1, "memory_rss_bytes"): [100e6]}
    assert time.monotonic() - began < 2
    assert "timed out after 0.3s" in str(pair.source.last_errors[(V2, "*")])


def test_metrics_without_scrape_spec_are_skipped_and_missing_ones_reported(pair: Pair) -> None:
    mod = module(memory_rss_bytes=SPECS["memory_rss_bytes"], query_only=None,
                 absent=ScrapeSpec(name="no_such_gauge"))
    values = pair.tick(mod)
    assert set(values) == {(V1, "memory_rss_bytes"), (V2, "memory_rss_bytes")}
    assert set(pair.source.last_errors) == {(V1, "absent"), (V2, "absent")}
    assert isinstance(pair.source.last_errors[(V1, "absent")], EmptyResult)
    with pytest.raises(EmptyResult, match=r"none of the metrics .* \(absent\)"):
        pair.tick(module(absent=ScrapeSpec(name="no_such_gauge")))


def test_labels_select_series_with_module_and_version_filled_in(pair: Pair) -> None:
    mine = ScrapeSpec(name="process_resident_memory_bytes",
                      labels={"module": "{module}", "version": "{version}"})
    other = ScrapeSpec(name="process_resident_memory_bytes", labels={"version": "v9"})
    values = pair.tick(module(mine=mine, other=other))
    assert values == {(V1, "mine"): [100e6], (V2, "mine"): [150e6]}
    assert "'version': 'v9'" in str(pair.source.last_errors[(V1, "other")])


def test_shipped_default_metrics_scrape(pair: Pair) -> None:
    shipped = load_default_rules().for_module("checkout")
    pair.tick(shipped)
    pair.v2.traffic(40, failed=2, latency=0.07)
    values = pair.tick(shipped)
    assert values[(V2, "latency_p95_ms")] == [pytest.approx(97.5)]
    assert values[(V2, "error_rate")] == [0.05]
    assert values[(V2, "throughput_rps")] == [4.0]
    assert values[(V2, "memory_rss_bytes")] == [150e6]


def test_configuration_errors() -> None:
    with pytest.raises(ValueError, match="v1 and v2"):
        ScrapeSource({"checkout": {"canary": "http://127.0.0.1:1/metrics"}})
    source = ScrapeSource({"checkout": {"v1": "http://127.0.0.1:1/metrics"}})
    with pytest.raises(SourceError, match="no endpoints for module 'billing'"):
        source.fetch(module().model_copy(update={"name": "billing"}), 0, 1)


def test_a_metric_whose_spec_changes_starts_over(pair: Pair) -> None:
    as_gauge = module(m=ScrapeSpec(name="http_requests_total"))
    as_counter = module(m=ScrapeSpec(name="http_requests_total", type="counter"))
    as_ratio = module(m=ScrapeSpec(name="http_requests_failed_total", type="counter",
                                   denominator="http_requests_total"))
    pair.tick(as_gauge)
    assert (V1, "m") not in pair.tick(as_counter)  # the gauge reading is no counter state
    pair.v1.traffic(20, failed=5)
    assert pair.tick(as_counter)[(V1, "m")] == [2.0]
    assert (V1, "m") not in pair.tick(as_ratio)  # no denominator in the previous reading
    pair.v1.traffic(20, failed=5)
    assert pair.tick(as_ratio)[(V1, "m")] == [0.25]
