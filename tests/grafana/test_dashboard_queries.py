"""The Grafana dashboard against real data: every panel and annotation query of
grafana/dashboards/rollout-watchdog.json is run through a real Prometheus that scraped a
real daemon replaying a regression (advances, an actuator failure, a rollback).

Also the dashboard's structure (unique ids, refIds, exprs, datasource variables) and the
provisioning files. Without the ``prometheus`` binary the live test skips, or fails when
WATCHDOG_REQUIRE_REAL_SERVICES=1 (as in tests/sources).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from watchdog.backtest.replay import capture_baselines
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import load_paths
from watchdog.journal.store import Journal

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "rollout-watchdog.json"
DS_PROVISIONING = GRAFANA / "provisioning" / "datasources" / "prometheus.yaml"
DASH_PROVISIONING = GRAFANA / "provisioning" / "dashboards" / "rollout-watchdog.yaml"
SCENARIO = ROOT / "tests" / "data" / "scenarios" / "reg-latency-creep-2067.jsonl"
EXE = Path(sys.executable).with_name("rollout-watchdog")
REQUIRE_ENV = "WATCHDOG_REQUIRE_REAL_SERVICES"

PROMETHEUS_DS = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_BUILTINS = {
    "__interval",
    "__interval_ms",
    "__rate_interval",
    "__range",
    "__range_s",
    "__range_ms",
    "__from",
    "__to",
    "__dashboard",
    "__org",
    "__user",
    "timeFilter",
}
STEP = 2  # seconds: the query_range step, and what $__interval stands for
# what the dashboard's variables stand for in the replay (the scenario's module, one of
# its metrics, one of its rules)
VALUES = {
    "module": "checkout",
    "metric": "latency_p95_ms",
    "rule": "latency_p95_regression",
    "__interval": f"{STEP}s",
    "__rate_interval": f"{4 * STEP}s",
}

# the daemon's flags: a command actuator whose first application fails (one actuator
# failure, a pending actuation for a moment), then writes the flags atomically
ACT_SH = r"""#!/bin/sh
set -e
if [ ! -e "$ACT_DIR/failed-once" ]; then
  touch "$ACT_DIR/failed-once"; echo "injected failure" >&2; exit 3
fi
kill=false; [ "$5" = 1 ] && kill=true
printf '{"version": "%s", "traffic_percent": %s, "kill_switch": %s, "decision_id": "%s"}\n' \
  "$3" "$4" "$kill" "$1" > "$ACT_DIR/$2.json.tmp"
mv "$ACT_DIR/$2.json.tmp" "$ACT_DIR/$2.json"
"""
READ_SH = """#!/bin/sh
cat "$ACT_DIR/$1.json" 2>/dev/null || echo null
"""
PLAN = "[5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100]"


# -- the dashboard as data ---------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, rows included, and the panels of collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def queries(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(where, target) of every Prometheus query: panel targets and annotations."""
    found: list[tuple[str, dict[str, Any]]] = []
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            found.append((f"panel {panel['id']} {panel['title']!r} {target.get('refId')}", target))
    for ann in dashboard["annotations"]["list"]:
        if "expr" in ann:
            found.append((f"annotation {ann['name']!r}", ann))
    return found


def variables_in(text: str) -> set[str]:
    return set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's interpolation of ``$name`` and ``${name}`` (longest names first)."""
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    assert "$" not in expr, f"a variable is left in {expr!r}"
    return expr


# -- structure ----------------------------------------------------------------------------


