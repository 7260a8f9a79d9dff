"""The ``slack_webhook`` notifier against a local incoming-webhook endpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from watchdog.clock import FakeClock
from watchdog.errors import ConfigError, NotifierError
from watchdog.journal.store import Journal
from watchdog.notifiers.queue import NotificationQueue
from watchdog.notifiers.slack_webhook import SlackWebhookNotifier


def _hook(slack: Any, settings: Any, **kw: Any) -> SlackWebhookNotifier:
    values = {"webhook_url": SecretStr(slack.webhook_url), **kw}
    return SlackWebhookNotifier(settings(**values), env={})


def test_posts_blocks_and_text(slack: Any, settings: Any, rollback: Any) -> None:
    _hook(slack, settings).send(rollback("rb"))
    (call,) = slack.calls("webhook")
    assert "412.3" in str(call.body["blocks"]) and call.body["text"].startswith("checkout")
    assert "thread_ts" not in call.body  # webhooks cannot thread


def test_webhook_per_severity(slack: Any, settings: Any, note: Any) -> None:
    crit = slack.webhook_url.replace("HOOKsecretPART", "CRIT")
    notifier = _hook(slack, settings, webhook_urls={"critical": SecretStr(crit)})
    assert notifier.channel_for(note("a", severity="critical")) == "critical"
    assert notifier.channel_for(note("a", severity="info")) == "default"
    with pytest.raises(NotifierError):  # the fake has no /CRIT hook: 404, not a crash
        notifier.send(note("a", severity="critical"))
    notifier.send(note("b", severity="info"))
    assert len([r for r in slack.calls("webhook") if r.outcome == "ok"]) == 1


def test_revoked_webhook_logged_once_and_queue_pauses(journal: Journal, slack: Any,
                                                      settings: Any, note: Any,
                                                      clock: FakeClock, Fault: Any,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    slack.fail("webhook", Fault(status=404, body="no_service"))
    notifier = _hook(slack, settings)
    queue = NotificationQueue(journal, notifier, clock=clock)
    for i in range(4):
        queue.enqueue(note(f"k{i}"))
    for _ in range(3):
        queue.drain_once()
        clock.advance(600)
    assert len(slack.calls("webhook")) == 1 and queue.paused and notifier.auth_failures == 1
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and "no_service" in loud[0].getMessage()
    notifier.reconfigure()
    assert queue.drain_once() == 4


def test_webhook_429_and_500_are_retried(slack: Any, settings: Any, note: Any,
                                         Fault: Any) -> None:
    slack.fail("webhook", Fault(status=429, body="rate_limited", headers={"Retry-After": "0"}),
               Fault(status=500, body="rollup_error"))
    _hook(slack, settings).send(note("k"))
    assert [r.outcome for r in slack.calls("webhook")] == ["http 429", "http 500", "ok"]


def test_webhook_url_never_logged(slack: Any, settings: Any, note: Any, Fault: Any,
                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    slack.fail("webhook", Fault(hang=30), Fault(status=400, body="invalid_payload"))
    notifier = _hook(slack, settings, connection_retries=0)
    errors = []
    for key in ("a", "b"):
        with pytest.raises(NotifierError) as caught:
            notifier.send(note(key))
        errors.append(caught.value)
    assert errors[1].permanent and not errors[0].permanent
    texts = [caplog.text, repr(notifier), *map(str, errors), str(notifier.settings)]
    assert caplog.records and not [t for t in texts if "HOOKsecretPART" in t]


def test_webhook_url_from_credentials(tmp_path: Path, slack: Any, settings: Any,
                                      note: Any) -> None:
    (tmp_path / "slack_webhook_url").write_text(slack.webhook_url)
    notifier = SlackWebhookNotifier(settings(), env={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    notifier.send(note("k"))
    assert len(slack.calls("webhook")) == 1
    with pytest.raises(ConfigError, match="no webhook URL"):
        SlackWebhookNotifier(settings(), env={})
