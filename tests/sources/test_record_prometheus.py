"""``rollout-watchdog record`` against a real Prometheus: a rollout judged live, recorded
from the same Prometheus and journal, and backtested, decides the same.

The production history: a shipped recorded rollout (reg-latency-creep: V2's latency
creeps up; rolled back) written into Prometheus's storage with ``promtool tsdb
create-blocks-from openmetrics`` at absolute times hours ago (``scenario_value{module,
version, metric}``). The rollout: the real engine ticking over those times with the
real ``prometheus`` source and a real SQLite journal, as the daemon does (on a simulated
clock, since the history is in the past). Then the command records that window, and
``backtest`` replays the recording: the same actions at the same traffic, each within one
interval of the live decision.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from watchdog import baseline as baselines
from watchdog.backtest import replay
from watchdog.backtest.scenario import Scenario, load_scenario
from watchdog.config.loader import load_paths
from watchdog.engine import Engine
from watchdog.journal.store import Journal
from watchdog.model import Version
from watchdog.rollout.state import Phase
from watchdog.sources.prometheus import PrometheusSource

from .conftest import PrometheusProcess, missing

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "data" / "scenarios" / "reg-latency-creep-2067.jsonl"
DEFAULTS = ROOT / "watchdog" / "defaults" / "default.yaml"
EXE = Path(sys.executable).with_name("rollout-watchdog")
QUERY = 'scenario_value{{metric="{metric}",module="{{module}}",version="{{version}}"}}'


def openmetrics(scenario: Scenario, base: float) -> str:
    """The scenario's samples at ``base + t`` (one series per version and metric)."""
    out = ["# TYPE scenario_value gauge"]
    for metric in scenario.metrics:
        for version in (Version.V1, Version.V2):
            series = scenario.store.get(version, metric)
            labels = f'metric="{metric}",module="{scenario.module}",version="{version.value}"'
            out += [f"scenario_value{{{labels}}} {v!r} {base + t:.3f}"
                    for t, v in zip(series.t.tolist(), series.v.tolist(), strict=True)]
    return "\n".join([*out, "# EOF", ""])


def rules_file(path: Path, module: str) -> Path:
    """The shipped default rules for ``module``, each metric read from scenario_value."""
    data = yaml.safe_load(DEFAULTS.read_text())
    spec = data["modules"][0]
    spec["name"] = module
    for metric, m in spec["metrics"].items():
        m["query"] = QUERY.format(metric=metric)
    spec["plan"] = {"stages": [5, 25, 50, 75, 100], "hold": "10m"}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def live_rollout(url: str, rules_path: Path, db: Path, module: str, base: float,
                 scenario: Scenario) -> None:
    """The daemon's path over the past window: a baseline captured through the source
    from V1's 30 minutes before the start, then a tick every interval until it ends."""
    rules = load_paths([rules_path])
    spec = rules.for_module(module)
    journal = Journal(db)
    source = PrometheusSource(url, timeout=30)
    try:
        store = source.fetch(spec, base - 1800 - spec.interval / 2, base - spec.interval,
                             versions=[Version.V1], deadline=60)
        for metric in spec.metrics:
            series = store.get(Version.V1, metric)
            journal.save_baseline(baselines.capture(
                module, metric, zip(series.t.tolist(), series.v.tolist(), strict=True),
                base - 1800, base, "prometheus", captured_at=base))
        engine = Engine(rules, journal, source)
        k = 0
        while k * spec.interval <= scenario.end - spec.interval:
            cp = engine.checkpoint(module)
            if cp is not None and cp.phase in (Phase.ROLLED_BACK, Phase.PROMOTED):
                break
            engine.tick(module, base + k * spec.interval)
            k += 1
    finally:
        source.close()
        journal.close()


