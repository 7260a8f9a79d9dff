"""The ``prometheus`` source under a slow or hanging server (issue 16, item 3): the queries
of one tick run concurrently under one deadline (a fraction of the module's interval) and
what arrived in time is judged; a metric whose query missed it is missing for this tick.

The stand-in for Prometheus's query API is a real HTTP server on 127.0.0.1 (``server`` in
conftest.py); a real Prometheus checks that normal fetches are unchanged. Bounds are
generous (the module's interval): the daemon needs the fetch back within it; figures
belong in bench/.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from watchdog.config.schema import MetricSpec, Module
from watchdog.errors import ConfigError, SourceUnavailable
from watchdog.judge.series import SeriesStore
from watchdog.model import Direction, Version
from watchdog.sources.deadline import DeadlineExceeded
from watchdog.sources.prometheus import PrometheusSource
from watchdog.sources.scrape import ScrapeSource

V1, V2 = Version.V1, Version.V2
HANG = math.inf  # a delay: until the server closes
Within = Callable[[float, Callable[[], Any]], Any]


def prom_module(*names: str, interval: float = 10.0) -> Module:
    return Module(name="checkout", interval=interval, metrics={
        name: MetricSpec(direction=Direction.HIGHER_IS_WORSE,
                         query=name + '{version="{version}"}') for name in names})


def present(store: SeriesStore) -> set[tuple[Version, str]]:
    keys: list[tuple[Version, str]] = store.keys()  # a list, not a dict's view
    return {(v, m) for v, m in keys if len(store.get(v, m))}


# -- prometheus --------------------------------------------------------------------------

def test_ten_slow_queries_arrive_within_one_deadline(server: Any, within: Within) -> None:
    """Ten metrics answering in 2 s each: one after another that was 40 s a tick (both
    versions); under one 5 s deadline (half the 10 s interval) they all arrive."""
    names = [f"slow{i}" for i in range(10)]
    server.delays = dict.fromkeys(names, 2.0)
    end = time.time()
    with PrometheusSource(server.url) as source:
        store = within(10.0, lambda: source.fetch(prom_module(*names), end - 30, end))
        assert source.last_errors == {}
    assert present(store) == {(v, n) for v in (V1, V2) for n in names}
    assert server.max_inflight >= 2


def test_a_hanging_query_leaves_the_others_judged_and_warns_once(
        server: Any, caplog: pytest.LogCaptureFixture, within: Within) -> None:
    """One query hangs (before: 10 s timeout x 3 tries, per version): the nine fast ones
    are judged within the deadline; the hanging one is missing, a timeout, warned about
    once per episode."""
    caplog.set_level(logging.INFO, logger="watchdog")
    names = [f"fast{i}" for i in range(9)] + ["hang"]
    server.delays = {"hang": HANG}
    mod = prom_module(*names)
    end = time.time()
    # a 3 s timeout ends each hanging request before the next tick sends it again
    with PrometheusSource(server.url, timeout=3) as source:
        store = within(10.0, lambda: source.fetch(mod, end - 30, end))
        assert present(store) == {(v, n) for v in (V1, V2) for n in names[:-1]}
        assert set(source.last_errors) == {(V1, "hang"), (V2, "hang")}
        late = source.last_errors[(V1, "hang")]
        assert isinstance(late, DeadlineExceeded) and isinstance(late, SourceUnavailable)
        assert "deadline" in str(late)
        warned = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1 and "hang" in warned[0].getMessage()

        within(10.0, lambda: source.fetch(mod, end - 30, end))  # the same episode
        assert [r for r in caplog.records if r.levelno == logging.WARNING] == warned

        server.delays = {}  # it answers again: said once, then judged
        store = within(10.0, lambda: source.fetch(mod, end - 30, end))
        assert (V1, "hang") in present(store) and source.last_errors == {}
        assert "answer in time again" in caplog.text

        server.delays = {"hang": HANG}  # a new episode warns again
        within(10.0, lambda: source.fetch(mod, end - 30, end))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_every_query_hanging_is_a_timeout_within_the_deadline(server: Any, within: Within) -> None:
    names = [f"hang{i}" for i in range(10)]
    server.delays = dict.fromkeys(names, HANG)
    end = time.time()
    with PrometheusSource(server.url, timeout=60) as source, \
            pytest.raises(DeadlineExceeded, match="deadline"):
        within(10.0, lambda: source.fetch(prom_module(*names), end - 30, end))


def test_answers_slower_than_the_deadline_are_judged_at_the_next_tick(
        server: Any, within: Within) -> None:
    """A Prometheus slower than the deadline (1.5 s a query; a 2 s interval gives 1 s):
    nothing arrives in time, but what comes late is judged by the next tick (a tick old)
    rather than thrown away, which would leave every tick without data."""
    server.delays = {"slow": 1.5}
    mod = prom_module("slow", interval=2.0)
    end = time.time()
    with PrometheusSource(server.url) as source:
        with pytest.raises(DeadlineExceeded):
            within(2.0, lambda: source.fetch(mod, end - 30, end))
        time.sleep(1.0)  # the next tick, 2 s after the first
        store = within(2.0, lambda: source.fetch(mod, end - 28, end + 2))
    assert present(store) == {(V1, "slow"), (V2, "slow")}
    assert store.get(V1, "slow").t[-1] <= end  # the answer to the first tick's query


def test_a_query_still_running_is_not_sent_again(server: Any, within: Within) -> None:
    """While a query hangs, later ticks wait on it rather than pile up more of them."""
    server.delays = {"hang": HANG}
    mod = prom_module("hang", "fast", interval=2.0)
    end = time.time()
    with PrometheusSource(server.url, timeout=60) as source:
        for tick in range(3):
            store = within(4.0, lambda t=2.0 * tick: source.fetch(mod, end - 30 + t, end + t))
            assert present(store) == {(V1, "fast"), (V2, "fast")}
    assert server.requests == 2 + 3 * 2  # one per version for "hang", "fast" each tick


def test_retries_fit_inside_the_deadline(server: Any, within: Within) -> None:
    """Five retries with a 2 s backoff would sleep 34 s; they stop at the deadline."""
    server.statuses = {"down": 503}
    end = time.time()
    with PrometheusSource(server.url, retries=5, backoff=2.0) as source, \
            pytest.raises(SourceUnavailable, match="HTTP 503"):
        within(10.0, lambda: source.fetch(prom_module("down"), end - 30, end))
    assert server.requests >= 2 * 2  # retried, per version


def test_an_unavailable_query_does_not_hide_the_others(server: Any, within: Within) -> None:
    """Before, the first query that stayed unavailable after its retries aborted the
    whole fetch; now it is missing like a late one and the others are judged."""
    server.statuses = {"down": 503}
    end = time.time()
    with PrometheusSource(server.url, retries=1, backoff=0.01) as source:
        store = within(10.0, lambda: source.fetch(prom_module("down", "fast"), end - 30, end))
        assert present(store) == {(V1, "fast"), (V2, "fast")}
        assert "HTTP 503" in str(source.last_errors[(V1, "down")])
        assert not isinstance(source.last_errors[(V1, "down")], DeadlineExceeded)


def test_the_deadline_is_a_fraction_of_the_interval(server: Any, within: Within) -> None:
    """deadline_fraction 0.2 of a 10 s interval: 2 s; a 4 s query misses it."""
    server.delays = {"slow": 4.0}
    end = time.time()
    with PrometheusSource(server.url, deadline_fraction=0.2) as source:
        assert source.deadline(prom_module("x", interval=10)) == pytest.approx(2.0)
        assert source.deadline(prom_module("x", interval=1)) == 1.0  # at least 1 s
        store = within(4.0, lambda: source.fetch(prom_module("fast", "slow"), end - 30, end))
        assert present(store) == {(V1, "fast"), (V2, "fast")}
        assert isinstance(source.last_errors[(V2, "slow")], DeadlineExceeded)
    with PrometheusSource(server.url) as source:
        assert source.deadline(prom_module("x", interval=10)) == pytest.approx(5.0)
        assert source.deadline(prom_module("x", interval=60)) == pytest.approx(30.0)


def test_instant_queries_run_under_the_deadline_too(server: Any, within: Within) -> None:
    server.delays = {"hang": HANG}
    now = time.time()
    with PrometheusSource(server.url) as source:
        store = within(10.0, lambda: source.instant(prom_module("fast", "hang"), now))
    assert present(store) == {(V1, "fast"), (V2, "fast")}


def test_long_windows_get_a_deadline_per_request_round(server: Any, within: Within) -> None:
    """A baseline over a long window needs several requests per query (here 3 of 3
    points each, 1 s apiece): it gets the tick's deadline (2 s) per round, not one."""
    server.delays = {"slow": 1.0}
    end = 10_000.0
    with PrometheusSource(server.url, max_points=3) as source:
        store = within(20.0, lambda: source.fetch(prom_module("slow", interval=4.0),
                                                  end - 36, end, versions=[V1]))
    assert len(store.get(V1, "slow")) == 9 and source.last_errors == {}


