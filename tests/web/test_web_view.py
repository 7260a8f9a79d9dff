"""The web view (/ui/) in a real headless Chromium against the real daemon: it shows every
module with its phase, verdict, rules and charts; a rollback journaled through the CLI
appears with its reason within 2 s; control buttons are disabled without the token,
refused with a wrong one and work with the right one; the browser logs no error.

The daemon (tests/web/conftest.py) replays a healthy rollout, one evaluation every
250 ms, 10 minutes of replay time per stage, so it stays in stage 1 during the test.
"""

from __future__ import annotations

import re
import time
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

Daemon = Any
Driver = Any
TOKEN = "web-test-token-0123456789abcdef"  # as in conftest.py
APPEAR = 2.0  # seconds: a journaled decision is on the page within this (the page polls 1/s)
SETTLE = 20.0  # generous bound for the first render on a loaded machine


def wait(driver: Driver, timeout: float, check: Any, what: str) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(
        lambda d: check(d), message=what)


def text_of(driver: Driver, css: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return " ".join(e.text for e in found)


def severe(driver: Driver) -> list[dict[str, Any]]:
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def test_the_page_is_static_and_allows_only_its_own_origin(daemon: Daemon) -> None:
    root = daemon.client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "ui/"
    page = daemon.client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    html = page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), "an inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "an inline style"
    for name in ("app.js", "app.css", "icon.svg"):
        asset = daemon.client.get(f"/ui/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["x-content-type-options"] == "nosniff"
        # no other origin is referenced (the SVG namespace is a name, not a request)
        assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", asset.text), name
        assert TOKEN not in asset.text
    assert daemon.client.get("/ui/secret.txt").status_code == 404
    assert TOKEN not in html


def test_live_route_has_each_rules_value_and_v1_v2_per_metric(daemon: Daemon) -> None:
    def ready() -> bool:
        body = daemon.client.get("/api/modules/checkout/live").json()
        return body["origin"] == "daemon" and any(len(m["points"]) >= 3
                                                  for m in body["metrics"])
    deadline = time.monotonic() + SETTLE
    while not ready():
        assert time.monotonic() < deadline, daemon.proc.log()[-2000:]
        time.sleep(0.1)
    body = daemon.client.get("/api/modules/checkout/live").json()
    assert body["stage"] == 1
    judged = [r for r in body["rules"] if r["observed"] is not None]
    assert judged and all(r["limit"] is not None for r in judged)
    metrics = {m["metric"]: m for m in body["metrics"]}
    assert "latency_p95_ms" in metrics
    points = metrics["latency_p95_ms"]["points"]
    assert all(body["stage_started_at"] <= p["t"] for p in points)
    assert [p["t"] for p in points] == sorted(p["t"] for p in points)
    assert metrics["latency_p95_ms"]["reference"] in ("live V1", "V1 baseline")
    assert daemon.client.get("/api/modules/nope/live").status_code == 404


def test_the_page_shows_modules_a_rollback_reason_and_controls_need_the_token(
        daemon: Daemon, browser: Driver) -> None:
    browser.get(daemon.url + "/")
    assert browser.current_url.endswith("/ui/")
    card = "#module-checkout"
    wait(browser, SETTLE, lambda d: "progressing" in text_of(d, f"{card} [data-field=phase]")
         and d.find_elements(By.CSS_SELECTOR, f"{card} table.rules tr[data-rule]")
         and d.find_elements(By.CSS_SELECTOR, f"{card} polyline[data-series=v2]"),
         "the module card with phase, rules and a chart")
    assert text_of(browser, f"{card} [data-field=verdict]") in (
        "healthy", "inconclusive", "warning")
    assert browser.find_elements(By.CSS_SELECTOR, f"{card} polyline[data-series=v1]")
    assert "stage 1" in text_of(browser, f"{card} .facts")
    assert "rollout started" in text_of(browser, "#decisions")

    # without a token every control button is disabled, and the route refuses anyway
    controls = browser.find_elements(By.CSS_SELECTOR, "[data-control]")
    assert len(controls) >= 8 and not any(b.is_enabled() for b in controls)
    refused = daemon.client.post("/api/modules/checkout/pause", json={"reason": "x"})
    assert refused.status_code == 401

    # a rollback journaled through the CLI is on the page within APPEAR seconds
    reason = "web-view test: rollback through the CLI 7f3a"
    daemon.cli("rollback", "checkout", "--reason", reason, "--actor", "tester")
    journaled = time.monotonic()
    wait(browser, APPEAR, lambda d: reason in text_of(d, "#decisions")
         and reason in text_of(d, f"{card} .last"), "the rollback's reason on the page")
    shown_after = time.monotonic() - journaled
    assert shown_after <= APPEAR + 0.5  # the wait above is the bound; this is for the report
    wait(browser, APPEAR, lambda d: "rolled back" in text_of(d, f"{card} [data-field=phase]"),
         "phase rolled back")

    # with the token: the buttons the phase allows are enabled, and resume works
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "token-save").click()
    assert browser.find_element(By.ID, "token").get_attribute("value") == ""
    assert browser.execute_script(
        "return sessionStorage.getItem('rollout-watchdog.token')") == TOKEN
    button = browser.find_element(By.CSS_SELECTOR, f"{card} button[data-action=resume]")
    wait(browser, APPEAR, lambda d: button.is_enabled(), "resume enabled with the token")
    assert not browser.find_element(
        By.CSS_SELECTOR, f"{card} button[data-action=pause]").is_enabled()  # rolled back
    browser.find_element(By.CSS_SELECTOR, f"{card} input.reason").send_keys(
        "web-view test: resume from the page")
    button.click()
    wait(browser, SETTLE, lambda d: "journaled as decision" in text_of(d, f"{card} .result"),
         "the resume's answer")
    wait(browser, APPEAR, lambda d: "resume from the page" in text_of(d, "#decisions")
         and "progressing" in text_of(d, f"{card} [data-field=phase]"), "resumed on the page")
    last = daemon.client.get("/api/decisions", params={"module": "checkout", "limit": 1})
    assert last.json()[0]["action"] == "resume" and last.json()[0]["actor"] == "web"
    assert severe(browser) == [], "console errors"

    # a wrong token: the page says the API refused, and nothing is journaled
    browser.find_element(By.ID, "token-clear").click()
    wait(browser, APPEAR, lambda d: not button.is_enabled(), "disabled after Forget")
    browser.find_element(By.ID, "token").send_keys("not-the-token-0123456789")
    browser.find_element(By.ID, "token-save").click()
    pause = browser.find_element(By.CSS_SELECTOR, f"{card} button[data-action=pause]")
    wait(browser, APPEAR, lambda d: pause.is_enabled(), "pause enabled (a token is set)")
    browser.find_element(By.CSS_SELECTOR, f"{card} input.reason").send_keys("should fail")
    pause.click()
    wait(browser, SETTLE, lambda d: "refused (401)" in text_of(d, f"{card} .result"),
         "the refusal on the page")
    after = daemon.client.get("/api/decisions", params={"module": "checkout", "limit": 1})
    assert after.json()[0]["action"] == "resume"
    # the only console entry is the browser's own line about the 401 response
    assert all("401" in e["message"] for e in severe(browser)), severe(browser)


