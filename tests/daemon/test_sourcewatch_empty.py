"""An empty result is said once it is empty at two fetches in a row (issue 19, Scale): a
Prometheus that has scraped once has no rate() yet, and at the start-up of a daemon with
1,000 batched modules every read of the four rate() templates was empty at the first
fetch: 8,000 WARNINGs "the query finds no series", then 8,000 "reads again" an interval
later. A query that stays empty (a misspelled metric) is still said, a fetch later, once.

SourceWatch is given the source's per-module errors as the prometheus source keeps them
(``source.errors[module]``); the telemetry is the real one on its own registry.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry

from watchdog.daemon.sourcewatch import SourceWatch
from watchdog.errors import BadQuery, EmptyResult
from watchdog.model import Version
from watchdog.telemetry import Telemetry

EMPTY = "the query finds no series"


def fetch(source: SimpleNamespace, module: str, *errors: tuple[str, Exception]) -> None:
    source.errors[module] = {(Version.V1, metric): err for metric, err in errors}


def test_one_empty_fetch_then_data_says_nothing(caplog: pytest.LogCaptureFixture) -> None:
    watch = SourceWatch(Telemetry(CollectorRegistry()), "prometheus")
    source = SimpleNamespace(errors={})
    caplog.set_level(logging.INFO, logger="watchdog.daemon")
    for module in ("m1", "m2"):
        fetch(source, module, ("error_rate", EmptyResult("no series")))
        state = watch.after_tick(module, 10.0, source, None)
        assert state["state"] == "partial"  # shown, counted, only not logged yet
    for module in ("m1", "m2"):
        fetch(source, module)
        watch.after_tick(module, 20.0, source, None)
    assert EMPTY not in caplog.text and "reads again" not in caplog.text, caplog.text


def test_an_empty_result_that_stays_is_said_once_then_its_end(
        caplog: pytest.LogCaptureFixture) -> None:
    watch = SourceWatch(Telemetry(CollectorRegistry()), "prometheus")
    source = SimpleNamespace(errors={})
    caplog.set_level(logging.INFO, logger="watchdog.daemon")
    for t in range(5):
        fetch(source, "m1", ("error_rate", EmptyResult("no series")))
        watch.after_tick("m1", 10.0 * t, source, None)
    assert caplog.text.count(EMPTY) == 1, caplog.text
    fetch(source, "m1")
    watch.after_tick("m1", 60.0, source, None)
    assert caplog.text.count("error_rate v1 reads again") == 1, caplog.text


def test_other_failures_are_still_said_at_once(caplog: pytest.LogCaptureFixture) -> None:
    watch = SourceWatch(Telemetry(CollectorRegistry()), "prometheus")
    source = SimpleNamespace(errors={})
    caplog.set_level(logging.INFO, logger="watchdog.daemon")
    fetch(source, "m1", ("error_rate", BadQuery("parse error")))
    watch.after_tick("m1", 10.0, source, None)
    assert caplog.text.count("bad_query") == 1, caplog.text
