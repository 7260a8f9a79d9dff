"""One suite over every notifier: the Protocol, entry points, one delivery per send."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from watchdog.notifiers import Notifier
from watchdog.notifiers.log import LogNotifier, format_line
from watchdog.notifiers.slack import SlackNotifier
from watchdog.notifiers.slack_webhook import SlackWebhookNotifier
from watchdog.plugins import load

Factory = Callable[[Any, Any], tuple[Notifier, Callable[[], int]]]


def _log(slack: Any, settings: Any) -> tuple[Notifier, Callable[[], int]]:
    notifier = LogNotifier()
    return notifier, lambda: notifier.sent


def _slack(slack: Any, settings: Any) -> tuple[Notifier, Callable[[], int]]:
    return SlackNotifier(settings()), lambda: len(
        [p for p in slack.posts() if p.get("thread_ts")])


def _webhook(slack: Any, settings: Any) -> tuple[Notifier, Callable[[], int]]:
    notifier = SlackWebhookNotifier(settings(webhook_url=SecretStr(slack.webhook_url)), env={})
    return notifier, lambda: len([r for r in slack.calls("webhook") if r.outcome == "ok"])


@pytest.mark.parametrize("factory", [_log, _slack, _webhook], ids=["log", "slack", "webhook"])
def test_every_notifier_delivers_each_send_once(factory: Factory, slack: Any, settings: Any,
                                                note: Any, rollback: Any) -> None:
    notifier, delivered = factory(slack, settings)
    assert isinstance(notifier.name, str) and notifier.name
    notifier.send(note("a"))
    notifier.send(rollback("b"))
    assert delivered() == 2
    assert "TOPSECRET" not in repr(notifier) and "HOOKsecret" not in repr(notifier)


@pytest.mark.parametrize(("name", "cls"), [("log", LogNotifier), ("slack", SlackNotifier),
                                           ("slack_webhook", SlackWebhookNotifier)])
def test_registered_as_entry_points(name: str, cls: type) -> None:
    assert load("watchdog.notifiers", name) is cls


def test_log_notifier_writes_one_line_at_the_severity_level(
        rollback: Any, note: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watchdog.notifications")
    notifier = LogNotifier.from_config({})
    notifier.send(rollback("rb", title="checkout\nrolled back"))
    notifier.send(note("a", severity="info"))
    assert [r.levelno for r in caplog.records] == [logging.ERROR, logging.INFO]
    line = caplog.records[0].getMessage()
    assert "\n" not in line and 'title="checkout rolled back"' in line
    assert 'rule="latency-p95-vs-baseline(observed=412.3 reference=250.1 limit=300.1' in line
    assert "error-rate" not in line  # only the rules that fired
    assert line.endswith("key=rb") and "action=rollback" in line and "traffic=25%" in line


def test_log_line_quotes_values(note: Any) -> None:
    line = format_line(note("k", module='we"ird', reasons=("a=b",)))
    assert 'module="we\\"ird"' in line and 'reasons="a=b"' in line
