"""The ``prometheus`` source against a real Prometheus (Debian's binary) scraping the test
app on loopback, and against a stub HTTP server for failures Prometheus will not produce
on demand (500s, slowness, auth)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx
import numpy as np
import pytest

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import MetricSpec, Module
from watchdog.errors import BadQuery, EmptyResult, SourceError, SourceUnavailable
from watchdog.model import Direction, Version
from watchdog.sources.prometheus import PrometheusSource, render

SEL = '{module="{module}",version="{version}"}'
QUERIES = {
    "latency_p95_ms": "1000 * histogram_quantile(0.95, sum by (le) "
                      f"(rate(http_request_duration_seconds_bucket{SEL}[1m])))",
    "error_rate": f"sum(rate(http_requests_failed_total{SEL}[1m])) "
                  f"/ sum(rate(http_requests_total{SEL}[1m]))",
    "memory_rss_bytes": f"max(process_resident_memory_bytes{SEL})",
}


def module(interval: float = 1.0, **queries: str) -> Module:
    return Module(name="checkout", interval=interval, metrics={
        name: MetricSpec(direction=Direction.HIGHER_IS_WORSE, query=query)
        for name, query in (queries or QUERIES).items()})


class Counting(httpx.BaseTransport):
    """A real HTTP transport that remembers the requests it sent."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def form(request: httpx.Request | dict[str, Any]) -> dict[str, str]:
    body = request["body"] if isinstance(request, dict) else request.content.decode()
    return dict(httpx.QueryParams(body))


def test_render_replaces_only_the_placeholders() -> None:
    query = 'sum(rate(x{module="{module}",version="{version}"}[1m])) / on() group_left {}'
    assert render(query, "checkout", "v2") == \
        'sum(rate(x{module="checkout",version="v2"}[1m])) / on() group_left {}'


# -- against a real Prometheus -----------------------------------------------------------

def test_range_fetch_returns_each_version_on_the_step_grid(prometheus_setup: Any) -> None:
    end = time.time()
    with PrometheusSource(prometheus_setup.prometheus.url) as source:
        store = source.fetch(module(interval=1.0), end - 5, end)
    memory_v1, memory_v2 = store.get(Version.V1, "memory_rss_bytes"), \
        store.get(Version.V2, "memory_rss_bytes")
    assert len(memory_v1) >= 2 and set(memory_v1.v.tolist()) == {100e6}
    assert set(memory_v2.v.tolist()) == {150e6}
    assert memory_v1.t[-1] == pytest.approx(end)
    assert all(end - 5 < t <= end for t in memory_v1.t)
    assert np.diff(memory_v1.t).tolist() == pytest.approx([1.0] * (len(memory_v1) - 1))
    # all observations sit in one bucket: (0.025, 0.05] for v1, (0.05, 0.1] for v2
    assert store.get(Version.V1, "latency_p95_ms").v[-1] == pytest.approx(48.75)
    assert store.get(Version.V2, "latency_p95_ms").v[-1] == pytest.approx(97.5)
    assert store.get(Version.V1, "error_rate").v[-1] == pytest.approx(0.05, abs=0.01)
    assert store.get(Version.V2, "error_rate").v[-1] == pytest.approx(0.10, abs=0.01)
    assert source.last_errors == {}


def test_baseline_over_a_past_window_is_one_range_request(prometheus_setup: Any) -> None:
    transport = Counting()
    end = time.time() - 1
    began = time.monotonic()
    with PrometheusSource(prometheus_setup.prometheus.url, transport=transport) as source:
        store = source.fetch(module(interval=10.0), end - 1800, end,
                             versions=iter([Version.V1]), metrics=["memory_rss_bytes"])
    assert time.monotonic() - began < 5
    assert [r.url.path for r in transport.requests] == ["/api/v1/query_range"]
    sent = form(transport.requests[0])
    assert float(sent["step"]) == 10.0 and float(sent["end"]) == pytest.approx(end)
    assert end - 1800 < float(sent["start"]) <= end - 1790
    series = store.get(Version.V1, "memory_rss_bytes")
    assert len(series) >= 1 and set(series.v.tolist()) == {100e6}
    assert store.keys() == [(Version.V1, "memory_rss_bytes")]


def test_long_windows_are_split_at_the_point_limit(prometheus_setup: Any) -> None:
    end = time.time() - 2
    url = prometheus_setup.prometheus.url
    transport = Counting()
    with PrometheusSource(url) as whole, \
            PrometheusSource(url, max_points=3, transport=transport) as split:
        one = whole.fetch(module(interval=1.0), end - 10, end, metrics=["memory_rss_bytes"])
        many = split.fetch(module(interval=1.0), end - 10, end, metrics=["memory_rss_bytes"])
    assert len(transport.requests) == 2 * 4  # 10 points in chunks of 3, per version
    for version in Version:
        a, b = one.get(version, "memory_rss_bytes"), many.get(version, "memory_rss_bytes")
        assert a.t.tolist() == b.t.tolist() and a.v.tolist() == b.v.tolist()


