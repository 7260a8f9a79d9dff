"""The daemon plans the prometheus source with its modules (daemon/build.py), and
``run --check`` says which query templates batch. Real config files and the real command;
the Prometheus URL points at a closed port (nothing is queried here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
