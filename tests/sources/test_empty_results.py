"""A query that finds nothing is said, counted and shown; a source that is down is said.

A real Prometheus scrapes the test apps; the rules are the shipped defaults with one
metric name misspelled in error_rate's PromQL template (``http_requests_failed_totl``).
The daemon runs as a real process with its API; then the Prometheus is stopped.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from watchdog.journal.store import Journal

ROOT = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).with_name("rollout-watchdog")
TYPO = "http_requests_failed_totl"
EMPTY = "error_rate v1: the query finds no series"


def setting(db: Path, key: str) -> Any:
    if not db.exists():
        return None
    journal = Journal(db)
    try:
        return journal.setting(key)
    finally:
        journal.close()


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def setup_files(tmp_path: Path, url: str) -> Path:
    data = yaml.safe_load((ROOT / "watchdog" / "defaults" / "default.yaml").read_text())
    spec = data["modules"][0]
    spec["name"] = "checkout"
    spec["interval"] = "1s"
    error_rate = spec["metrics"]["error_rate"]
    error_rate["query"] = error_rate["query"].replace("http_requests_failed_total", TYPO)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    config = tmp_path / "watchdog.yaml"
    config.write_text(
        f"db: {tmp_path / 'journal.db'}\nrules: [{tmp_path / 'rules.yaml'}]\n"
        f"source: {{plugin: prometheus, options: {{url: \"{url}\"}}}}\n"
        f"actuators: [{{plugin: file, options: {{path: \"{tmp_path}/{{module}}.json\"}}}}]\n"
        "modules: [{name: checkout, auto_start: true}]\n"
        "api: {enabled: true, port: 0}\n")
    return config


def test_query_and_check_show_an_empty_result(prometheus_setup: Any, tmp_path: Path) -> None:
    config = setup_files(tmp_path, prometheus_setup.prometheus.url)
    shown = subprocess.run([str(EXE), "query", "checkout", "--config", str(config)],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 1, shown
    assert "error_rate v1: no series (empty result" in shown.stdout
    assert TYPO in shown.stdout  # the rendered PromQL, module and version filled in
    assert re.search(r"latency_p95_ms v1: 1 series, last [\d.]+ at 20", shown.stdout)
    one = subprocess.run([str(EXE), "query", "checkout", "--metric", "memory_rss_bytes",
                          "--config", str(config), "-o", "json"],
                         capture_output=True, text=True, timeout=60)
    assert one.returncode == 0, one
    answers = json.loads(one.stdout)["answers"]
    assert [(a["version"], a["series"]) for a in answers] == [("v1", 1), ("v2", 1)]
    assert answers[1]["last"]["value"] == 150e6
    assert 'version="v2"' in answers[1]["query"]
    bad = subprocess.run([str(EXE), "query", "checkout", "--metric", "nosuch",
                          "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "declares no metric nosuch" in bad.stderr

    check = subprocess.run([str(EXE), "run", "--check", "--config", str(config)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check
    assert "warning: module checkout: error_rate v1 finds no data now (empty result)" \
        in check.stderr and TYPO in check.stderr
    assert "latency_p95_ms" not in check.stderr


def test_the_daemon_logs_counts_and_says_when_the_source_is_down(
        prometheus_setup: Any, tmp_path: Path) -> None:
    config = setup_files(tmp_path, prometheus_setup.prometheus.url)
    db = tmp_path / "journal.db"
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(EXE), "run", "--config", str(config)], stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        url = until(lambda: re.search(r"HTTP API listening on (\S+)", log.read_text()), 30,
                    "the API")[1]
        state = until(lambda: (s := setting(db, "source:checkout")) and s["state"] != "ok"
                      and s, 30, "the source state")
        assert state["state"] == "partial", state
        assert any(p.startswith(EMPTY) for p in state["problems"]), state
        before = time.monotonic()
        until(lambda: time.monotonic() - before > 4, 10, "a few more ticks")
        text = log.read_text()
        assert text.count(EMPTY) == 1, text[-3000:]  # once per episode, not every tick
        metrics = httpx.get(url + "/metrics", timeout=10).text
        found = re.search(r'watchdog_source_errors_total\{kind="empty_result",'
                          r'source="prometheus"\} (\S+)', metrics)
        assert found is not None and float(found[1]) >= 3, metrics[-2000:]

        prometheus_setup.prometheus.stop()
        down = until(lambda: (s := setting(db, "source:checkout")) and s["state"] == "down"
                     and s, 60, "the source to be down")
        assert "unreachable" in down["error"] or "timed out" in down["error"], down
        status = httpx.get(url + "/status", timeout=10).json()
        (module,) = [m for m in status["modules"] if m["module"] == "checkout"]
        reasons = module["last_verdict"]["reasons"]
        assert reasons[0].startswith("source prometheus down since "), reasons
        assert not any("samples in window" in r for r in reasons), reasons
        shown = subprocess.run([str(EXE), "status", "--config", str(config)],
                               capture_output=True, text=True, timeout=60)
        assert "  source prometheus down since " in shown.stdout, shown
        assert log.read_text().count("source prometheus down") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


pytestmark = pytest.mark.slow
