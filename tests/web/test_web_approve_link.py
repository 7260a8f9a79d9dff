"""The web view opened from a Slack approve link (``/ui/#approve=<module>``, made by
daemon/ticks.py when ``api.public_url`` is set): in a real headless Chromium against the
real daemon of tests/web/conftest.py, that module's card is marked, its Approve button
flagged and its reason field focused; approving still needs the token and a reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.conftest import TOKEN, start_daemon
from watchdog.daemon.ticks import approve_link

SETTLE = 20.0  # generous bound for the first render on a loaded machine


def test_an_approve_link_opens_the_page_at_the_modules_approve_button(
        daemon: Any, browser: Any) -> None:
    browser.get(approve_link(daemon.url + "/", "checkout"))

    def marked(d: Any) -> bool:
        return bool(d.find_elements(By.CSS_SELECTOR, "#module-checkout.approve-target"))

    WebDriverWait(browser, SETTLE, poll_frequency=0.05).until(
        marked, message="the card of the module to approve")
    button = browser.find_element(By.CSS_SELECTOR,
                                  "#module-checkout button[data-action=approve]")
    assert "wanted" in (button.get_attribute("class") or "")
    focused = browser.switch_to.active_element
    assert focused.get_attribute("aria-label") == "reason for checkout"
    assert not button.is_enabled()  # no token in this tab yet (and not awaiting approval)
    assert not [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]


def test_approving_ahead_is_offered_where_the_next_stage_needs_it(
        tmp_path: Path, browser: Any) -> None:
    # a rollout still progressing toward a stage with ``approval: true`` may be approved
    # ahead (rollout/approval.py): the status says so (approval_needed) and the page
    # enables Approve with the token; approving journals it, and the offer goes away
    _, proc, url = start_daemon(tmp_path, "aa-clean-1000.jsonl", pace="250ms",
                                    hold="10m", stages="[5, {traffic: 25, approval: true}, 100]")
    try:
        client = httpx.Client(base_url=url, timeout=10)
        status = client.get("/api/modules/checkout").json()
        assert status["phase"] == "progressing" and status["approval_needed"] is True
        browser.get(url + "/")
        card = "#module-checkout"
        WebDriverWait(browser, SETTLE, poll_frequency=0.05).until(
            lambda d: "progressing" in d.find_element(
                By.CSS_SELECTOR, f"{card} [data-field=phase]").text,
            message="the module's card, rendered")
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "token-save").click()
        pause = browser.find_element(By.CSS_SELECTOR, f"{card} button[data-action=pause]")
        WebDriverWait(browser, SETTLE, poll_frequency=0.05).until(
            lambda d: pause.is_enabled(), message="the buttons updated for the token")
        button = browser.find_element(By.CSS_SELECTOR, f"{card} button[data-action=approve]")
        assert button.is_enabled(), "Approve offered ahead of the wait"
        browser.find_element(By.CSS_SELECTOR, f"{card} input.reason").send_keys(
            "web test: approve ahead")
        button.click()
        WebDriverWait(browser, SETTLE, poll_frequency=0.05).until(
            lambda d: not button.is_enabled(), message="Approve disabled once approved")
        last = client.get("/api/decisions", params={"module": "checkout", "limit": 1}).json()
        assert last[0]["action"] == "approve" and last[0]["actor"] == "web"
        assert client.get("/api/modules/checkout").json()["approval_needed"] is False
        client.close()
    finally:
        proc.kill()