@pytest.mark.parametrize("options", [{"deadline_fraction": 0}, {"deadline_fraction": 1.5},
                                     {"deadline_fraction": math.nan},
                                     {"deadline_fraction": -0.5}, {"concurrency": 0}])
def test_options_are_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        PrometheusSource("http://127.0.0.1:1", **options)
    if "deadline_fraction" in options:
        with pytest.raises(ValueError, match="deadline_fraction"):
            ScrapeSource({}, **options)


def test_a_bad_deadline_fraction_in_the_config_is_located(tmp_path: Path) -> None:
    from watchdog.daemon.build import build_source
    from watchdog.daemon.config import load_config

    config = tmp_path / "watchdog.yaml"
    config.write_text(f"db: {tmp_path / 'journal.db'}\n"
                      "source:\n"
                      "  plugin: prometheus\n"
                      "  options: {url: 'http://127.0.0.1:9', deadline_fraction: 2}\n"
                      f"actuators: [{{plugin: file, options: {{path: '{tmp_path}/f.json'}}}}]\n"
                      "modules: [checkout]\n")
    with pytest.raises(ConfigError) as caught:
        build_source(load_config(str(config)))
    [issue] = caught.value.issues
    # the option's own line (the plugin's options model), not the source: line
    assert issue.line == 4 and "source.options.deadline_fraction" in issue.message