def test_instant_queries(prometheus_setup: Any) -> None:
    now = time.time()
    with PrometheusSource(prometheus_setup.prometheus.url) as source:
        [series] = source.query(render(QUERIES["memory_rss_bytes"], "checkout", "v2"))
        assert series.points[0][1] == 150e6
        [scalar] = source.query("scalar(vector(42))", at=now)
        assert scalar.labels == {} and len(scalar.points) == 1
        assert scalar.points[0][0] == pytest.approx(now, abs=1e-3)
        assert scalar.points[0][1] == 42.0
        store = source.instant(module(), now)
    assert store.get(Version.V1, "memory_rss_bytes").t.tolist() == [pytest.approx(now)]
    assert store.get(Version.V2, "latency_p95_ms").v.tolist() == [pytest.approx(97.5)]


def test_shipped_default_queries_run(prometheus_setup: Any) -> None:
    shipped = load_default_rules().for_module("checkout")
    end = time.time()
    with PrometheusSource(prometheus_setup.prometheus.url) as source:
        store = source.fetch(shipped, end - 10, end)
    assert store.get(Version.V2, "memory_rss_bytes").v[-1] == 150e6
    throughput = store.get(Version.V1, "throughput_rps").v[-1]
    # rate()[1m] over the few seconds stored so far reads low: only check it is there
    assert 0 < throughput < 450
    # the app never receives messages: 0/0 is NaN in PromQL, which is no sample at all
    assert len(store.get(Version.V1, "parse_rate")) == 0


def test_bad_query_raises_bad_query_without_retrying(prometheus_setup: Any) -> None:
    transport = Counting()
    with PrometheusSource(prometheus_setup.prometheus.url, transport=transport,
                          sleep=lambda _: None) as source:
        with pytest.raises(BadQuery, match="bad_data"):
            source.query("sum(")
        with pytest.raises(BadQuery):
            source.query_range("rate(x[1m]", time.time() - 10, time.time(), 1.0)
    assert len(transport.requests) == 2


def test_one_bad_metric_does_not_hide_the_others(prometheus_setup: Any) -> None:
    mod = module(memory_rss_bytes=QUERIES["memory_rss_bytes"], broken="sum(",
                 both="max(process_resident_memory_bytes{module=\"{module}\"})")
    end = time.time()
    with PrometheusSource(prometheus_setup.prometheus.url) as source:
        store = source.fetch(mod, end - 3, end)
        assert set(store.get(Version.V1, "memory_rss_bytes").v.tolist()) == {100e6}
        assert isinstance(source.last_errors[(Version.V2, "broken")], BadQuery)
        assert len(store.get(Version.V1, "both")) > 0
        many = module(memory_rss_bytes=QUERIES["memory_rss_bytes"],
                      unaggregated='process_resident_memory_bytes{module="{module}"}')
        store = source.fetch(many, end - 3, end)
        assert len(store.get(Version.V2, "memory_rss_bytes")) > 0
        assert "returns 2 series" in str(source.last_errors[(Version.V1, "unaggregated")])
        with pytest.raises(BadQuery):
            source.fetch(module(broken="sum("), end - 3, end)


def test_unknown_metric_is_an_empty_result(prometheus_setup: Any) -> None:
    with PrometheusSource(prometheus_setup.prometheus.url) as source:
        with pytest.raises(EmptyResult):
            source.query("no_such_metric_anywhere")
        with pytest.raises(EmptyResult):
            source.query_range("no_such_metric_anywhere", time.time() - 5, time.time(), 1)
        end = time.time()
        with pytest.raises(EmptyResult):
            source.fetch(module(ghost='max(no_such_metric{version="{version}"})'), end - 5, end)


def test_stopped_server_is_unavailable_after_retries(start_prometheus: Any) -> None:
    server = start_prometheus([])
    slept: list[float] = []
    with PrometheusSource(server.url, retries=2, backoff=0.01, sleep=slept.append) as source:
        assert source.query("vector(1)")[0].points[0][1] == 1.0
        server.stop()
        with pytest.raises(SourceUnavailable, match="unreachable") as caught:
            source.query("vector(1)")
    assert slept == [0.01, 0.02]
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


# -- against a stub server ---------------------------------------------------------------

def prom_error(kind: str, message: str) -> str:
    return json.dumps({"status": "error", "errorType": kind, "error": message})


def matrix(*points: tuple[float, str]) -> str:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": [list(p) for p in points]}]}})


