"""The ``slack_webhook`` notifier: Slack incoming webhooks (slack-sdk WebhookClient).

Post only: a webhook cannot thread or edit, so every notification is its own message
(the same blocks as the bot's thread replies). A webhook is bound to one channel, so
"a channel per severity" is a webhook URL per severity (``webhook_urls``), falling back
to ``webhook_url``. The URLs are secrets: never logged, never in a repr or an error.
Error handling mirrors the bot notifier: a revoked or unknown webhook (invalid_token,
no_service, no_team, action_prohibited) is logged once and stops sending until
:meth:`reconfigure`; 429 and 5xx are retried; other 4xx are permanent.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr, ValidationError
from slack_sdk.webhook import WebhookClient

from watchdog.clock import Clock, SystemClock
from watchdog.errors import ConfigError, Issue, NotifierError
from watchdog.notifiers import Notification
from watchdog.notifiers import slack_blocks as blocks
from watchdog.notifiers.base import NotifierBase
from watchdog.notifiers.ratelimit import TokenBucket
from watchdog.notifiers.slack_settings import (
    SLACK_SECRETS,
    Redact,
    SlackSettings,
    load_webhook_url,
    retry_after,
    retry_handlers,
    sdk_logger,
)

log = logging.getLogger(__name__)

AUTH_ERRORS = frozenset({"invalid_token", "no_service", "no_team", "action_prohibited",
                         "team_disabled"})
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format"})


class SlackWebhookNotifier(NotifierBase):
    name = "slack_webhook"
    Options = SlackSettings
    secret_options = SLACK_SECRETS

    def __init__(self, settings: SlackSettings | None = None, *, clock: Clock | None = None,
                 sleep: Callable[[float], None] | None = None,
                 env: Mapping[str, str] | None = None,
                 on_auth_error: Callable[[str], None] | None = None) -> None:
        self._env = env
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self.on_auth_error = on_auth_error
        self._lock = threading.Lock()
        self._disabled: str | None = None
        self.auth_failures = 0
        self.posted = 0
        self._apply(settings or SlackSettings())

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, journal_path: str | None = None,
                    env: Mapping[str, str] | None = None,
                    on_auth_error: Callable[[str], None] | None = None
                    ) -> SlackWebhookNotifier:
        """Build from a config mapping (``journal_path`` unused: webhooks have no threads)."""
        try:
            settings = SlackSettings.model_validate(dict(config))
        except ValidationError as err:
            raise ConfigError([Issue("slack_webhook", 0,
                                     f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
                               for e in err.errors()]) from None
        return cls(settings, env=env, on_auth_error=on_auth_error)

    def _apply(self, settings: SlackSettings) -> None:
        urls: dict[str, SecretStr] = dict(settings.webhook_urls)
        default = load_webhook_url(settings, self._env)
        if default is not None:
            urls["default"] = default
        if not urls:
            raise ConfigError([Issue("slack_webhook", 0, "no webhook URL: set webhook_url, "
                                     "WATCHDOG_SLACK_WEBHOOK_URL or the systemd credential "
                                     "slack_webhook_url")])
        secrets = [u.get_secret_value() for u in urls.values()]
        self._redact = Redact(secrets)
        logger = sdk_logger("watchdog.notifiers.slack_webhook.sdk", secrets)
        self._clients = {route: WebhookClient(url.get_secret_value(), timeout=settings.timeout,
                                              logger=logger,
                                              retry_handlers=retry_handlers(settings))
                         for route, url in urls.items()}
        self.settings = settings
        self._limiter = TokenBucket(settings.rate_per_second, settings.burst, self._clock,
                                    self._sleep)

    def __repr__(self) -> str:
        return (f"SlackWebhookNotifier(routes={sorted(self._clients)!r}, "
                f"disabled={self._disabled!r})")

    @property
    def disabled(self) -> bool:
        return self._disabled is not None

    @property
    def disabled_reason(self) -> str | None:
        return self._disabled

    def reconfigure(self, settings: SlackSettings | None = None) -> None:
        with self._lock:
            self._apply(settings or self.settings)
            self._disabled = None

    def channel_for(self, n: Notification) -> str:
        """The route (a severity name or "default"), never the URL itself."""
        return n.severity if n.severity in self._clients else "default"

    def send(self, notification: Notification) -> None:
        reason = self._disabled
        if reason is not None:
            raise NotifierError(f"Slack webhook notifications are stopped ({reason}); "
                                f"replace the webhook URL and reload", code=reason, auth=True)
        route = self.channel_for(notification)
        client = self._clients.get(route)
        if client is None:
            raise NotifierError(f"no webhook for {route!r}", code="no_webhook", permanent=True)
        msg = blocks.reply(notification, self.settings.dashboard_url)
        self._limiter.acquire(route)
        try:
            response = client.send(text=msg.text, blocks=msg.blocks, unfurl_links=False,
                                   unfurl_media=False)
            if response.status_code == 400 and response.body in BLOCK_ERRORS:
                log.warning("Slack rejected the blocks of a message (%s); sending text only",
                            response.body)
                response = client.send(text=msg.text)
        except (OSError, http.client.HTTPException) as err:
            text = self._redact.scrub(f"{type(err).__name__}: {err}")
            raise NotifierError(f"Slack webhook unreachable: {text}") from None
        if response.status_code == 200:
            self.posted += 1
            return
        raise self._failure(response.status_code, str(response.body or "").strip()[:100],
                            response.headers)

    def _failure(self, status: int, body: str, headers: Mapping[str, Any]) -> NotifierError:
        code = body if body.replace("_", "").isalnum() else f"http_{status}"
        if code in AUTH_ERRORS:
            with self._lock:
                first = self._disabled is None
                if first:
                    self._disabled = code
                    self.auth_failures += 1
            if first:
                log.error("Slack refused the webhook (%s): notifications stay queued and "
                          "nothing is sent until the webhook URL is replaced", code)
                if self.on_auth_error is not None:
                    self.on_auth_error(code)
            return NotifierError(f"Slack refused the webhook ({code})", code=code, auth=True)
        if status == 429:
            wait = retry_after(headers)
            return NotifierError(f"Slack rate limit; retry after {wait or 1:g}s", code=code,
                                 retry_after=wait if wait is not None else 1.0)
        if status >= 500:
            return NotifierError(f"Slack webhook error {code} (HTTP {status})", code=code)
        return NotifierError(f"Slack refused the message: {code} (HTTP {status})", code=code,
                             permanent=True)