SEL = '{module="{module}",version="{version}"}'
REAL_QUERIES = {
    "latency_p95_ms": "1000 * histogram_quantile(0.95, sum by (le) "
                      f"(rate(http_request_duration_seconds_bucket{SEL}[1m])))",
    "error_rate": f"sum(rate(http_requests_failed_total{SEL}[1m])) "
                  f"/ sum(rate(http_requests_total{SEL}[1m]))",
    "memory_rss_bytes": f"max(process_resident_memory_bytes{SEL})",
}


def test_against_real_prometheus_fetch_is_unchanged(prometheus_setup: Any,
                                                    caplog: pytest.LogCaptureFixture,
                                                    within: Within) -> None:
    """The concurrent fetch gives what the queries give one by one."""
    # rate() over the whole window: two scrapes before its start
    prometheus_setup.prometheus.wait_for(
        "count(count_over_time(http_requests_total[1m]) >= 9) == 2", timeout=30)
    caplog.set_level(logging.WARNING, logger="watchdog")
    end = float(math.floor(time.time()) - 2)  # whole seconds: the grid is the same
    mod = Module(name="checkout", interval=1.0, metrics={
        name: MetricSpec(direction=Direction.HIGHER_IS_WORSE, query=query)
        for name, query in REAL_QUERIES.items()})
    with PrometheusSource(prometheus_setup.prometheus.url) as source:
        store = within(10.0, lambda: source.fetch(mod, end - 5, end))
        assert source.last_errors == {}
        for version in (V1, V2):
            for name, spec in mod.metrics.items():
                assert spec.query is not None
                query = spec.query.replace("{module}", "checkout") \
                    .replace("{version}", version.value)
                [one] = source.query_range(query, end - 4, end, 1.0)
                series = store.get(version, name)
                assert series.t.tolist() == [t for t, _ in one.points]
                assert series.v.tolist() == [v for _, v in one.points]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- scrape ------------------------------------------------------------------------------

def test_a_fetch_that_missed_the_deadline_counts_as_a_timeout(server: Any, within: Within) -> None:
    """What the daemon's on_source_error does with a fetch that raised: the source error
    counter, kind ``timeout`` (created at 0 with the others)."""
    from prometheus_client import CollectorRegistry

    from watchdog.telemetry import Telemetry

    telemetry = Telemetry(CollectorRegistry())
    telemetry.declare(["prometheus"], [])
    server.delays = {"hang": HANG}
    end = time.time()
    with PrometheusSource(server.url) as source, pytest.raises(DeadlineExceeded) as caught:
        within(10.0, lambda: source.fetch(prom_module("hang"), end - 30, end))
    telemetry.source_error("prometheus", caught.value)

    def count(kind: str) -> float | None:
        return telemetry.registry.get_sample_value(
            "watchdog_source_errors_total", {"source": "prometheus", "kind": kind})

    assert count("timeout") == 1.0 and count("unavailable") == 0.0
