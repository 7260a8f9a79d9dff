"""The web view opened from a Slack approve link (``/ui/#approve=<module>``, made by
daemon/ticks.py when ``api.public_url`` is set): in a real headless Chromium against the
real daemon of tests/web/conftest.py, that module's card is marked, its Approve button
flagged and its reason field focused; approving still needs the token and a reason."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

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