def test_a_rollback_the_daemon_decides_is_on_the_page_within_2s(
        browser: Driver, tmp_path: Any, web_kit: Any) -> None:
    """The daemon's own tick journals the rollback (reg-latency-creep, caught in stage 2
    about 8 s of wall time after the start); the page, loaded before, shows its reason
    within APPEAR seconds of the row being in the journal (read directly, every 20 ms)."""
    from watchdog.journal.store import Journal

    setup, proc, url = web_kit.start_daemon(
        tmp_path, "reg-latency-creep-2067.jsonl", pace="100ms", hold="10m",
        stages="[5, 25, 50, 75, 100]")
    try:
        browser.get(url + "/ui/")
        wait(browser, SETTLE, lambda d: "progressing" in text_of(
            d, "#module-checkout [data-field=phase]"), "the module progressing")
        assert "rollback" not in text_of(browser, "#decisions")
        deadline = time.monotonic() + 60
        rollback = None
        while rollback is None:
            assert time.monotonic() < deadline, proc.log()[-3000:]
            journal = Journal(setup.db)
            try:
                rollback = next((jd for jd in journal.decisions(module="checkout")
                                 if jd.decision.action.value == "rollback"), None)
            finally:
                journal.close()
            time.sleep(0.02)
        reason = rollback.decision.reasons[0]
        assert reason.startswith("latency_p95_regression")
        wait(browser, APPEAR, lambda d: reason in text_of(d, "#decisions")
             and reason in text_of(d, "#module-checkout .last"),
             "the daemon's rollback reason on the page")
        assert severe(browser) == [], "console errors"
    finally:
        proc.kill()