def test_a_recorded_rollout_backtests_to_the_same_decisions(prometheus_bin: str,
                                                             tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        missing("the promtool binary is not on PATH")
    assert promtool is not None
    scenario = load_scenario(SCENARIO)
    module = scenario.module
    base = math.floor(time.time() / 3600) * 3600 - 4 * 3600  # the rollout started 4 h ago
    (tmp_path / "history.om").write_text(openmetrics(scenario, base))
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics",
                    str(tmp_path / "history.om"), str(tmp_path / "data")],
                   check=True, capture_output=True, timeout=120)
    prometheus = PrometheusProcess(prometheus_bin, tmp_path, [])
    try:
        rules_path = rules_file(tmp_path / "rules.yaml", module)
        db = tmp_path / "journal.db"
        live_rollout(prometheus.url, rules_path, db, module, base, scenario)
        journal = Journal(db)
        try:
            live = [jd.decision for jd in journal.decisions(module=module)]
        finally:
            journal.close()
        assert live[0].at == base and live[-1].action.value == "rollback", live

        config = tmp_path / "watchdog.yaml"
        config.write_text(
            f"db: {db}\nrules: [{rules_path}]\n"
            f"source: {{plugin: prometheus, options: {{url: \"{prometheus.url}\"}}}}\n"
            f"actuators: [{{plugin: file, options: {{path: \"{tmp_path}/{{module}}.json\"}}}}]\n"
            f"modules: [{module}]\n")
        out = tmp_path / "recorded.jsonl"
        done = subprocess.run(
            [str(EXE), "record", module, "--from", str(base - 300),
             "--to", str(base + scenario.end), "--out", str(out), "--config", str(config)],
            capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"recorded {module}:" in done.stdout and "decision #1" in done.stdout
    finally:
        prometheus.stop()

    recorded = load_scenario(out)
    assert recorded.stages == (5, 25, 50, 75, 100) and recorded.stage_seconds == 600
    assert recorded.baseline_from == -1800 and recorded.step_seconds == 10
    assert set(recorded.metrics) == set(scenario.metrics)
    result = replay.run(recorded, load_paths([rules_path]))
    replayed = [jd.decision for jd in result.decisions]
    assert [(d.action, d.traffic_percent) for d in replayed] == \
        [(d.action, d.traffic_percent) for d in live]
    for got, want in zip(replayed, live, strict=True):
        assert abs(got.at - (want.at - base)) <= 10, (got, want)
    assert result.outcome == "rolled_back"


def test_times_and_bad_input(tmp_path: Path) -> None:
    from watchdog.cli.record import parse_time

    assert parse_time("1700000000", 0) == 1_700_000_000
    assert parse_time("2023-11-14T22:13:20Z", 0) == 1_700_000_000
    assert parse_time("2023-11-14T22:13:20", 0) == 1_700_000_000  # UTC unless it says
    assert parse_time("-2h", 10_000) == 10_000 - 7200
    with pytest.raises(ValueError, match="not a time"):
        parse_time("yesterday", 0)
    config = tmp_path / "watchdog.yaml"
    config.write_text("source: {plugin: prometheus, options: {url: 'http://127.0.0.1:9'}}\n"
                      f"db: {tmp_path / 'j.db'}\n"
                      "actuators: [{plugin: file, options: {path: '/tmp/x'}}]\n"
                      "modules: [checkout]\n")
    backwards = subprocess.run([str(EXE), "record", "checkout", "--from", "-1h", "--to", "-2h",
                                "--out", str(tmp_path / "r.jsonl"), "--config", str(config)],
                               capture_output=True, text=True, timeout=60)
    assert backwards.returncode == 2 and "must be after --from" in backwards.stderr
    down = subprocess.run([str(EXE), "record", "checkout", "--from", "-1h",
                           "--out", str(tmp_path / "r.jsonl"), "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert down.returncode == 1 and "prometheus source:" in down.stderr, down.stderr
    assert "Traceback" not in down.stderr and not (tmp_path / "j.db").exists()
    assert not (tmp_path / "r.jsonl").exists()

