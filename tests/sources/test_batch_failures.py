"""Batched fetches when Prometheus is slow or refuses the batched form, against a stub HTTP
server (a real Prometheus answers neither slowly nor with a refusal on demand)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.sources.conftest import Stub
from watchdog.config.schema import MetricSpec, Module
from watchdog.errors import SourceError, SourceUnavailable
from watchdog.model import Direction, Version
from watchdog.sources.prometheus import PrometheusSource

END = 1_700_000_000.0
QUERY = 'max(x{module="{module}",version="{version}"})'


def module(name: str) -> Module:
    return Module(name=name, interval=1.0, metrics={
        "x": MetricSpec(direction=Direction.HIGHER_IS_WORSE, query=QUERY)})


def matrix(labels: list[dict[str, str]]) -> str:
    points = [[END - 2, "1"], [END - 1, "2"], [END, "3"]]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": m, "values": points} for m in labels]}})


def fleet(names: list[str]) -> list[dict[str, Any]]:
    return [{"module": n, "version": v} for n in names for v in ("v1", "v2")]


def test_a_slow_batched_fetch_does_not_hold_the_tick(stub: Stub) -> None:
    stub.reply({"body": matrix(fleet(["a", "b"])), "delay": 4.0,
                "content_type": "application/json"})
    source = PrometheusSource(stub.url, recheck=0.0, retries=0, deadline_fraction=1.0)
    source.plan([module("a"), module("b")])
    try:
        began = time.monotonic()
        with pytest.raises(SourceUnavailable, match="deadline"):
            source.fetch(module("a"), END - 3, END)
        assert time.monotonic() - began < 3.5  # the deadline (1 s), not the answer (4 s)
        group = source._batches.groups()[0]
        assert group.pending is not None
        group.pending.result(timeout=20)  # the fetch went on, in the background
        store = source.fetch(module("b"), END - 3, END)  # the next tick reads its answer
        assert store.get(Version.V2, "x").v.tolist() == [1.0, 2.0, 3.0]
        assert len(stub.requests) == 1  # one request for both modules and versions
    finally:
        source.close()


def test_a_refused_batched_query_falls_back_to_per_module_queries(stub: Stub) -> None:
    refused = json.dumps({"status": "error", "errorType": "bad_data", "error": "too long"})
    stub.reply({"status": 400, "body": refused, "content_type": "application/json"},
               {"body": matrix([{}]), "content_type": "application/json"})
    source = PrometheusSource(stub.url, recheck=0.0, retries=0)
    source.plan([module("a"), module("b")])
    try:
        with pytest.raises(SourceError, match="rejected"):  # this tick: missing
            source.fetch(module("a"), END - 3, END)
        assert "too long" in str(source._batches.groups()[0].broken)
        store = source.fetch(module("a"), END - 3, END)  # then one query per version
        assert store.get(Version.V1, "x").v.tolist() == [1.0, 2.0, 3.0]
        sent = [r["body"] for r in stub.requests[1:]]
        assert len(sent) == 2 and all("module%3D%22a%22" in b for b in sent)
    finally:
        source.close()
