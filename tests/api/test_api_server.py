"""Serving: JSON errors for every failure, binding rules, the token's sources."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from watchdog.api import ApiServer, ApiSettings, check_bind, create_app, load_api_token
from watchdog.errors import ConfigError

Served = Any
ServeFn = Callable[..., Any]
SECRET = "s3cret-token-abcdef0123456789"


class ExplodingClock:
    """A clock that fails the way a bug would, with a detail that must not leak."""

    def now(self) -> float:
        raise RuntimeError("boom at /etc/rollout-watchdog/secret-path")

    def monotonic(self) -> float:
        return 0.0


def test_unknown_route_and_wrong_method_are_json(reader: Served) -> None:
    r = reader.client.get("/no/such/route")
    assert r.status_code == 404
    assert r.json() == {"status": 404, "error": "not_found",
                        "message": "no such route; see /openapi.json"}
    r = reader.client.get("/api/modules/search/pause")
    assert r.status_code == 405
    assert r.headers["allow"] == "OPTIONS, POST"
    assert r.json()["error"] == "method_not_allowed" and "GET" in r.json()["message"]
    r = reader.client.delete("/status")
    assert r.status_code == 405 and r.headers["content-type"] == "application/json"


def test_internal_errors_are_json_without_a_traceback(serve: ServeFn, fresh_db: Path
                                                      ) -> None:
    served = serve(fresh_db, clock=ExplodingClock())
    r = served.client.get("/health")
    assert r.status_code == 500
    assert r.json() == {"status": 500, "error": "internal_error",
                        "message": "internal error; see the daemon's log"}
    assert "Traceback" not in r.text and "secret-path" not in r.text
    assert served.client.get("/api/decisions").status_code == 200  # the server carries on


def test_openapi_is_served(reader: Served) -> None:
    r = reader.client.get("/openapi.json")
    assert r.status_code == 200 and r.json()["info"]["title"] == "rollout-watchdog"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "watchdog.example.com"])
def test_refuses_to_listen_beyond_loopback_without_a_token(tmp_path: Path, host: str) -> None:
    app = create_app(tmp_path / "j.db")
    with pytest.raises(ConfigError) as err:
        ApiServer(app, host, 0, token=None)
    message = str(err.value)
    assert f"refusing to serve the API on {host!r} without a token" in message
    assert "WATCHDOG_API_TOKEN" in message
    check_bind(host, SecretStr(SECRET))  # with a token it is the operator's choice
    ApiServer(app, host, 0, token=SecretStr(SECRET))  # constructed (not started)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_needs_no_token(host: str) -> None:
    check_bind(host, None)


def test_a_port_in_use_is_a_clear_error_and_stop_is_idempotent(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        server = ApiServer(create_app(tmp_path / "j.db"), "127.0.0.1", port)
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            server.start()
    server = ApiServer(create_app(tmp_path / "j.db"), "127.0.0.1", 0)
    server.start()
    url = server.url
    assert httpx.get(url + "/health", timeout=5).status_code == 200
    server.stop()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=5)


def test_token_from_setting_file_or_credential(tmp_path: Path) -> None:
    assert load_api_token(ApiSettings(), env={}) is None
    from_setting = load_api_token(ApiSettings(token=SecretStr(SECRET)), env={})
    assert from_setting is not None and from_setting.get_secret_value() == SECRET
    file = tmp_path / "token"
    file.write_text(SECRET + "\n")
    from_file = load_api_token(ApiSettings(token_file=file), env={})
    assert from_file is not None and from_file.get_secret_value() == SECRET
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api_token").write_text(SECRET)
    from_cred = load_api_token(ApiSettings(), env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert from_cred is not None and from_cred.get_secret_value() == SECRET
    assert SECRET not in repr(ApiSettings(token=SecretStr(SECRET)))


@pytest.mark.parametrize(("value", "why"), [("x7Qz", "too short"),
                                            ("has spaces in the token!", "printable ASCII")])
def test_weak_or_malformed_tokens_are_refused(value: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as err:
        load_api_token(ApiSettings(token=SecretStr(value)), env={})
    assert value not in str(err.value)


def test_missing_token_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the API token"):
        load_api_token(ApiSettings(token_file=tmp_path / "absent"), env={})


def test_settings_from_the_environment() -> None:
    code = ("import json; from watchdog.api import ApiSettings, load_api_token; "
            "s = ApiSettings(); t = load_api_token(s, env={}); "
            "print(json.dumps([s.host, s.port, s.max_body_bytes, t.get_secret_value()]))")
    env = {**os.environ, "WATCHDOG_API_TOKEN": SECRET, "WATCHDOG_API_HOST": "::1",
           "WATCHDOG_API_PORT": "9999", "WATCHDOG_API_MAX_BODY_BYTES": "2048"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == ["::1", 9999, 2048, SECRET]


def test_an_unreadable_journal_is_503_json_and_metrics_say_so(serve: ServeFn,
                                                              tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a SQLite database " * 200)
    served = serve(garbage)
    for path in ("/health", "/status", "/api/decisions"):
        r = served.client.get(path)
        assert r.status_code == 503, path
        assert r.json() == {"status": 503, "error": "unavailable",
                            "message": "the journal cannot be read or written; see the log"}
    r = served.client.post("/api/modules/search/pause", json={"reason": "r"},
                           headers=served.auth())
    assert r.status_code == 503
    metrics = served.client.get("/metrics")
    assert metrics.status_code == 200 and "watchdog_journal_up 0.0" in metrics.text
