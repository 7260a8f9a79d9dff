"""Slack settings, where the bot token comes from, and the slack-sdk plumbing we share.

The token is read, in this order, from: the ``token`` setting, the file named by
``token_file``, the systemd credential ``$CREDENTIALS_DIRECTORY/slack_token``
(``LoadCredential=slack_token:...``), and the environment variable
``WATCHDOG_SLACK_TOKEN``. It is kept as a ``SecretStr``: never logged, never in a repr or
an exception message. Records from slack-sdk pass through :class:`Redact` as well.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from watchdog.config.schema import Duration
from watchdog.errors import ConfigError, Issue

TOKEN_ENV = "WATCHDOG_SLACK_TOKEN"
CREDENTIAL_NAME = "slack_token"
WEBHOOK_ENV = "WATCHDOG_SLACK_WEBHOOK_URL"
WEBHOOK_CREDENTIAL = "slack_webhook_url"
SEVERITIES = ("info", "warning", "critical")
DASHBOARD_FIELDS = {"module": "checkout", "at": 0, "from_ms": 0, "to_ms": 0, "stage": 0,
                    "traffic_percent": 0, "key": "k"}


SLACK_SECRETS = frozenset({"token", "webhook_url", "webhook_urls"})


class SlackSettings(BaseModel):
    """Settings of the ``slack`` and ``slack_webhook`` notifiers (all optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr | None = Field(default=None, description="slack: the bot token "
                                    "(secret; else token_file, the credential slack_token, "
                                    "or WATCHDOG_SLACK_TOKEN).")
    token_file: Path | None = Field(default=None, description="slack: a file holding the "
                                    "bot token.")
    webhook_url: SecretStr | None = Field(default=None, description="slack_webhook: the "
                                          "incoming-webhook URL (secret; else the credential "
                                          "slack_webhook_url or WATCHDOG_SLACK_WEBHOOK_URL).")
    webhook_urls: dict[str, SecretStr] = Field(default_factory=dict, description=(
        "slack_webhook: a URL per severity (info, warning, critical; secret)."))
    default_channel: str = Field(default="#rollouts", description="slack: the channel.")
    channels: dict[str, str] = Field(default_factory=dict, description="slack: a channel "
                                     "per severity (info, warning, critical).")
    dashboard_url: str | None = Field(default=None, description="Link template; {module} "
                                      "{at} {from_ms} {to_ms} {stage} {traffic_percent} {key}.")
    base_url: str = Field(default="https://slack.com/api/", description="slack: the Web "
                          "API's base URL.")
    timeout: int = Field(default=10, ge=1, description="One request's timeout, seconds.")
    rate_per_second: float = Field(default=1.0, gt=0, description="Messages per second "
                                   "(Slack allows about 1 per channel).")
    burst: int = Field(default=1, ge=1, description="Messages sent at once before the rate "
                       "applies.")
    rate_limit_retries: int = Field(default=2, ge=0, description="Retries after HTTP 429.")
    max_inline_wait: Duration = Field(default=5.0, ge=0, description="Longest Retry-After "
                                      "waited for in place; longer: requeued.")
    server_error_retries: int = Field(default=2, ge=0, description="Retries after HTTP 5xx.")
    connection_retries: int = Field(default=2, ge=0, description="Retries after a "
                                    "connection error.")
    retry_backoff: Duration = Field(default=0.5, ge=0, description="First wait between "
                                    "retries.")
    broadcast_critical: bool = Field(default=True, description="slack: critical thread "
                                     "replies are also shown in the channel.")

    @field_validator("channels", "webhook_urls")
    @classmethod
    def _known_severities(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(SEVERITIES))
        if unknown:
            raise ValueError(f"unknown severities {unknown}; use {list(SEVERITIES)}")
        return value

    @field_validator("dashboard_url")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                value.format_map(DASHBOARD_FIELDS)
            except (KeyError, IndexError, ValueError) as err:
                raise ValueError(f"dashboard_url template: unknown field {err}; "
                                 f"use {sorted(DASHBOARD_FIELDS)}") from None
        return value

    def channel_for(self, severity: str) -> str:
        return self.channels.get(severity, self.default_channel)


def load_token(settings: SlackSettings, env: Mapping[str, str] | None = None
               ) -> SecretStr | None:
    """The bot token from settings, token file, systemd credential or environment."""
    env = os.environ if env is None else env
    if settings.token is not None:
        return settings.token
    if settings.token_file is not None:
        return _read_secret(settings.token_file)
    folder = env.get("CREDENTIALS_DIRECTORY")
    if folder and (Path(folder) / CREDENTIAL_NAME).is_file():
        return _read_secret(Path(folder) / CREDENTIAL_NAME)
    value = env.get(TOKEN_ENV, "").strip()
    return SecretStr(value) if value else None


def load_webhook_url(settings: SlackSettings, env: Mapping[str, str] | None = None
                     ) -> SecretStr | None:
    """The default webhook URL: setting, systemd credential ``slack_webhook_url``, or env."""
    env = os.environ if env is None else env
    if settings.webhook_url is not None:
        return settings.webhook_url
    folder = env.get("CREDENTIALS_DIRECTORY")
    if folder and (Path(folder) / WEBHOOK_CREDENTIAL).is_file():
        return _read_secret(Path(folder) / WEBHOOK_CREDENTIAL)
    value = env.get(WEBHOOK_ENV, "").strip()
    return SecretStr(value) if value else None


def _read_secret(path: Path) -> SecretStr:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ConfigError([Issue(str(path), 0, f"cannot read the Slack secret: "
                                               f"{err.strerror or type(err).__name__}")]
                          ) from None
    if not value:
        raise ConfigError([Issue(str(path), 0, "the Slack secret file is empty")])
    return SecretStr(value)


class CappedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler (sleeps Retry-After, then retries), for short waits only.

    A longer Retry-After is not slept in the sender thread: the call fails and the
    queue schedules the message for after the wait, so other channels keep moving.
    """

    def __init__(self, max_retry_count: int, max_wait: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait

    def _can_retry(self, *, state: RetryState, request: HttpRequest,
                   response: HttpResponse | None = None, error: Exception | None = None
                   ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response,
                                  error=error) or response is None:
            return False
        wait = retry_after(response.headers)
        return wait is None or wait <= self.max_wait


def retry_handlers(settings: SlackSettings) -> list[RetryHandler]:
    backoff = BackoffRetryIntervalCalculator(backoff_factor=settings.retry_backoff)
    return [
        ConnectionErrorRetryHandler(max_retry_count=settings.connection_retries,
                                    interval_calculator=backoff),
        CappedRateLimitRetryHandler(settings.rate_limit_retries, settings.max_inline_wait),
        ServerErrorRetryHandler(max_retry_count=settings.server_error_retries,
                                interval_calculator=backoff),
    ]


def retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """The Retry-After header in seconds (slack-sdk gives values or lists of values)."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            first = value[0] if isinstance(value, list | tuple) and value else value
            try:
                return max(0.0, float(first))
            except (TypeError, ValueError):
                return None
    return None


class Redact(logging.Filter):
    """Replaces secrets in log records (slack-sdk's own messages included)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = self.scrub(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True


def sdk_logger(name: str, secrets: Iterable[str]) -> logging.Logger:
    """A logger for slack-sdk clients: WARNING and up only (slack-sdk logs request URLs and
    bodies at DEBUG whenever its logger's own level is unset), secrets redacted."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.WARNING)
    redact = next((f for f in logger.filters if isinstance(f, Redact)), None)
    if redact is None:
        redact = Redact()
        logger.addFilter(redact)
    redact.secrets.update(s for s in secrets if s)
    return logger
