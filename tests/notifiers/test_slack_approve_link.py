"""The approve link (issue 20 item 5): when a module waits for a person's approval, its
Slack message carries a button that opens the web view at that module's Approve button
(``api.public_url`` in watchdog.yaml; no link without it). The notification is made by
the daemon's own code (daemon/ticks.py) from the hold the state machine journals, and
sent by the real notifiers to the local Slack of conftest.py (Web API and webhook)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from watchdog.config.loader import load_texts
from watchdog.daemon import ticks
from watchdog.daemon.config import load_config
from watchdog.errors import ConfigError
from watchdog.journal.records import JournaledDecision
from watchdog.model import Action, Decision
from watchdog.notifiers.slack import SlackNotifier
from watchdog.notifiers.slack_webhook import SlackWebhookNotifier
from watchdog.rollout import approval, machine

PUBLIC = "https://watchdog.example/rollouts/"
RULES = """
modules:
  - name: pay.v2
    metrics: {m: {direction: higher_is_worse}}
    rules: [{name: r, kind: absolute, metric: m, above: 1}]
    plan: {stages: [10, {traffic: 50, approval: true}, 100], hold: 60s}
"""


def waiting_hold(reminder: bool = False) -> JournaledDecision:
    plan = load_texts([("r.yaml", RULES)]).for_module("pay.v2").plan
    cp, _ = machine.start("pay.v2", plan, 0.0)
    cp, _, reasons = approval.waiting(cp, plan, 1, 100.0)
    if reminder:
        cp, _, reasons = approval.waiting(cp, plan, 1, 100.0 + plan.approval_reminder)
    d = Decision("pay.v2", 100.0, Action.HOLD, 10.0, 0, 0, reasons)
    return JournaledDecision(7, d, 100.0, 100.0, None)


def button_urls(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["url"] for b in blocks if b["type"] == "actions" for e in b["elements"]
            if e.get("url")]


def test_a_module_waiting_for_approval_links_to_its_approve_button(
        slack: Any, settings: Any) -> None:
    note = ticks.notification(waiting_hold(), PUBLIC)
    assert note.links["approve"] == PUBLIC + "ui/#approve=pay.v2"
    SlackNotifier(settings()).send(note)
    (post,) = [p for p in slack.posts() if "thread_ts" in p]  # the reply, not the card
    blocks = post["blocks"]
    assert button_urls(blocks) == [PUBLIC + "ui/#approve=pay.v2"]
    assert "Approve" in str(blocks) and PUBLIC + "ui/#approve=pay.v2" in post["text"]
    reminder = ticks.notification(waiting_hold(reminder=True), PUBLIC.rstrip("/"))
    assert reminder.links["approve"] == PUBLIC + "ui/#approve=pay.v2"  # reminders too


def test_the_webhook_message_carries_the_same_button(slack: Any, settings: Any) -> None:
    notifier = SlackWebhookNotifier(settings(webhook_url=SecretStr(slack.webhook_url)),
                                    env={})
    notifier.send(ticks.notification(waiting_hold(), PUBLIC))
    (call,) = slack.calls("webhook")
    assert button_urls(call.body["blocks"]) == [PUBLIC + "ui/#approve=pay.v2"]


def test_no_link_without_a_public_url_or_for_other_decisions(slack: Any,
                                                             settings: Any) -> None:
    assert "approve" not in ticks.notification(waiting_hold()).links
    other = JournaledDecision(8, Decision("pay.v2", 5.0, Action.HOLD, 10.0, 0, 0,
                                          ("r: held",)), 5.0, 5.0, None)
    assert "approve" not in ticks.notification(other, PUBLIC).links
    SlackNotifier(settings()).send(ticks.notification(waiting_hold()))
    (post,) = [p for p in slack.posts() if "thread_ts" in p]  # the reply, not the card
    assert button_urls(post["blocks"]) == [] and "#approve=" not in str(post)


def test_public_url_is_an_optional_http_url_of_the_api_section(tmp_path: Path) -> None:
    path = tmp_path / "watchdog.yaml"
    base = ("source: {plugin: file, options: {path: x.jsonl}}\nactuators: [{plugin: file}]\n"
            "modules: [{name: checkout}]\n")
    path.write_text(base + "api: {enabled: true, public_url: 'https://w.example/x/'}\n")
    assert load_config(str(path)).config.api.public_url == "https://w.example/x/"
    path.write_text(base)
    assert load_config(str(path)).config.api.public_url is None
    path.write_text(base + "api:\n  public_url: ftp://w.example\n")
    try:
        load_config(str(path))
    except ConfigError as err:
        (issue,) = err.issues
        assert str(issue).startswith(f"{path}:5: api.public_url") and "http" in str(issue)
    else:
        raise AssertionError("ftp:// accepted")


def test_a_wait_for_approval_says_so_in_the_reply_and_on_the_card(slack: Any,
                                                                 settings: Any) -> None:
    # the reply's advice names the approve command (not "nothing to do yet"), and the
    # rollout's status card reads "awaiting approval" (it kept "in progress" before)
    notifier = SlackNotifier(settings())
    notifier.send(ticks.notification(JournaledDecision(6, Decision(
        "pay.v2", 0.0, Action.ADVANCE, 10.0, None, 0, ("started",)), 0.0, 0.0, None)))
    notifier.send(ticks.notification(waiting_hold(), PUBLIC))
    reply = [p for p in slack.posts() if "thread_ts" in p][-1]  # the hold's (the start's first)
    advice = str(reply["blocks"])
    assert "rollout-watchdog approve" in advice and "Nothing to do yet" not in advice
    cards = [c.body for c in slack.calls("chat.update")]
    assert cards and "awaiting approval" in cards[-1]["text"], cards
    other = JournaledDecision(8, Decision("pay.v2", 5.0, Action.HOLD, 10.0, 0, 0,
                                          ("r: held",)), 5.0, 5.0, None)
    before = len(slack.calls("chat.update"))
    notifier.send(ticks.notification(other))
    assert len(slack.calls("chat.update")) == before  # another hold leaves the card as it is


def test_a_step_back_is_critical_as_a_rollback_is() -> None:
    # the failure policy cutting V2 back a stage reaches the channel (critical), not only
    # the info thread; every action has a verb and a severity of its own or "info"
    for action in Action:
        d = Decision("pay.v2", 5.0, action, 10.0, 1, 0, ("why",))
        note = ticks.notification(JournaledDecision(9, d, 5.0, 5.0, None))
        want = {Action.ROLLBACK: "critical", Action.ABORT: "critical",
                Action.STEP_BACK: "critical", Action.HOLD: "warning",
                Action.PAUSE: "warning"}.get(action, "info")
        assert note.severity == want, action
