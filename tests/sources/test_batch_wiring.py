"""The daemon plans the prometheus source with its modules (daemon/build.py), and
``run --check`` says which query templates batch. Real config files and the real command;
the Prometheus URL points at a closed port (nothing is queried here)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.daemon.build import PluginSet, close_plugin
from watchdog.daemon.config import load_config
from watchdog.sources.prometheus import PrometheusSource

EXE = Path(sys.executable).with_name("rollout-watchdog")
RULES = """modules:
  - name: scaled
    interval: 10s
    metrics:
      share:
        direction: lower_is_worse
        query: sum(rate(x{module="{module}",version="{version}"}[1m])) / scalar(sum(up))
      rate:
        direction: lower_is_worse
        query: sum(rate(x{module="{module}",version="{version}"}[1m]))
    rules:
      - {name: r, kind: absolute, metric: rate, above: 5, window: 1m}
  - name: "*"
    interval: 10s
    metrics:
      rate:
        direction: lower_is_worse
        query: sum(rate(x{module="{module}",version="{version}"}[1m]))
    rules:
      - {name: r, kind: absolute, metric: rate, above: 5, window: 1m}
"""


def config(tmp_path: Path, options: str = "", schedule: str = "") -> Path:
    (tmp_path / "rules.yaml").write_text(RULES)
    path = tmp_path / "watchdog.yaml"
    path.write_text(
        f"db: {tmp_path / 'journal.db'}\n"
        f"rules: [{tmp_path / 'rules.yaml'}]\n"
        "source:\n  plugin: prometheus\n  options:\n    url: http://127.0.0.1:9\n"
        f"{options}"
        f"actuators: [{{plugin: file, options: {{path: \"{tmp_path}/{{module}}.json\"}}}}]\n"
        f"modules: [scaled, other, another]\n{schedule}")
    return path


def groups(path: Path) -> list[tuple[str, float, set[str]]]:
    plugins = PluginSet.build(load_config(str(path)))
    try:
        source = plugins.source
        assert isinstance(source, PrometheusSource)
        return [(g.batched.template, g.step, set(g.seen))
                for g in source._batches.groups()]
    finally:
        for instance in plugins.instances():
            close_plugin(instance)


def test_the_daemon_plans_one_group_per_template_and_interval(tmp_path: Path) -> None:
    # scaled's rate and the "*" module's (other, another) are the same template: one
    # group of three; scaled's share does not batch
    assert groups(config(tmp_path)) == [
        ('sum(rate(x{module="{module}",version="{version}"}[1m]))', 10.0,
         {"scaled", "other", "another"})]


def test_not_planned_when_ticks_do_not_share_a_grid_or_batch_is_off(tmp_path: Path) -> None:
    assert groups(config(tmp_path, schedule="schedule: {align: false}\n")) == []
    assert groups(config(tmp_path, options="    batch: false\n")) == []


def test_run_check_says_which_templates_batch(tmp_path: Path) -> None:
    done = subprocess.run([str(EXE), "run", "--check", "--config", str(config(tmp_path))],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert "prometheus: 1 query template(s) batch" in done.stderr
    assert "prometheus: share of scaled: queried per module (scalar() is not known to " \
        "keep the module and version labels)" in done.stderr


def test_a_tick_of_the_shipped_rules_fits_the_default_batch_window() -> None:
    # the memory rule's persistence horizon made a tick read 125 minutes; with the old
    # default of 2 hours no module of the shipped rules batched at all
    from watchdog.config.loader import load_default_rules
    from watchdog.engine import tick_window

    rules = load_default_rules()
    default = PrometheusSource("http://127.0.0.1:9").batch_window
    modules = [rules.for_module(name if name != "*" else "svc") for name in rules.modules]
    assert modules
    assert max(tick_window(m) for m in modules) <= default


def test_modules_whose_ticks_read_more_than_the_batch_window_are_named(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # these rules' ticks read 35 minutes (the noise window and the drift lookback)
    path = config(tmp_path, options="    batch_window: 30m\n")
    done = subprocess.run([str(EXE), "run", "--check", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert ("prometheus: another, other, scaled: queried per module on every tick (a tick "
            "reads up to 35 min, over batch_window 30 min; raise the source's "
            "batch_window)") in done.stderr
    with caplog.at_level(logging.WARNING, logger="watchdog.daemon.build"):
        groups(path)
    assert any("over batch_window 30 min" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="watchdog.daemon.build"):
        groups(config(tmp_path))  # the default window: nothing to say
    assert not any("batch_window" in r.getMessage() for r in caplog.records)
