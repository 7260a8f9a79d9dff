"""The ``webhook`` actuator: POSTs a module's flags, signed, to an HTTP endpoint.

Configuration (keyword arguments, from YAML)::

    actuator: webhook
    url: https://flags.internal/rollout/{module}     # {module} is optional
    secret: ...                 # shared HMAC secret (SecretStr; never logged)
    read_url: https://flags.internal/rollout/{module}  # optional GET for the read-back
    timeout: 5                  # seconds per request
    max_attempts: 4             # tries in all, retrying only what may succeed later
    backoff_initial: 0.5        # seconds, doubled per retry ...
    backoff_max: 8              # ... up to this
    max_retry_after: 30         # longest Retry-After honoured (seconds)
    headers: {}                 # extra request headers
    verify: true                # TLS verification (or a CA bundle path)

The request, exactly::

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <decision_id>
    X-Watchdog-Timestamp: <unix time in whole seconds>
    X-Watchdog-Signature: sha256=<hex HMAC-SHA256(secret, <timestamp> + "." + <body>)>

    {"decision_id":"42","kill_switch":false,"module":"checkout","traffic_percent":25,"version":"v2"}

The body is compact JSON with sorted keys, UTF-8. A receiver verifies by computing
HMAC-SHA256 with the shared secret over the timestamp header's bytes, a ``.``, and the raw body
bytes as received, comparing it in constant time with the hex after ``sha256=``; it rejects a
timestamp more than five minutes from its own clock (a captured request cannot be replayed
later) and treats a repeated ``Idempotency-Key`` as the same change (answers 2xx, applies it
once). Every attempt is signed afresh: same body and key, new timestamp.

A 2xx is success. Connection errors, timeouts, 5xx and 429 are retried with exponential
backoff (a ``Retry-After`` in seconds or as an HTTP date is honoured, up to ``max_retry_after``);
any other status fails at once. Read-back: with ``read_url`` a GET, signed the same way over an
empty body, must answer 200 with the JSON state (``decision_id`` optional) or 404 for a module
never written; without it, :meth:`read` returns the last state a 2xx confirmed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from watchdog.actuators import FlagState
from watchdog.actuators.base import ActuatorBase
from watchdog.actuators.flagcodec import check_readback, check_state, describe, from_dict, to_dict
from watchdog.config.schema import Duration
from watchdog.errors import ActuatorError, ConfigError, Issue
from watchdog.pluginbase import PluginOptions

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Watchdog-Signature"
TIMESTAMP_HEADER = "X-Watchdog-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RESERVED = {h.lower() for h in (SIGNATURE_HEADER, TIMESTAMP_HEADER, IDEMPOTENCY_HEADER,
                                 "Content-Type")}


def _config_error(message: str) -> ConfigError:
    return ConfigError([Issue("actuator webhook", 0, message)])


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Watchdog-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def display_url(url: str) -> str:
    """The URL without credentials or query (either may hold a token)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid url>"
    shown = str(parsed.copy_with(userinfo=b"", query=None, fragment=None))
    return shown.replace("%7Bmodule%7D", "{module}")


def module_url(template: str, module: str) -> str:
    """``{module}`` percent-encoded: a module name cannot change the path or add a query."""
    return template.replace("{module}", quote(module, safe=""))


class WebhookOptions(PluginOptions):
    """Options of the ``webhook`` actuator."""

    url: str = Field(pattern=r"^https?://", description="Where the flags are PUT; {module} "
                     "is filled in.")
    secret: SecretStr = Field(description="HMAC-SHA256 signing key of each request (secret).")
    read_url: str | None = Field(default=None, pattern=r"^https?://",
                                 description="Where the flags are read back (default: url).")
    timeout: Duration = Field(default=5.0, gt=0, description="One request's timeout.")
    max_attempts: int = Field(default=4, ge=1, description="Attempts of one application.")
    backoff_initial: Duration = Field(default=0.5, ge=0, description="First wait between "
                                      "attempts (doubles each attempt).")
    backoff_max: Duration = Field(default=8.0, ge=0, description="Longest wait between "
                                  "attempts.")
    max_retry_after: Duration = Field(default=30.0, ge=0, description="Longest Retry-After "
                                      "honoured.")
    headers: dict[str, str] | None = Field(default=None, description="Extra HTTP headers.")
    verify: bool | str = Field(default=True, description="TLS verification: true, false, or "
                               "a CA bundle path.")


