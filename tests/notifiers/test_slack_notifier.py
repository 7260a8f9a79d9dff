"""The ``slack`` notifier against a local Slack: threads, card edits, retries, auth, secrets."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from watchdog.clock import FakeClock
from watchdog.errors import ConfigError, NotifierError
from watchdog.journal.store import Journal
from watchdog.notifiers.slack import SlackNotifier
from watchdog.notifiers.slack_ledger import SqliteLedger
from watchdog.notifiers.slack_settings import SlackSettings, load_token

TOKEN = "xoxb-1234-5678-TOPSECRETtoken"


def _text(blocks: Any) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_rollout_gets_one_parent_threaded_updates_and_card_edits(slack: Any, settings: Any,
                                                                 note: Any, rollback: Any,
                                                                 journal: Journal) -> None:
    notifier = SlackNotifier(settings(), ledger=SqliteLedger(journal.db))
    notifier.send(note("a1", action="advance", stage=1, traffic=5.0))
    notifier.send(note("h1", action="hold", stage=1, traffic=5.0))
    notifier.send(rollback("rb1"))
    posts = slack.posts()
    parent, reply1, reply2 = posts[0], posts[1], posts[2]
    assert parent["channel"] == "#rollouts" and "thread_ts" not in parent
    parent_ts = slack.messages["CROLLOUTS"][0]["ts"]
    assert reply1["thread_ts"] == parent_ts and reply2["thread_ts"] == parent_ts
    assert reply1["channel"] == "CROLLOUTS"  # replies go to the id Slack returned
    # the rollback is critical: its own channel gets a (final) card and the reply, broadcast
    crit = slack.messages["CROLLOUTSCRITICAL"]
    assert len(crit) == 2 and "ROLLED BACK" in crit[0]["text"]
    assert crit[1]["thread_ts"] == crit[0]["ts"] and crit[1]["reply_broadcast"] is True
    # and the card in #rollouts is edited in place, by channel id and ts
    assert [(u["channel"], u["ts"]) for u in slack.updates] == [("CROLLOUTS", parent_ts)]
    assert "ROLLED BACK" in slack.updates[0]["text"]
    assert "ROLLED BACK" in _text(slack.messages["CROLLOUTS"][0]["blocks"])
    # the rollback closed the rollout: the next notification opens a new parent
    notifier.send(note("a2", action="advance", at=1_700_001_000.0))
    newest = slack.messages["CROLLOUTS"][-2:]
    assert "thread_ts" not in newest[0] and newest[1]["thread_ts"] == newest[0]["ts"] != parent_ts


def test_promotion_edits_the_card(slack: Any, settings: Any, note: Any) -> None:
    notifier = SlackNotifier(settings())
    notifier.send(note("s1", module="search", action="advance", stage=5, traffic=90.0))
    notifier.send(note("s2", module="search", action="promote", stage=6, traffic=100.0,
                       reasons=("healthy for the whole plan",)))
    assert len(slack.updates) == 1
    card = slack.updates[0]
    assert "PROMOTED" in card["text"] and "100 % V2" in _text(card["blocks"])
    assert len(slack.posts()) == 3  # card, two replies: a promotion is not a new parent


def test_blocks_carry_the_numbers_and_a_text_fallback(slack: Any, settings: Any,
                                                      rollback: Any) -> None:
    SlackNotifier(settings()).send(rollback("rb"))
    reply = slack.posts()[-1]
    blocks = _text(reply["blocks"])
    for expected in ("412.3", "250.1", "300.1", "+64.9%", "z = 5.214", "p = 9.4e-08",
                     "n = 120 V2 / 2000 ref", "baseline #7", "`checkout`", "2 · 25 %",
                     "Held for", "13m 30s", "critical rule latency-p95-vs-baseline fired",
                     "https://runbooks.example/rollout-watchdog/latency",
                     "https://grafana.example/d/rollouts?var-module=checkout&from=",
                     "What to do", "error-rate (ok)"):
        assert expected in blocks, expected
    assert reply["text"].startswith("checkout rolled back at 25 %")
    assert "observed 412.3" in reply["text"] and "Runbook: <https://" in reply["text"]


def test_channel_per_severity(slack: Any, settings: Any, note: Any) -> None:
    notifier = SlackNotifier(settings(channels={"warning": "#rollouts-warn",
                                                "critical": "#pager"}))
    notifier.send(note("i", module="a", severity="info"))
    notifier.send(note("w", module="b", severity="warning", kind="alert_firing", action=None))
    notifier.send(note("c", module="c", severity="critical", kind="alert_firing", action=None))
    assert sorted(slack.messages) == ["CPAGER", "CROLLOUTS", "CROLLOUTSWARN"]


def test_429_retry_after_is_honoured(Fault: Any, slack: Any, settings: Any,
        note: Any) -> None:
    slack.fail("chat.postMessage", Fault(status=429, error="ratelimited",
                                         headers={"Retry-After": "1"}))
    SlackNotifier(settings()).send(note("k"))
    attempts = slack.calls("chat.postMessage")
    assert [a.outcome for a in attempts[:2]] == ["http 429", "ok"]
    assert attempts[1].t - attempts[0].t >= 1.0  # slept Retry-After before retrying
    assert len(slack.posts()) == 2  # card + reply, each once


def test_long_retry_after_is_left_to_the_queue(Fault: Any, slack: Any, settings: Any,
        note: Any) -> None:
    slack.fail("chat.postMessage", Fault(status=429, error="ratelimited",
                                         headers={"Retry-After": "30"}))
    with pytest.raises(NotifierError) as caught:
        SlackNotifier(settings()).send(note("k"))
    assert caught.value.retry_after == 30 and not caught.value.permanent
    assert len(slack.calls("chat.postMessage")) == 1  # no sleeping 30 s in the sender


def test_server_errors_are_retried_then_succeed(Fault: Any, slack: Any, settings: Any,
        note: Any) -> None:
    slack.fail("chat.postMessage", Fault(status=500), Fault(status=503))
    SlackNotifier(settings(server_error_retries=2)).send(note("k"))
    outcomes = [r.outcome for r in slack.calls("chat.postMessage")]
    assert outcomes == ["http 500", "http 503", "ok", "ok"]


def test_persistent_server_errors_are_transient_failures(Fault: Any, slack: Any, settings: Any,
                                                         note: Any) -> None:
    slack.fail("chat.postMessage", *[Fault(status=500)] * 3)
    with pytest.raises(NotifierError) as caught:
        SlackNotifier(settings(server_error_retries=2)).send(note("k"))
    assert not caught.value.permanent and not caught.value.auth
    assert len(slack.calls("chat.postMessage")) == 3


def test_invalid_auth_is_logged_once_counted_and_stops_calls(slack: Any, settings: Any,
                                                             note: Any,
                                                             caplog: pytest.LogCaptureFixture
                                                             ) -> None:
    seen: list[str] = []
    notifier = SlackNotifier(settings(token=SecretStr("xoxb-wrong")), on_auth_error=seen.append)
    caplog.set_level(logging.DEBUG)
    for i in range(5):
        with pytest.raises(NotifierError) as caught:
            notifier.send(note(f"k{i}"))
        assert caught.value.auth
    assert len(slack.requests) == 1  # no retry storm
    assert notifier.auth_failures == 1 and seen == ["invalid_auth"] and notifier.disabled
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1 and "invalid_auth" in loud[0].getMessage()
    notifier.reconfigure(token=SecretStr(TOKEN))
    notifier.send(note("k9"))
    assert not notifier.disabled and len(slack.posts()) == 2


@pytest.mark.parametrize("code", ["token_revoked", "account_inactive"])
def test_other_auth_errors_also_stop_sending(Fault: Any, slack: Any, settings: Any,
        note: Any,
                                             code: str) -> None:
    slack.fail("chat.postMessage", Fault(error=code))
    notifier = SlackNotifier(settings())
    for _ in range(3):
        with pytest.raises(NotifierError):
            notifier.send(note("k"))
    assert len(slack.requests) == 1 and notifier.disabled_reason == code


def test_permanent_errors_and_block_fallback(Fault: Any, slack: Any, settings: Any,
        note: Any) -> None:
    slack.fail("chat.postMessage", Fault(error="channel_not_found"))
    notifier = SlackNotifier(settings())
    with pytest.raises(NotifierError) as caught:
        notifier.send(note("k"))
    assert caught.value.permanent and caught.value.code == "channel_not_found"
    slack.fail("chat.postMessage", Fault(error="invalid_blocks"))
    notifier.send(note("k"))  # retried at once without blocks
    assert "blocks" not in slack.posts()[0] and "blocks" in slack.posts()[1]


def test_deleted_card_does_not_block_the_rollback_reply(Fault: Any, slack: Any, settings: Any,
        note: Any,
                                                        rollback: Any) -> None:
    notifier = SlackNotifier(settings(channels={}))
    notifier.send(note("a"))
    slack.fail("chat.update", Fault(error="message_not_found"))
    notifier.send(rollback("rb"))  # no exception: the reply in the thread says it all
    assert "ROLLED BACK" not in slack.messages["CROLLOUTS"][0]["text"]
    assert slack.posts()[-1]["thread_ts"] == slack.messages["CROLLOUTS"][0]["ts"]


def test_token_sources(tmp_path: Path, slack: Any, settings: Any) -> None:
    base = settings(token=None)
    assert load_token(base, {"WATCHDOG_SLACK_TOKEN": TOKEN}) == SecretStr(TOKEN)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "slack_token").write_text(TOKEN + "\n")
    env = {"CREDENTIALS_DIRECTORY": str(creds), "WATCHDOG_SLACK_TOKEN": "xoxb-env"}
    assert load_token(base, env) == SecretStr(TOKEN)  # the credential wins over the env
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}  ")
    from_file = settings(token=None, token_file=token_file)
    assert SlackNotifier(from_file, env={}).verify()["team"] == "Acme"  # auth.test with it
    with pytest.raises(ConfigError) as missing:
        SlackNotifier(settings(token=None, token_file=tmp_path / "nope"), env={})
    assert "nope" in str(missing.value)
    with pytest.raises(ConfigError):
        SlackNotifier(base, env={})


def test_token_never_reaches_logs_reprs_or_errors(Fault: Any, slack: Any, settings: Any,
        note: Any,
                                                  rollback: Any,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="slack_sdk")  # restored after the test
    texts: list[str] = []
    notifier = SlackNotifier(settings(server_error_retries=1))
    texts += [repr(notifier), repr(notifier.settings), str(notifier.settings.model_dump())]
    notifier.send(note("a"))
    slack.fail("chat.postMessage", Fault(status=500), Fault(status=500), Fault(hang=30),
               Fault(error="token_revoked"))
    for key in ("b", "c", "d"):
        with pytest.raises(NotifierError) as caught:
            notifier.send(rollback(key))
        texts += [str(caught.value), repr(caught.value), str(caught.value.__cause__)]
    assert notifier.disabled  # the last one refused the token
    texts += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert len(caplog.records) >= 2  # something was logged: the check below means something
    assert not [t for t in texts if TOKEN in t or "TOPSECRET" in t]


def test_settings_validate_severities_and_template() -> None:
    with pytest.raises(ValueError, match="unknown severities"):
        SlackSettings(channels={"sev1": "#x"})
    with pytest.raises(ValueError, match="dashboard_url"):
        SlackSettings(dashboard_url="https://g/{nope}")
    with pytest.raises(ConfigError, match="channels"):
        SlackNotifier.from_config({"channels": {"sev1": "#x"}}, env={})


def test_rate_limit_sleeps_on_the_injected_clock(slack: Any, settings: Any, note: Any) -> None:
    clock = FakeClock(0)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    slack.stamp = clock.now
    notifier = SlackNotifier(settings(rate_per_second=1.0), clock=clock, sleep=sleep)
    for i in range(3):
        notifier.send(note(f"k{i}"))
    times = [r.fake_t for r in slack.calls("chat.postMessage")]
    assert times == [0.0, 1.0, 2.0, 3.0]  # card + 3 replies, one a second
    assert sum(sleeps) == pytest.approx(3.0)


def test_building_the_notifier_opens_no_journal(tmp_path: Path, settings: Any) -> None:
    # run --check builds every notifier and promises to open no journal: the Slack
    # ledger's connection is opened when the first message needs it
    from watchdog.notifiers.slack_ledger import SqliteLedger

    db = tmp_path / "journal.db"
    ledger = SqliteLedger.for_path(str(db))
    assert not db.exists()
    assert ledger.threads() == [] and db.exists()
