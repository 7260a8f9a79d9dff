"""The web view under test: the real daemon (a replayed scenario, file source, command
actuator, the HTTP API on 127.0.0.1 at a free port) and a real headless Chromium driven
by Selenium through Debian's chromedriver.

Nothing is downloaded: Selenium Manager is bypassed (explicit driver and browser paths,
SE_OFFLINE) and Chromium runs with its background networking off. Without the browser
the tests skip, or fail when WATCHDOG_REQUIRE_REAL_SERVICES=1 (as in .ci/run);
``scripts/ensure-chromium.sh`` (run by ``make test``) installs it when we are root.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

REQUIRE_ENV = "WATCHDOG_REQUIRE_REAL_SERVICES"
CHROMIUM = ("/usr/bin/chromium", "chromium", "chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver", "chromedriver")
TOKEN = "web-test-token-0123456789abcdef"
CHROME_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
               "--disable-extensions", "--window-size=1400,1000")


def _daemon_kit() -> ModuleType:
    """tests/daemon/conftest.py (its set-up and process helpers), loaded by path: the
    importlib import mode cannot import a conftest by name."""
    path = Path(__file__).parents[1] / "daemon" / "conftest.py"
    spec = importlib.util.spec_from_file_location("_web_daemon_kit", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


kit = _daemon_kit()


def _missing(what: str) -> None:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{what} ({REQUIRE_ENV}=1: a real browser is required; "
                    "run scripts/ensure-chromium.sh as root)")
    pytest.skip(f"{what}: install it with scripts/ensure-chromium.sh (as root)")


def _which(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) if not name.startswith("/") else (
            name if os.access(name, os.X_OK) else None)
        if found:
            return found
    return None


def make_driver(profile: str) -> Any:
    """A headless Chromium driven through Debian's chromedriver, its console log kept
    ("browser"); raises LookupError saying what is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise LookupError("the selenium package is not installed "
                          "(pip install -e '.[dev]')") from exc
    binary, driver_path = _which(CHROMIUM), _which(CHROMEDRIVER)
    if binary is None or driver_path is None:
        raise LookupError("Debian's chromium and chromium-driver are not installed")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (*CHROME_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for the test module."""
    profile = tempfile.mkdtemp(prefix="watchdog-chromium-")
    try:
        driver = make_driver(profile)
    except LookupError as missing:
        shutil.rmtree(profile, ignore_errors=True)
        _missing(str(missing))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Daemon:
    setup: Any  # tests/daemon/conftest.py's Setup
    proc: Any  # its Proc
    url: str
    client: httpx.Client

    def cli(self, *args: str) -> str:
        import subprocess
        done = subprocess.run([str(kit.EXE), *args, "--config", str(self.setup.config)],
                              cwd=self.setup.root, capture_output=True, text=True,
                              timeout=30, check=False)
        assert done.returncode == 0, done.stderr + done.stdout
        return done.stdout


def start_daemon(root: Path, scenario: str, *, pace: str, hold: str,
                 stages: str = kit.FAST_PLAN) -> tuple[Any, Any, str]:
    """The daemon with its API on a free port: (setup, process, base URL)."""
    setup = kit.make_setup(root, scenario, pace=pace,
                           extra="api: {enabled: true, host: 127.0.0.1, port: 0}\n")
    setup.write_rules(plan=stages, hold=hold)
    proc = kit.Proc(setup, 0, {"WATCHDOG_API_TOKEN": TOKEN})
    proc.wait_for("HTTP API listening on", timeout=30)
    found = re.search(r"HTTP API listening on (http://127\.0\.0\.1:\d+)", proc.log())
    assert found, proc.log()
    return setup, proc, found.group(1)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A healthy replayed rollout (aa-clean) that stays in stage 1 for a while: one
    evaluation every 250 ms of wall time, 10 minutes of replay time per stage."""
    setup, proc, url = start_daemon(tmp_path_factory.mktemp("web"), "aa-clean-1000.jsonl",
                                    pace="250ms", hold="10m")
    client = httpx.Client(base_url=url, timeout=10)
    try:
        yield Daemon(setup, proc, url, client)
    finally:
        client.close()
        proc.kill()


@pytest.fixture(scope="session")
def web_kit() -> ModuleType:
    """This file's helpers (start_daemon, make_driver) for test modules."""
    return sys.modules[__name__]