class WebhookActuator(ActuatorBase):
    name = "webhook"
    Options = WebhookOptions
    secret_options = frozenset({"secret"})

    def __init__(self, url: str, secret: SecretStr | str, *, read_url: str | None = None,
                 timeout: float = 5.0, max_attempts: int = 4, backoff_initial: float = 0.5,
                 backoff_max: float = 8.0, max_retry_after: float = 30.0,
                 headers: Mapping[str, str] | None = None, verify: bool | str = True,
                 client: httpx.Client | None = None,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
        if not self._secret.get_secret_value():
            raise _config_error("secret is empty")
        for name, value in (("url", url), ("read_url", read_url)):
            if value is not None and not value.startswith(("http://", "https://")):
                raise _config_error(f"{name} must be an http:// or https:// URL")
        if timeout <= 0 or max_attempts < 1 or backoff_initial < 0 or backoff_max < 0 \
                or max_retry_after < 0:
            raise _config_error("timeout and max_attempts must be positive, delays not negative")
        clash = sorted(h for h in (headers or {}) if h.lower() in _RESERVED)
        if clash:
            raise _config_error(f"headers may not set {', '.join(clash)}")
        self.url, self.read_url = url, read_url
        self.timeout, self.max_attempts = float(timeout), int(max_attempts)
        self.backoff_initial, self.backoff_max = float(backoff_initial), float(backoff_max)
        self.max_retry_after = float(max_retry_after)
        self._headers = dict(headers or {})
        self._owns_client = client is None
        self._client = client or httpx.Client(transport=transport, verify=verify,
                                              follow_redirects=False)
        self._sleep, self._clock = sleep, clock
        self._confirmed: dict[str, FlagState] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        read = display_url(self.read_url) if self.read_url else None
        return (f"WebhookActuator(url={display_url(self.url)!r}, read_url={read!r}, "
                f"secret={self._secret!r})")

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> WebhookActuator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def apply(self, state: FlagState) -> None:
        url = module_url(self.url, state.module)
        where = f"webhook POST {display_url(url)}"
        check_state(state, where)
        body = json.dumps(to_dict(state), sort_keys=True, separators=(",", ":")).encode()
        response = self._send("POST", url, body, where, state.decision_id)
        if not response.is_success:
            raise ActuatorError(self._scrub(f"{where}: HTTP {response.status_code} (not retried)"
                                            f"{_snippet(response)}"))
        if self.read_url is not None:
            check_readback(state, self.read(state.module), where)
        log.info("webhook actuator: %s confirmed by %s", describe(state), display_url(url))
        with self._lock:
            self._confirmed[state.module] = state

    def read(self, module: str) -> FlagState | None:
        if self.read_url is None:
            with self._lock:
                return self._confirmed.get(module)
        url = module_url(self.read_url, module)
        where = f"webhook GET {display_url(url)}"
        response = self._send("GET", url, b"", where, None)
        if response.status_code == 404:
            return None
        if not response.is_success:
            raise ActuatorError(self._scrub(f"{where}: HTTP {response.status_code}"
                                            f"{_snippet(response)}"))
        try:
            data = response.json()
        except ValueError as err:
            raise ActuatorError(f"{where}: response is not JSON") from err
        return from_dict(data, module, where)

    def _signed_headers(self, body: bytes, idempotency_key: str | None) -> dict[str, str]:
        timestamp = str(int(self._clock()))
        headers = {**self._headers, "User-Agent": "rollout-watchdog", TIMESTAMP_HEADER: timestamp,
                   SIGNATURE_HEADER: sign(self._secret.get_secret_value().encode(), timestamp,
                                          body)}
        if body:
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers[IDEMPOTENCY_HEADER] = idempotency_key
        return headers

    def _send(self, method: str, url: str, body: bytes, where: str,
              idempotency_key: str | None) -> httpx.Response:
        """The first response that is not worth retrying; ActuatorError once tries run out."""
        for attempt in range(1, self.max_attempts + 1):
            delay = self._backoff(attempt)
            cause: Exception | None = None
            try:
                response = self._client.request(
                    method, url, content=body, timeout=self.timeout,
                    headers=self._signed_headers(body, idempotency_key))
            except httpx.TimeoutException as err:
                problem, cause = f"timed out after {self.timeout:g}s", err
            except httpx.TransportError as err:
                problem, cause = f"{type(err).__name__}: {err}", err
            except (httpx.HTTPError, httpx.InvalidURL, ValueError) as err:
                raise ActuatorError(self._scrub(f"{where}: {type(err).__name__}: {err}")) from err
            else:
                if response.status_code != 429 and response.status_code < 500:
                    return response
                problem = f"HTTP {response.status_code}{_snippet(response)}"
                retry_after = self._retry_after(response)
                if retry_after is not None:
                    delay = retry_after
            if attempt == self.max_attempts:
                raise ActuatorError(self._scrub(
                    f"{where}: gave up after {attempt} attempt(s): {problem}")) from cause
            log.warning("%s", self._scrub(f"{where}: {problem}; retry {attempt}/"
                                          f"{self.max_attempts - 1} in {delay:.2f}s"))
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        value = value.strip()
        seconds: float
        try:
            seconds = float(value) if value.isdigit() else \
                parsedate_to_datetime(value).timestamp() - self._clock()
        except (TypeError, ValueError, IndexError):
            return None
        return min(max(seconds, 0.0), self.max_retry_after)

    def _scrub(self, text: str) -> str:
        secret = self._secret.get_secret_value()
        return text.replace(secret, "**********") if secret else text


def _snippet(response: httpx.Response, limit: int = 200) -> str:
    try:
        text = " ".join(response.text.split())
    except (UnicodeDecodeError, httpx.ResponseNotRead):
        return ""
    return f": {text[:limit]}" if text else ""