def test_the_dashboard_is_well_formed() -> None:
    d = load_dashboard()
    assert d["uid"] and d["title"] and d["schemaVersion"] >= 39
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    module = variables["module"]
    assert module["type"] == "query" and module["datasource"] == PROMETHEUS_DS
    assert module["definition"] == "label_values(watchdog_traffic_ratio, module)"
    for v in variables.values():
        if v["type"] == "query":
            assert v["datasource"] == PROMETHEUS_DS, v["name"]

    panels = list(all_panels(d["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"
    for p in panels:
        pos = p["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, p["title"]
        if p["type"] == "row":
            continue
        assert p["datasource"] == PROMETHEUS_DS, p["title"]
        assert p["targets"], f"{p['title']}: no targets"
        refs = [t.get("refId") for t in p["targets"]]
        assert all(refs) and len(refs) == len(set(refs)), f"{p['title']}: refIds {refs}"
        for t in p["targets"]:
            assert t.get("expr", "").strip(), f"{p['title']} {t['refId']}: no expr"
            assert t["datasource"] == PROMETHEUS_DS, f"{p['title']} {t['refId']}"
        if "repeat" in p:
            assert p["repeat"] in variables, p["title"]

    annotations = d["annotations"]["list"]
    names = [a["name"] for a in annotations]
    assert {"Decisions", "Rollbacks"} <= set(names)
    for a in annotations:
        if a.get("builtIn"):
            continue
        if "expr" in a:
            assert a["datasource"] == PROMETHEUS_DS, a["name"]
        else:  # the optional Infinity annotation against the API's /api/decisions
            assert a["datasource"]["uid"] == "${infinity}", a["name"]
            assert variables["infinity"]["query"] == "yesoreyeram-infinity-datasource"
            assert a["target"]["url"].endswith("/api/decisions")
            assert a["enable"] is False  # off unless the plugin is installed

    known = set(variables) | GRAFANA_BUILTINS
    for where, target in queries(d):
        unknown = variables_in(target["expr"]) - known
        assert not unknown, f"{where}: unknown variables {unknown}"


def test_the_phase_panel_shows_every_phase() -> None:
    """Each rollout phase has its number in the phase panel's query and a value mapping
    naming it (a phase left out, as awaiting_approval once was, shows as nothing)."""
    from watchdog.rollout.state import Phase

    panel = next(p for p in all_panels(load_dashboard()["panels"])
                 if p.get("title") == "Rollout phase")
    expr = panel["targets"][0]["expr"]
    coded = {m.group(2): m.group(1) for m in re.finditer(r'(\d+) \* watchdog_rollout_phase'
                                                          r'\{[^}]*phase="(\w+)"\}', expr)}
    assert set(coded) == {p.value for p in Phase}, expr
    assert len(set(coded.values())) == len(coded), f"two phases share a number: {coded}"
    mappings = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {mappings[n]["text"] for n in coded.values()} == set(coded)
    for phase, n in coded.items():
        assert mappings[n]["text"] == phase


def test_the_checkpoint_age_panel_watches_every_judged_phase() -> None:
    """The daemon judges a module in every ACTIVE phase: the panel's judged series shows
    each of them, awaiting an approval included (it once showed progressing only)."""
    from watchdog.rollout.state import ACTIVE

    panel = next(p for p in all_panels(load_dashboard()["panels"])
                 if p.get("title") == "Checkpoint age")
    judged = [t["expr"] for t in panel["targets"] if "watchdog_rollout_phase" in t["expr"]]
    assert len(judged) == 1
    found = re.search(r'phase=~"([^"]+)"', judged[0])
    assert found is not None, judged[0]
    assert set(found.group(1).split("|")) == {p.value for p in ACTIVE}


def test_the_provisioning_files_point_at_the_dashboard() -> None:
    ds = yaml.safe_load(DS_PROVISIONING.read_text("utf-8"))
    assert ds["apiVersion"] == 1
    (prometheus,) = ds["datasources"]
    assert prometheus["type"] == "prometheus" and prometheus["url"].startswith("http")
    assert prometheus["access"] == "proxy"

    dash = yaml.safe_load(DASH_PROVISIONING.read_text("utf-8"))
    assert dash["apiVersion"] == 1
    (provider,) = dash["providers"]
    assert provider["type"] == "file"
    path = Path(provider["options"]["path"])
    assert path.is_absolute() and path.parts[-2:] == ("dashboards", "rollout-watchdog")
    # the folder the provider reads is where grafana/dashboards/ is copied (docs/grafana.md)
    assert [p.name for p in DASHBOARD.parent.glob("*.json")] == [DASHBOARD.name]


def test_substitution_handles_both_spellings() -> None:
    assert (
        substitute('x{a=~"$module", b="${module}"}[$__rate_interval]', VALUES)
        == 'x{a=~"checkout", b="checkout"}[8s]'
    )


# -- the live set-up ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, params: dict[str, Any] | None = None) -> Any:
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def until(
    check: Callable[[], bool], timeout: float, what: str, log: Callable[[], str] = lambda: ""
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log()[-3000:]}")


@dataclass
class Replay:
    prometheus: str  # base URL
    api: str  # the daemon's API base URL
    start: float
    end: float
    metrics_text: str  # the daemon's /metrics at the end

    def query_range(self, expr: str) -> list[Any]:
        answer = get_json(
            self.prometheus + "/api/v1/query_range",
            {"query": expr, "start": self.start, "end": self.end, "step": STEP},
        )
        assert answer["status"] == "success", answer
        return list(answer["data"]["result"])

    def instant(self, expr: str) -> list[Any]:
        """At the end of the test period."""
        answer = get_json(self.prometheus + "/api/v1/query", {"query": expr, "time": self.end})
        return list(answer["data"]["result"])


def stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def write_setup(root: Path, api_port: int) -> Path:
    (root / "act.sh").write_text(ACT_SH)
    (root / "read.sh").write_text(READ_SH)
    (root / "rules.yaml").write_text(
        "modules:\n  - name: checkout\n    include_defaults: true\n"
        f"    plan: {{stages: {PLAN}, hold: 40s}}\n"
    )
    config = root / "watchdog.yaml"
    config.write_text(
        "db: journal.db\nrules: [rules.yaml]\n"
        f'source: {{plugin: file, options: {{path: "{SCENARIO}"}}}}\n'
        "actuators:\n  - plugin: command\n    options:\n"
        f'      argv: [/bin/sh, {root / "act.sh"}, "{{decision_id}}", "{{module}}", '
        '"{version}", "{traffic_percent}", "{kill_switch}"]\n'
        f'      read_argv: [/bin/sh, {root / "read.sh"}, "{{module}}"]\n'
        f'      env: {{ACT_DIR: "{root}"}}\n'
        "notifiers: [{plugin: log}]\n"
        "modules: [{name: checkout, auto_start: true}]\n"
        # ~100 ticks (10 s each) to the rollback at 200 ms each: ~20 s of rollout to scrape
        "clock: {kind: replay, start: 0, step: 10s, end: 3600, pace: 200ms}\n"
        "outbox: {poll_interval: 100ms, backoff: 50ms, max_backoff: 200ms}\n"
        f"api: {{enabled: true, host: 127.0.0.1, port: {api_port}}}\n"
    )
    scenario = load_scenario(SCENARIO)
    assert scenario.module == VALUES["module"]
    rules = load_paths([root / "rules.yaml"])
    journal = Journal(root / "journal.db")
    try:
        capture_baselines(
            journal,
            scenario,
            [m for m in rules.for_module("checkout").metrics if m in scenario.metrics],
        )
    finally:
        journal.close()
    return config


def start_prometheus(binary: str, root: Path, target: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    config = root / "prometheus.yml"
    config.write_text(
        json.dumps(
            {  # JSON is YAML
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "rollout-watchdog",
                        "scrape_interval": "1s",
                        "scrape_timeout": "1s",
                        "static_configs": [{"targets": [target]}],
                    }
                ],
            }
        )
    )
    log = (root / "prometheus.log").open("ab")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={root / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    binary = shutil.which("prometheus")
    if binary is None:
        reason = "the prometheus binary is not on PATH"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_ENV}=1; run scripts/ensure-prometheus.sh as root)")
        pytest.skip(f"{reason} (run scripts/ensure-prometheus.sh as root to install it)")
    root = tmp_path_factory.mktemp("grafana")
    api_port = free_port()
    config = write_setup(root, api_port)
    api = f"http://127.0.0.1:{api_port}"
    daemon: subprocess.Popen[bytes] | None = None
    prometheus, prom_url = start_prometheus(binary, root, f"127.0.0.1:{api_port}")
    daemon_log = root / "daemon.log"

    def logs() -> str:
        text = (root / "prometheus.log").read_text(errors="replace")
        if daemon_log.exists():
            text += "\n--- daemon ---\n" + daemon_log.read_text(errors="replace")
        return text

    def has(expr: str) -> bool:
        try:
            answer = get_json(prom_url + "/api/v1/query", {"query": expr})
        except OSError:
            return False
        return bool(answer["data"]["result"])

    try:
        # Prometheus has looked at the (not yet listening) target once: from here on it
        # scrapes every second, so the daemon's whole rollout is recorded
        until(lambda: has('up{job="rollout-watchdog"}'), 20, "Prometheus's first scrape", logs)
        start = time.time() - 1
        with daemon_log.open("wb") as out:
            daemon = subprocess.Popen(
                [str(EXE), "run", "--config", str(config)],
                cwd=root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        # the rollback is journaled and Prometheus has a few scrapes after it
        until(
            lambda: has("count_over_time((watchdog_rollbacks_total > 0)[1m:1s]) >= 3"),
            60,
            "a scraped rollback",
            logs,
        )
        with urllib.request.urlopen(api + "/metrics", timeout=10) as answer:
            metrics_text = answer.read().decode()
        end = time.time()
        yield Replay(prom_url, api, start, end, metrics_text)
    finally:
        stop(daemon)
        stop(prometheus)


# -- every query has data -----------------------------------------------------------------


def test_every_dashboard_query_returns_data(replay: Replay) -> None:
    values = {**VALUES, "__range": f"{int(replay.end - replay.start) + 1}s"}
    checked, empty = 0, []
    for where, target in queries(load_dashboard()):
        expr = substitute(target["expr"], values)
        if not replay.query_range(expr):
            empty.append(f"{where}: {expr}")
        if target.get("instant") and not replay.instant(expr):
            empty.append(f"{where} (instant): {expr}")
        checked += 1
    assert checked >= 25
    assert not empty, "queries without data:\n" + "\n".join(empty)
    print(f"\n{checked} dashboard queries returned data over {replay.end - replay.start:.0f} s")


def test_the_decision_queries_see_the_rollback(replay: Replay) -> None:
    d = load_dashboard()
    by_name = {a["name"]: a for a in d["annotations"]["list"]}
    rollbacks = replay.query_range(substitute(by_name["Rollbacks"]["expr"], VALUES))
    assert [s["metric"] for s in rollbacks] == [{"module": "checkout"}]
    marks = [v for s in rollbacks for v in s["values"]]
    assert len(marks) <= 2 and {v[1] for v in marks} == {"1"}  # one rollback, one marker

    decisions = replay.query_range(substitute(by_name["Decisions"]["expr"], VALUES))
    assert {"advance", "rollback"} <= {s["metric"]["action"] for s in decisions}

    (panel,) = [
        p for p in all_panels(d["panels"]) if p["title"] == "Decisions per interval by action"
    ]
    bars = replay.query_range(substitute(panel["targets"][0]["expr"], VALUES))
    per_action = {s["metric"]["action"]: sum(float(v[1]) for v in s["values"]) for s in bars}
    journaled = {
        s["metric"]["action"]: float(s["value"][1])
        for s in replay.instant('watchdog_decisions_total{module="checkout"}')
    }
    # exact counts: every decision journaled while scraped is in exactly one bar
    assert per_action == journaled and per_action["rollback"] == 1


def test_the_error_panel_counts_the_failed_actuation(replay: Replay) -> None:
    (panel,) = [p for p in all_panels(load_dashboard()["panels"]) if p["title"] == "Errors"]
    actuator = replay.query_range(substitute(panel["targets"][1]["expr"], VALUES))
    # the failure's series, beside the zero the panel shows before the first failure
    assert "command" in {s["metric"].get("actuator") for s in actuator}


def test_every_metric_the_dashboard_names_is_exported(replay: Replay) -> None:
    """Names behind the zero fallbacks too (no source errors happen in a replay)."""
    families = set(re.findall(r"^# HELP (\w+)", replay.metrics_text, re.MULTILINE))
    d = load_dashboard()
    named = {n for _, t in queries(d) for n in re.findall(r"\bwatchdog_\w+", t["expr"])}
    for v in d["templating"]["list"]:
        named |= set(re.findall(r"\bwatchdog_\w+", v.get("definition", "")))
    missing = {
        n
        for n in named
        if n not in families and re.sub(r"_(total|bucket|count|sum)$", "", n) not in families
    }
    assert not missing, f"not on the daemon's /metrics: {sorted(missing)}"
    assert len(named) >= 15