def test_server_errors_are_retried_with_backoff_then_unavailable(stub: Any) -> None:
    stub.reply({"status": 500, "body": prom_error("internal", "boom")})
    slept: list[float] = []
    with PrometheusSource(stub.url, retries=2, backoff=0.25, sleep=slept.append) as source, \
            pytest.raises(SourceUnavailable, match="HTTP 500: internal: boom"):
        source.query("up")
    assert len(stub.requests) == 3 and slept == [0.25, 0.5]


def test_backoff_is_capped(stub: Any) -> None:
    stub.reply({"status": 503, "body": "overloaded"})
    slept: list[float] = []
    with PrometheusSource(stub.url, retries=4, backoff=1, max_backoff=3,
                          sleep=slept.append) as source, pytest.raises(SourceUnavailable):
        source.query("up")
    assert slept == [1, 2, 3, 3] and len(stub.requests) == 5


def test_a_retry_that_succeeds_returns_the_answer(stub: Any) -> None:
    stub.reply({"status": 503}, {"status": 429}, {"body": matrix((10.0, "7"))})
    with PrometheusSource(stub.url, retries=2, sleep=lambda _: None) as source:
        [series] = source.query_range("up", 10, 10, 1)
    assert series.points == ((10.0, 7.0),) and len(stub.requests) == 3


def test_timeouts_are_retried_then_unavailable(stub: Any) -> None:
    stub.reply({"delay": 5.0, "body": matrix()})
    began = time.monotonic()
    with PrometheusSource(stub.url, timeout=0.2, retries=1, sleep=lambda _: None) as source, \
            pytest.raises(SourceUnavailable, match=r"timed out after 0\.2s") as caught:
        source.query("up")
    assert len(stub.requests) == 2 and time.monotonic() - began < 2
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


@pytest.mark.parametrize(("status", "body", "error"), [
    (400, prom_error("bad_data", "parse error at char 5"), BadQuery),
    (422, prom_error("execution", "many-to-many matching not allowed"), BadQuery),
    (200, prom_error("bad_data", "invalid parameter"), BadQuery),
    (401, "unauthorized", SourceError),
    (404, "not found", SourceError),
    (200, "<html>login</html>", SourceError),
])
def test_answers_that_are_not_retried(stub: Any, status: int, body: str,
                                      error: type[SourceError]) -> None:
    stub.reply({"status": status, "body": body})
    with PrometheusSource(stub.url, sleep=lambda _: None) as source, \
            pytest.raises(error) as caught:
        source.query("up")
    assert not isinstance(caught.value, SourceUnavailable)
    assert len(stub.requests) == 1


def test_range_grid_ends_at_end_and_skips_nan(stub: Any) -> None:
    stub.reply({"body": matrix((1005, "1"), (1015, "NaN"), (1025, "+Inf"), (1035, "2"))})
    with PrometheusSource(stub.url + "/prom/") as source:
        store = source.fetch(module(interval=10, x="x{version=\"{version}\"}"), 1000, 1055,
                             versions=[Version.V2])
    [request] = stub.requests
    assert request["method"] == "POST" and request["path"] == "/prom/api/v1/query_range"
    assert form(request) == {"query": 'x{version="v2"}', "start": "1005.0", "end": "1055.0",
                             "step": "10.0"}
    series = store.get(Version.V2, "x")
    assert series.t.tolist() == [1005, 1035] and series.v.tolist() == [1, 2]


def test_credentials_and_headers_are_sent_but_never_shown(stub: Any,
                                                          caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    caplog.set_level(logging.DEBUG)
    # loggers below may carry their own level (a daemon started in-process sets the
    # "watchdog" logger's): capture at DEBUG on each one the secret could pass through
    for name in ("watchdog", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    stub.reply({"status": 503}, {"body": matrix((1, "1"))})
    with PrometheusSource(stub.url, token="s3cret-token", headers={"X-Scope-OrgID": "team"},
                          sleep=lambda _: None) as source:
        source.query("up")
        shown = repr(source)
    with PrometheusSource(stub.url, username="ops", password="pa55word") as basic:
        basic.query("up")
        shown += repr(basic) + str(vars(basic))
    headers = [r["headers"] for r in stub.requests]
    assert headers[0]["Authorization"] == "Bearer s3cret-token"
    assert headers[0]["X-Scope-OrgID"] == "team"
    assert headers[2]["Authorization"] == "Basic b3BzOnBhNTV3b3Jk"  # ops:pa55word
    for secret in ("s3cret-token", "pa55word", "b3BzOnBhNTV3b3Jk"):
        assert secret not in caplog.text and secret not in shown
    assert "retry 1 of 2" in caplog.text  # the log was captured


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="not both"):
        PrometheusSource("http://127.0.0.1:1", token="t", username="u", password="p")
    with pytest.raises(ValueError, match="http"):
        PrometheusSource("127.0.0.1:9090")
