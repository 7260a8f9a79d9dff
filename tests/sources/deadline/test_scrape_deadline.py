"""The ``scrape`` source with an endpoint that stalls (issue 16, item 3): both endpoints are
read at once under one deadline (a fraction of the module's interval); a version whose
endpoint missed it has no sample this tick. The endpoints are a real HTTP server on
127.0.0.1 (``server`` in conftest.py)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from watchdog.clock import FakeClock
from watchdog.config.schema import MetricSpec, Module, ScrapeSpec
from watchdog.judge.series import SeriesStore
from watchdog.model import Direction, Version
from watchdog.sources.deadline import DeadlineExceeded
from watchdog.sources.scrape import ScrapeSource

V1, V2 = Version.V1, Version.V2
HANG = math.inf  # a delay: until the server closes
Within = Callable[[float, Callable[[], Any]], Any]


def present(store: SeriesStore) -> set[tuple[Version, str]]:
    keys: list[tuple[Version, str]] = store.keys()  # a list, not a dict's view
    return {(v, m) for v, m in keys if len(store.get(v, m))}


GAUGE = {"memory": MetricSpec(direction=Direction.HIGHER_IS_WORSE,
                              scrape=ScrapeSpec(name="memory"))}


def scrape_module(interval: float = 10.0) -> Module:
    return Module(name="checkout", interval=interval, metrics=GAUGE)


def test_scrape_hanging_endpoint_leaves_the_other_judged(
        server: Any, caplog: pytest.LogCaptureFixture, within: Within) -> None:
    caplog.set_level(logging.WARNING, logger="watchdog")
    server.delays = {"v2": HANG}
    clock = FakeClock(1000.0)
    endpoints = {"checkout": {"v1": server.url + "/v1/metrics",
                              "v2": server.url + "/v2/metrics"}}
    with ScrapeSource(endpoints, timeout=60, clock=clock) as source:
        store = within(10.0, lambda: source.fetch(scrape_module(), 990, 1000))
        assert present(store) == {(V1, "memory")}
        assert store.get(V1, "memory").v.tolist() == [1.5e8]
        assert isinstance(source.last_errors[(V2, "*")], DeadlineExceeded)
        clock.advance(10)
        within(10.0, lambda: source.fetch(scrape_module(), 1000, 1010))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "v2" in warned[0]


def test_scrape_reads_both_endpoints_at_once(server: Any, within: Within) -> None:
    server.delays = {"v1": 2.0, "v2": 2.0}
    endpoints = {"checkout": {"v1": server.url + "/v1/metrics",
                              "v2": server.url + "/v2/metrics"}}
    with ScrapeSource(endpoints, clock=FakeClock(1000.0)) as source:
        store = within(10.0, lambda: source.fetch(scrape_module(), 990, 1000))
    assert present(store) == {(V1, "memory"), (V2, "memory")}
    assert server.max_inflight == 2


def test_scrape_deadline_fraction(server: Any, within: Within) -> None:
    server.delays = {"v2": 3.0}
    endpoints = {"checkout": {"v1": server.url + "/v1/metrics",
                              "v2": server.url + "/v2/metrics"}}
    with ScrapeSource(endpoints, clock=FakeClock(1000.0), deadline_fraction=0.1) as source:
        assert source.deadline(scrape_module(10.0)) == 1.0
        store = within(10.0, lambda: source.fetch(scrape_module(), 990, 1000))
        assert present(store) == {(V1, "memory")}
        assert isinstance(source.last_errors[(V2, "*")], DeadlineExceeded)


def test_scrape_a_read_slower_than_the_deadline_is_judged_at_the_next_tick(
        server: Any, within: Within) -> None:
    server.delays = {"v2": 1.5}
    clock = FakeClock(1000.0)
    endpoints = {"checkout": {"v1": server.url + "/v1/metrics",
                              "v2": server.url + "/v2/metrics"}}
    with ScrapeSource(endpoints, clock=clock) as source:
        store = within(2.0, lambda: source.fetch(scrape_module(2.0), 998, 1000))
        assert present(store) == {(V1, "memory")}
        time.sleep(1.0)
        clock.advance(2)
        store = within(2.0, lambda: source.fetch(scrape_module(2.0), 998, 1002))
    assert present(store) == {(V1, "memory"), (V2, "memory")}
    assert store.get(V2, "memory").t.tolist() == [1000.0]  # read for the first tick

