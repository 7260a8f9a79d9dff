"""Make docs/img/web-view.png: the web view of a realistic rollout, as the README shows it.

    .venv/bin/python tests/web/screenshot.py docs/img/web-view.png

The real daemon replays reg-latency-creep (the default five-stage plan, 10 minutes per
stage): stage 1 is healthy, the rollout advances to 25 %, and V2's p95 latency creeps
past its limit in stage 2, where the rollback happens. The page is captured after it.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By


def _conftest():  # type: ignore[no-untyped-def]
    path = Path(__file__).with_name("conftest.py")
    spec = importlib.util.spec_from_file_location("_web_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(out: Path) -> None:
    web = _conftest()
    root = Path(tempfile.mkdtemp(prefix="watchdog-screenshot-"))
    _setup, proc, url = web.start_daemon(root, "reg-latency-creep-2067.jsonl", pace="80ms",
                                        hold="10m", stages="[5, 25, 50, 75, 100]")
    profile = tempfile.mkdtemp(prefix="watchdog-chromium-")
    driver = web.make_driver(profile)
    try:
        proc.wait_for("rollback", timeout=60)
        time.sleep(1.0)
        driver.set_window_size(1280, 900)
        driver.get(url + "/")
        deadline = time.monotonic() + 20
        while "rolled back" not in " ".join(
                e.text for e in driver.find_elements(By.CSS_SELECTOR, "[data-field=phase]")):
            assert time.monotonic() < deadline, "the page never showed the rollback"
            time.sleep(0.2)
        time.sleep(1.5)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 140, 2400))
        time.sleep(1.2)
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
        print(f"wrote {out} ({out.stat().st_size} bytes)")
    finally:
        driver.quit()
        proc.kill()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "web-view.png"))
