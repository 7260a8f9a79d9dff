"""The ``webhook`` actuator against a real HTTP flag service on loopback."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from watchdog.actuators import FlagState
from watchdog.actuators.webhook import WebhookActuator, sign
from watchdog.errors import ActuatorError, ConfigError

STATE = FlagState("checkout", "v2", 25, False, "42")


class Recorder:
    """An injected sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Recorder:
    return Recorder()


@pytest.fixture
def make(flag_service: Any, sleeps: Recorder, http_client: httpx.Client) -> Iterator[Any]:
    made: list[WebhookActuator] = []

    def build(**kwargs: Any) -> WebhookActuator:
        options: dict[str, Any] = {"url": flag_service.base + "/flags",
                                   "secret": flag_service.secret.decode(), "timeout": 2,
                                   "max_attempts": 3, "backoff_initial": 0.5, "sleep": sleeps,
                                   "client": http_client}
        options.update(kwargs)
        made.append(WebhookActuator(**options))
        return made[-1]

    yield build
    for actuator in made:
        actuator.close()


def test_request_is_signed_and_verified_by_the_server(make: Any, flag_service: Any) -> None:
    now = int(time.time())
    make(clock=lambda: float(now)).apply(STATE)
    [seen] = flag_service.posts()
    assert seen.verified
    assert seen.headers["idempotency-key"] == "42"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-watchdog-timestamp"] == str(now)
    assert seen.body == (b'{"decision_id":"42","kill_switch":false,"module":"checkout",'
                         b'"traffic_percent":25,"version":"v2"}')
    assert seen.headers["x-watchdog-signature"] == sign(flag_service.secret, str(now), seen.body)
    # the timestamp is part of the signed material: moving it breaks the signature
    moved = {**seen.headers, "x-watchdog-timestamp": str(now - 1)}
    assert not flag_service.verify(moved, seen.body)
    assert not flag_service.verify(seen.headers, seen.body.replace(b"25", b"95"))


def test_a_stale_timestamp_is_rejected_by_the_server_and_not_retried(
        make: Any, flag_service: Any, sleeps: Recorder) -> None:
    with pytest.raises(ActuatorError, match="HTTP 401"):
        make(clock=lambda: time.time() - 3600).apply(STATE)
    assert len(flag_service.posts()) == 1 and sleeps.delays == []


def test_retries_server_errors_with_backoff_then_succeeds(make: Any, flag_service: Any,
                                                          sleeps: Recorder) -> None:
    flag_service.queue("POST", 503)
    flag_service.queue("POST", 502)
    make().apply(STATE)
    posts = flag_service.posts()
    assert len(posts) == 3 and sleeps.delays == [0.5, 1.0]
    assert all(p.verified and p.headers["idempotency-key"] == "42" for p in posts)
    assert flag_service.applied_keys == ["42"]
    assert flag_service.states["checkout"]["traffic_percent"] == 25


def test_429_honours_retry_after_in_seconds_and_as_a_date(make: Any, flag_service: Any,
                                                          sleeps: Recorder) -> None:
    now = time.time()
    flag_service.queue("POST", 429, {"Retry-After": "7"})
    flag_service.queue("POST", 429, {"Retry-After": formatdate(now + 12, usegmt=True)})
    flag_service.queue("POST", 503, {"Retry-After": "3600"})
    make(clock=lambda: now, max_attempts=4, max_retry_after=30).apply(STATE)
    assert sleeps.delays[0] == 7
    assert 10 <= sleeps.delays[1] <= 12
    assert sleeps.delays[2] == 30  # capped at max_retry_after
    assert len(flag_service.posts()) == 4


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_other_4xx_fail_at_once(make: Any, flag_service: Any, sleeps: Recorder,
                                status: int) -> None:
    flag_service.queue("POST", status, body='{"error": "no such rollout"}')
    with pytest.raises(ActuatorError, match=f"HTTP {status}.*no such rollout"):
        make().apply(STATE)
    assert len(flag_service.posts()) == 1 and sleeps.delays == []
    assert "checkout" not in flag_service.states


def test_gives_up_after_max_attempts(make: Any, flag_service: Any, sleeps: Recorder) -> None:
    for _ in range(3):
        flag_service.queue("POST", 500)
    actuator = make(backoff_initial=1, backoff_max=1.5)
    with pytest.raises(ActuatorError, match=r"gave up after 3 attempt\(s\): HTTP 500"):
        actuator.apply(STATE)
    assert sleeps.delays == [1, 1.5]
    assert actuator.read("checkout") is None  # nothing was confirmed


def test_timeout_is_retried_then_reported(make: Any, flag_service: Any,
                                          sleeps: Recorder) -> None:
    flag_service.queue("POST", 200, delay=3)
    flag_service.queue("POST", 200, delay=3)
    started = time.monotonic()
    with pytest.raises(ActuatorError, match=r"timed out after 0\.2s"):
        make(timeout=0.2, max_attempts=2).apply(STATE)
    assert time.monotonic() - started < 2
    assert len(flag_service.posts()) == 2 and sleeps.delays == [0.5]


