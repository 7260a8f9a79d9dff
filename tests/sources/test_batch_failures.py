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


def test_a_cold_fetch_cut_off_by_its_deadline_goes_on_where_it_stopped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold window too large to fetch within one interval (a thousand modules' two hours
    on a slow Prometheus) is fetched in chunks; a chunk past the deadline ends this
    interval's fetch, and the next one continues from the last chunk stored. It once
    started over from the window's start every interval, and never finished."""
    from watchdog.sources import batch as batch_mod
    from watchdog.sources import deadline as dl
    from watchdog.sources.promapi import PromSeries
    from watchdog.sources.promql import batchable

    monkeypatch.setattr(batch_mod, "POINTS_PER_REQUEST", 40)  # 10 points a chunk below
    names = ["alpha1", "bravo2"]
    asked: list[tuple[float, float]] = []
    cut = {4}  # the fourth request misses its deadline

    def query_range(promql: str, start: float, end: float, step: float,
                    until: float | None) -> list[PromSeries]:
        asked.append((start, end))
        if len(asked) in cut:
            raise dl.DeadlineExceeded("prometheus: past the deadline")
        points = [(start + i * step, 1.0) for i in range(round((end - start) / step) + 1)]
        return [PromSeries({"module": n, "version": v}, points)
                for n in names if n in promql for v in ("v1", "v2")]  # those asked

    batches = batch_mod.Batches(query_range, recheck=0.0, now=lambda: END + 1000.0)
    [(_, batched)] = batchable(module(names[0]))
    batches.plan([(n, batched, 1.0) for n in names], origin=0.0)
    group = batches.groups()[0]
    try:
        with pytest.raises(SourceError, match="deadline"):
            batches.read(group, names[0], "v1", END - 100, END, until=None)
        assert len(asked) == 4  # three chunks stored, the fourth cut off
        # the next interval (one point later): on from the chunk that was cut off, to
        # the new point (71 points, 10 a chunk), not the 101 from the window's start
        found = batches.read(group, names[0], "v1", END - 99, END + 1, until=None)
        assert asked[4][0] == asked[3][0]
        assert len(asked) == 4 + 8
        assert [len(s.points) for s in found] == [100]
    finally:
        batches.close()
