"""A local Slack: the Web API methods we use, and an incoming webhook, on 127.0.0.1.

The real slack-sdk clients talk to it through ``base_url`` (or the webhook URL). It
records every request (with the real time, and a fake-clock time when ``stamp`` is set),
checks the bearer token like Slack does (``invalid_auth`` otherwise), needs a channel id
for chat.update like Slack does, and plays scripted faults per method: an HTTP status
(with headers), an API error (``ok: false``), or a hang that lasts until the server stops.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from watchdog.clock import FakeClock
from watchdog.journal.store import Journal
from watchdog.notifiers import Notification
from watchdog.notifiers.slack_settings import SlackSettings

TOKEN = "xoxb-1234-5678-TOPSECRETtoken"
HOOK_PATH = "/services/T0001/B0001/HOOKsecretPART"
START = 1_700_000_000.0


@dataclass
class Fault:
    status: int = 200
    error: str | None = None  # ok: false with this error
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    hang: float = 0.0


@dataclass
class Request:
    method: str  # "chat.postMessage", ..., or "webhook"
    headers: dict[str, str]
    body: Any
    t: float
    fake_t: float | None
    outcome: str = ""


class FakeSlack:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}  # channel id -> messages
        self.updates: list[dict[str, Any]] = []
        self.faults: dict[str, deque[Fault]] = {}
        self.release = threading.Event()
        self.stamp: Callable[[], float] | None = None
        self.lock = threading.Lock()
        self._seq = 0
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self.server = server
        self.port = server.server_address[1]
        self.thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HOOK_PATH}"

    def fail(self, method: str, *faults: Fault) -> None:
        self.faults.setdefault(method, deque()).extend(faults)

    def calls(self, method: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == method]

    def posts(self) -> list[dict[str, Any]]:
        """Successful chat.postMessage bodies, in order."""
        return [r.body for r in self.calls("chat.postMessage") if r.outcome == "ok"]

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def handle(self, method: str, headers: dict[str, str], body: Any
               ) -> tuple[int, dict[str, str], str]:
        req = Request(method, headers, body, time.monotonic(),
                      self.stamp() if self.stamp else None)
        with self.lock:
            self.requests.append(req)
            queue = self.faults.get(method)
            fault = queue.popleft() if queue else None
        if fault is not None and fault.hang:
            req.outcome = "hung"
            self.release.wait(fault.hang)
            return -1, {}, ""
        if fault is not None and (fault.status != 200 or fault.body is not None):
            req.outcome = f"http {fault.status}"
            body_text = fault.body if fault.body is not None else json.dumps(
                {"ok": False, "error": fault.error or "internal_error"})
            return fault.status, fault.headers, body_text
        if fault is not None and fault.error:
            req.outcome = fault.error
            return 200, {}, json.dumps({"ok": False, "error": fault.error})
        if method == "webhook":
            req.outcome = "ok"
            return 200, {"Content-Type": "text/html"}, "ok"
        if headers.get("authorization") != f"Bearer {TOKEN}":
            req.outcome = "invalid_auth"
            return 200, {}, json.dumps({"ok": False, "error": "invalid_auth"})
        result = self._api(method, body)
        req.outcome = "ok" if result.get("ok") else str(result.get("error"))
        return 200, {}, json.dumps(result)

    def _api(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "team": "Acme", "user": "watchdog", "bot_id": "B1"}
        channel = str(body.get("channel", ""))
        with self.lock:
            if method == "chat.postMessage":
                cid = channel if channel.startswith("C") else "C" + "".join(
                    c for c in channel.upper() if c.isalnum())
                self._seq += 1
                ts = f"{int(START)}.{self._seq:06d}"
                self.messages.setdefault(cid, []).append({**body, "ts": ts})
                return {"ok": True, "channel": cid, "ts": ts,
                        "message": {"text": body.get("text"), "ts": ts}}
            if method == "chat.update":
                if not channel.startswith("C"):
                    return {"ok": False, "error": "channel_not_found"}
                found = [m for m in self.messages.get(channel, []) if m["ts"] == body.get("ts")]
                if not found:
                    return {"ok": False, "error": "message_not_found"}
                found[0].update(text=body.get("text"), blocks=body.get("blocks"))
                self.updates.append(body)
                return {"ok": True, "channel": channel, "ts": body["ts"], "text": body.get("text")}
        return {"ok": False, "error": "unknown_method"}


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            if self.path.startswith("/api/"):
                method = self.path[len("/api/"):].split("?")[0]
            elif self.path == HOOK_PATH:
                method = "webhook"
            else:
                self.send_error(404)
                return
            try:
                body: Any = json.loads(raw) if raw.startswith("{") else raw
            except ValueError:
                body = raw
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, text = fake.handle(method, headers, body)
            if status < 0:
                self.close_connection = True
                return
            data = text.encode("utf-8")
            self.send_response(status)
            if not any(k.lower() == "content-type" for k in extra):
                self.send_header("Content-Type", "application/json; charset=utf-8")
            for k, v in extra.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal(tmp_path / "journal.db")
    try:
        yield j
    finally:
        j.close()


@pytest.fixture
def settings(slack: FakeSlack) -> Callable[..., SlackSettings]:
    def make(**overrides: Any) -> SlackSettings:
        values: dict[str, Any] = {
            "token": SecretStr(TOKEN), "base_url": slack.base_url, "timeout": 1,
            "retry_backoff": 0.01, "default_channel": "#rollouts",
            "rate_per_second": 1000.0,  # tests of the limit set 1/s and a fake clock
            "channels": {"critical": "#rollouts-critical"},
            "dashboard_url": "https://grafana.example/d/rollouts?var-module={module}"
                             "&from={from_ms}&to={to_ms}"}
        values.update(overrides)
        return SlackSettings(**values)
    return make


LATENCY = {"rule": "latency-p95-vs-baseline", "metric": "latency_p95_ms", "breached": True,
           "summary": "latency_p95_ms 412.3 vs baseline 250.1 (+64.9%; limit 300.1)",
           "against": "baseline", "tolerance": 0.2, "test": "sequential", "observed": 412.3,
           "reference": 250.1, "limit": 300.12, "effect": 0.6486, "z": 5.214,
           "p_value": 9.4e-08, "se": 21.6, "n_v2": 120, "n_ref": 2000, "baseline_id": 7,
           "active_at": START - 750.0}
ERRORS = {"rule": "error-rate", "metric": "error_rate", "breached": False,
          "summary": "error_rate 0.004 vs baseline 0.0038", "observed": 0.004,
          "reference": 0.0038, "limit": 0.01}


def make_note(key: str = "k1", module: str = "checkout", kind: str = "decision",
              action: str | None = "advance", severity: str = "info", at: float = START,
              stage: int | None = 1, traffic: float | None = 5.0, title: str = "",
              reasons: tuple[str, ...] = (), evidence: tuple[dict[str, Any], ...] = (),
              links: dict[str, str] | None = None) -> Notification:
    return Notification(key=key, module=module, kind=kind, action=action, severity=severity,
                        title=title or f"{module}: {action or kind}", stage=stage,
                        traffic_percent=traffic, reasons=reasons, evidence=evidence, at=at,
                        links=links if links is not None else
                        {"runbook_url": "https://runbooks.example/rollout-watchdog/latency"})


def rollback_note(key: str = "rb", module: str = "checkout", at: float = START + 60,
                  **kw: Any) -> Notification:
    values: dict[str, Any] = {
        "kind": "decision", "action": "rollback", "severity": "critical", "stage": 2,
        "traffic": 25.0, "title": f"{module} rolled back at 25 %",
        "reasons": ("critical rule latency-p95-vs-baseline fired for 2 consecutive checks",),
        "evidence": (LATENCY, ERRORS)}
    values.update(kw)
    return make_note(key=key, module=module, at=at, **values)


@pytest.fixture
def note() -> Callable[..., Notification]:
    return make_note


@pytest.fixture
def rollback() -> Callable[..., Notification]:
    return rollback_note


@pytest.fixture(name="Fault")
def fault_class() -> type[Fault]:
    return Fault