def test_connection_refused_is_retried_then_reported(make: Any, sleeps: Recorder) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ActuatorError, match="ConnectError"):
        make(url=f"http://127.0.0.1:{port}/flags").apply(STATE)
    assert sleeps.delays == [0.5, 1.0]


def test_read_url_read_back_and_signed_get(make: Any, flag_service: Any) -> None:
    actuator = make(read_url=flag_service.base + "/flags/{module}")
    assert actuator.read("checkout") is None  # 404
    actuator.apply(STATE)
    assert actuator.read("checkout") == STATE
    gets = [s for s in flag_service.seen if s.method == "GET"]
    assert gets and all(g.verified and g.path == "/flags/checkout" for g in gets)


def test_read_url_mismatch_is_an_actuator_error(make: Any, flag_service: Any) -> None:
    flag_service.read_override = {"module": "checkout", "version": "v1", "traffic_percent": 0,
                                  "kill_switch": False}
    actuator = make(read_url=flag_service.base + "/flags/{module}")
    with pytest.raises(ActuatorError, match="read-back mismatch"):
        actuator.apply(STATE)
    flag_service.read_override = {"version": "v2"}
    with pytest.raises(ActuatorError, match="missing traffic_percent, kill_switch"):
        actuator.read("checkout")


def test_without_read_url_read_returns_the_last_confirmed_state(make: Any) -> None:
    with make(client=None) as actuator:  # its own client, closed on exit
        actuator.apply(STATE)
        rollback = FlagState("checkout", "v1", 0, False, "43")
        actuator.apply(rollback)
        assert actuator.read("checkout") == rollback
        assert actuator.read("sync-service") is None


def test_the_secret_never_appears_in_errors_repr_or_logs(
        make: Any, flag_service: Any, caplog: pytest.LogCaptureFixture) -> None:
    secret = flag_service.secret.decode()
    actuator = make(secret=SecretStr(secret), max_attempts=2)
    caplog.set_level(logging.DEBUG)
    flag_service.queue("POST", 503, body=f"config dump: secret={secret}")
    flag_service.queue("POST", 400, body=f"echo: {secret}")
    with pytest.raises(ActuatorError) as caught:
        actuator.apply(STATE)
    assert "HTTP 400" in str(caught.value) and "**********" in str(caught.value)
    texts = [str(caught.value), repr(caught.value), repr(actuator), str(vars(actuator)),
             caplog.text]
    flag_service.queue("POST", 200, delay=3)
    leaky_url = (flag_service.base.replace("//", f"//user:{secret}@") + "/flags?token=" + secret)
    with pytest.raises(ActuatorError, match="timed out") as timed_out:
        make(secret=secret, url=leaky_url, timeout=0.2, max_attempts=1).apply(STATE)
    texts += [str(timed_out.value), repr(timed_out.value)]
    assert "retry 1/1" in caplog.text
    for text in texts:
        assert secret not in text


def test_redirects_are_not_followed_through_an_injected_transport(sleeps: Recorder) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(302, headers={"Location": "http://elsewhere.invalid/"})

    actuator = WebhookActuator(url="http://flags.test/rollout/{module}", secret="k",
                               transport=httpx.MockTransport(handler), sleep=sleeps)
    with pytest.raises(ActuatorError, match="HTTP 302"):
        actuator.apply(STATE)
    assert [str(c.url) for c in calls] == ["http://flags.test/rollout/checkout"]
    assert json.loads(calls[0].content)["decision_id"] == "42"


def test_an_injected_client_is_used_and_left_open() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with WebhookActuator(url="http://flags.test/x", secret="k", client=client) as actuator:
        actuator.apply(STATE)
    assert seen == ["POST"] and not client.is_closed
    client.close()


@pytest.mark.parametrize("kwargs", [
    {"url": "ftp://flags/x"}, {"secret": ""}, {"timeout": 0}, {"max_attempts": 0},
    {"headers": {"idempotency-key": "fixed"}}, {"read_url": "flags/x"},
])
def test_configuration_errors(kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {"url": "http://flags.test/x", "secret": "k", **kwargs}
    with pytest.raises(ConfigError):
        WebhookActuator(**options)


def test_module_names_are_percent_encoded_in_urls(sleeps: Recorder) -> None:
    urls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        urls.append(str(request.url))
        return httpx.Response(200, json={"version": "v1", "traffic_percent": 0,
                                         "kill_switch": False})

    actuator = WebhookActuator(url="http://flags.test/rollout/{module}", secret="k",
                               read_url="http://flags.test/state/{module}",
                               transport=httpx.MockTransport(handler), sleep=sleeps)
    actuator.apply(FlagState("../admin?x=1", "v1", 0, False, "5"))
    assert urls == ["http://flags.test/rollout/..%2Fadmin%3Fx%3D1",
                    "http://flags.test/state/..%2Fadmin%3Fx%3D1"]
    assert repr(actuator) == ("WebhookActuator(url='http://flags.test/rollout/{module}', "
                              "read_url='http://flags.test/state/{module}', "
                              "secret=SecretStr('**********'))")
