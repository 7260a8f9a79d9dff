"""The ``slack`` notifier: a bot token, chat.postMessage and chat.update (slack-sdk WebClient).

Per module rollout and channel there is one parent message, a status card; every
notification is a reply in its thread (critical ones also shown in the channel), and the
card is edited in place when the rollout advances, pauses, resumes, rolls back, aborts or
is promoted. A rollback or promotion closes the thread: the module's next notification
opens a new one. Channels are chosen per severity.

Failures become :class:`NotifierError` for the queue to act on. 429s with a short
Retry-After are retried in the client (slack-sdk's handler); longer ones come back with
``retry_after``. 500/503 and connection resets are retried in the client, then by the
queue. When Slack refuses the token (invalid_auth, token_revoked, account_inactive, ...)
the notifier logs it once, counts it, calls ``on_auth_error`` and stops calling Slack
until :meth:`reconfigure`; notifications stay queued meanwhile.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import SecretStr, ValidationError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from watchdog.clock import Clock, SystemClock
from watchdog.errors import ConfigError, Issue, NotifierError
from watchdog.notifiers import Notification
from watchdog.notifiers import slack_blocks as blocks
from watchdog.notifiers.base import NotifierBase
from watchdog.notifiers.ratelimit import TokenBucket
from watchdog.notifiers.slack_ledger import MemoryLedger, SlackLedger, SqliteLedger, Thread
from watchdog.notifiers.slack_settings import (
    SLACK_SECRETS,
    SlackSettings,
    load_token,
    retry_after,
    retry_handlers,
    sdk_logger,
)

log = logging.getLogger(__name__)

AUTH_ERRORS = frozenset({
    "not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired",
    "no_permission", "missing_scope", "not_allowed_token_type", "ekm_access_denied",
    "team_access_not_granted", "org_login_required", "two_factor_setup_required"})
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable",
                              "request_timeout", "ratelimited", "rate_limited"})
BLOCK_ERRORS = frozenset({"invalid_blocks", "invalid_blocks_format"})
EDIT_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
TERMINAL_ACTIONS = frozenset({"rollback", "promote", "abort"})
CARD_ACTIONS = TERMINAL_ACTIONS | {"advance", "pause", "resume", "step_back",
                                        "approve"}


class SlackNotifier(NotifierBase):
    name = "slack"
    Options = SlackSettings
    secret_options = SLACK_SECRETS

    def __init__(self, settings: SlackSettings | None = None, *, token: SecretStr | None = None,
                 ledger: SlackLedger | None = None, clock: Clock | None = None,
                 sleep: Callable[[float], None] | None = None,
                 env: Mapping[str, str] | None = None,
                 on_auth_error: Callable[[str], None] | None = None) -> None:
        self.settings = settings or SlackSettings()
        self._ledger: SlackLedger = ledger if ledger is not None else MemoryLedger()
        self._clock = clock or SystemClock()
        self._sleep = sleep
        self._limiter = TokenBucket(self.settings.rate_per_second, self.settings.burst,
                                    self._clock, sleep)
        self.on_auth_error = on_auth_error
        self._lock = threading.Lock()
        self._disabled: str | None = None
        self.auth_failures = 0  # times Slack refused the token (logged once each)
        self.posted = 0
        self.updated = 0
        self._client = self._build_client(token or load_token(self.settings, env))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, journal_path: str | None = None,
                    env: Mapping[str, str] | None = None,
                    on_auth_error: Callable[[str], None] | None = None) -> SlackNotifier:
        """Build from a config mapping; threads are kept in the journal at ``journal_path``."""
        try:
            settings = SlackSettings.model_validate(dict(config))
        except ValidationError as err:
            raise ConfigError([Issue("slack", 0, f"{'.'.join(map(str, e['loc']))}: {e['msg']}")
                               for e in err.errors()]) from None
        ledger = SqliteLedger.for_path(journal_path) if journal_path else None
        return cls(settings, ledger=ledger, env=env, on_auth_error=on_auth_error)

    def _build_client(self, token: SecretStr | None) -> WebClient:
        if token is None:
            raise ConfigError([Issue("slack", 0, "no Slack bot token: set WATCHDOG_SLACK_TOKEN,"
                                     " token_file, or the systemd credential slack_token")])
        secret = token.get_secret_value()
        return WebClient(token=secret, base_url=self.settings.base_url,
                         timeout=self.settings.timeout,
                         logger=sdk_logger("watchdog.notifiers.slack.sdk", [secret]),
                         retry_handlers=retry_handlers(self.settings))

    def __repr__(self) -> str:
        return (f"SlackNotifier(default_channel={self.settings.default_channel!r}, "
                f"channels={self.settings.channels!r}, disabled={self._disabled!r})")

    # state for /metrics and reloads ----------------------------------------------------

    @property
    def disabled(self) -> bool:
        return self._disabled is not None

    @property
    def disabled_reason(self) -> str | None:
        return self._disabled

    def reconfigure(self, settings: SlackSettings | None = None, *,
                    token: SecretStr | None = None, env: Mapping[str, str] | None = None
                    ) -> None:
        """New settings and/or token (re-read from its source when not given); resumes."""
        settings = settings or self.settings
        client = self._build_client(token or load_token(settings, env))
        with self._lock:
            self.settings, self._client, self._disabled = settings, client, None
            self._limiter = TokenBucket(settings.rate_per_second, settings.burst,
                                        self._clock, self._sleep)

    def stats(self) -> dict[str, float]:
        """Counters for /metrics."""
        return {"posted": self.posted, "updated": self.updated,
                "auth_failures": self.auth_failures, "disabled": float(self.disabled),
                "rate_limit_wait_seconds": self._limiter.waited}

    def channel_for(self, n: Notification) -> str:
        return self.settings.channel_for(n.severity)

    def verify(self) -> dict[str, Any]:
        """auth.test: who the token is (team, bot user); raises NotifierError when refused."""
        try:
            data = self._client.auth_test().data
        except SlackApiError as err:
            raise self._failure(err) from err
        except (OSError, http.client.HTTPException) as err:
            raise NotifierError(f"Slack unreachable: {type(err).__name__}: {err}") from err
        return dict(data) if isinstance(data, dict) else {}

    # sending ---------------------------------------------------------------------------

    def send(self, notification: Notification) -> None:
        reason = self._disabled
        if reason is not None:
            raise NotifierError(f"Slack notifications are stopped: the token was refused "
                                f"({reason}); replace it and reload", code=reason, auth=True)
        try:
            self._deliver(notification, self.channel_for(notification))
        except SlackApiError as err:
            raise self._failure(err) from err
        except (OSError, http.client.HTTPException) as err:  # timeouts, refused, reset
            raise NotifierError(f"Slack unreachable: {type(err).__name__}: {err}") from err

    def _deliver(self, n: Notification, channel: str) -> None:
        dash = self.settings.dashboard_url
        terminal = n.kind == "decision" and n.action in TERMINAL_ACTIONS
        threads = [t for t in (self._ledger.open_thread(n.module, c) for c in self._channels())
                   if t is not None]
        thread = next((t for t in threads if t.channel == channel), None)
        if thread is None:
            card = blocks.parent(n, n.at, dash, final=terminal)
            data = self._post(channel, card)
            thread = Thread(n.module, channel, str(data["channel"]), str(data["ts"]), n.at,
                            n.key)
            self._ledger.start_thread(thread)
            threads.append(thread)
        if self._ledger.step(n.key, "reply") is None:
            broadcast = self.settings.broadcast_critical and n.severity == "critical"
            data = self._post(channel, blocks.reply(n, dash), thread.channel_id, thread.ts,
                              broadcast)
            self._ledger.record_step(n.key, "reply", str(data["channel"]), str(data["ts"]),
                                     n.at)
        if n.kind == "decision" and (n.action in CARD_ACTIONS or blocks.awaits_approval(n)):
            for t in threads:
                step = f"card:{t.channel}"
                if t.opened_by != n.key and self._ledger.step(n.key, step) is None:
                    self._edit_card(t, blocks.parent(n, t.started_at, dash, final=terminal))
                    self._ledger.record_step(n.key, step, t.channel_id, t.ts, n.at)
        if terminal:
            for t in threads:
                self._ledger.close_thread(t, n.at)

    def _channels(self) -> list[str]:
        return sorted({self.settings.default_channel, *self.settings.channels.values()})

    def _post(self, channel: str, msg: blocks.SlackMessage, target: str | None = None,
              thread_ts: str | None = None, broadcast: bool = False) -> dict[str, Any]:
        self._limiter.acquire(channel)  # 1 message per second per channel
        args: dict[str, Any] = {"channel": target or channel, "text": msg.text,
                                "unfurl_links": False, "unfurl_media": False}
        if thread_ts is not None:
            args.update(thread_ts=thread_ts, reply_broadcast=broadcast)
        try:
            response = self._client.chat_postMessage(blocks=msg.blocks, **args)
        except SlackApiError as err:
            if _code(err) not in BLOCK_ERRORS:
                raise
            log.warning("Slack rejected the blocks of a message (%s); sending text only",
                        _code(err))
            response = self._client.chat_postMessage(**args)
        self.posted += 1
        data = response.data
        return data if isinstance(data, dict) else {}

    def _edit_card(self, thread: Thread, card: blocks.SlackMessage) -> None:
        try:
            self._client.chat_update(channel=thread.channel_id, ts=thread.ts, text=card.text,
                                     blocks=card.blocks)
            self.updated += 1
        except SlackApiError as err:
            if _code(err) not in EDIT_GONE:
                raise
            log.warning("cannot edit the rollout card of %s in %s (%s); the thread has the "
                        "update", thread.module, thread.channel, _code(err))

    def _failure(self, err: SlackApiError) -> NotifierError:
        status = int(getattr(err.response, "status_code", 0) or 0)
        code = _code(err) or f"http_{status}"
        if code in AUTH_ERRORS:
            self._disable(code)
            return NotifierError(f"Slack refused the token ({code})", code=code, auth=True)
        if status == 429 or code in ("ratelimited", "rate_limited"):
            wait = retry_after(getattr(err.response, "headers", None))
            return NotifierError(f"Slack rate limit ({code}); retry after {wait or 1:g}s",
                                 code=code, retry_after=wait if wait is not None else 1.0)
        if status >= 500 or code in TRANSIENT_ERRORS:
            return NotifierError(f"Slack error {code} (HTTP {status})", code=code)
        return NotifierError(f"Slack refused the message: {code}", code=code, permanent=True)

    def _disable(self, code: str) -> None:
        with self._lock:
            if self._disabled is not None:
                return
            self._disabled = code
            self.auth_failures += 1
        log.error("Slack refused the bot token (%s): notifications stay queued and nothing is "
                  "sent until the token is replaced and the notifier reconfigured", code)
        if self.on_auth_error is not None:
            self.on_auth_error(code)


def _code(err: SlackApiError) -> str:
    data = getattr(err.response, "data", None)
    return str(data.get("error") or "") if isinstance(data, dict) else ""
