"""Plugin options are validated like the rest of the config: typed models per plugin
(durations the Prometheus way), errors at the option's own file:line naming the valid
options, secrets never shown; the plugin contract is checked when the entry point loads.

Through the real command (``run --check``) on real config files; the misfit plugin is a
real entry point of a throw-away distribution put on PYTHONPATH.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from watchdog.daemon.build import build_source
from watchdog.daemon.config import load_config
from watchdog.errors import ConfigError

EXE = Path(sys.executable).with_name("rollout-watchdog")


def config(tmp_path: Path, source_options: str, extra: str = "") -> Path:
    path = tmp_path / "watchdog.yaml"
    path.write_text(
        f"db: {tmp_path / 'journal.db'}\n"
        "source:\n"
        "  plugin: prometheus\n"
        "  options:\n"
        f"{source_options}"
        f"actuators: [{{plugin: file, options: {{path: \"{tmp_path}/{{module}}.json\"}}}}]\n"
        "modules: [checkout]\n" + extra)
    return path


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def check(path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), "run", "--check", "--config", str(path)],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_durations_the_prometheus_way(tmp_path: Path) -> None:
    path = config(tmp_path, "    url: http://127.0.0.1:9\n    timeout: 5s\n"
                            "    max_backoff: 1m30s\n")
    source = build_source(load_config(str(path)))
    try:
        assert source.timeout == 5.0 and source.max_backoff == 90.0  # type: ignore[attr-defined]
        assert source.retries == 2  # type: ignore[attr-defined]  # the constructor's default
    finally:
        source.close()


def test_a_bad_value_is_reported_at_its_own_line(tmp_path: Path) -> None:
    path = config(tmp_path, "    url: http://127.0.0.1:9\n    timeout: 5 seconds\n")
    done = check(path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{path}:{line_of(path, 'timeout')}: source.options.timeout: expected a " \
           "duration such as 30s" in done.stderr, done.stderr
    assert "'<=' not supported" not in done.stderr


def test_an_unknown_option_names_the_valid_ones(tmp_path: Path) -> None:
    path = config(tmp_path, "    urll: http://127.0.0.1:9\n")
    done = check(path)
    assert done.returncode == 2
    assert f"{path}:{line_of(path, 'urll')}: source.options.urll: unknown option of the " \
           "prometheus plugin (valid: url, timeout, retries" in done.stderr, done.stderr
    assert f"{path}:{line_of(path, 'options:')}: source.options.url: required option" \
        in done.stderr
    assert "unexpected keyword argument" not in done.stderr


def test_a_secret_is_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "watchdog.yaml"
    path.write_text(
        "source: {plugin: prometheus, options: {url: 'http://127.0.0.1:9'}}\n"
        "actuators:\n"
        "  - plugin: webhook\n"
        "    options:\n"
        "      url: https://flags.example/{module}\n"
        "      secret: [hunter2-secret]\n"
        "      timeout: -1s\n"
        "modules: [checkout]\n")
    done = check(path)
    assert done.returncode == 2
    assert f"{path}:{line_of(path, 'secret:')}: actuators[0].options.secret:" in done.stderr
    assert f"{path}:{line_of(path, 'timeout:')}: actuators[0].options.timeout:" in done.stderr
    assert "hunter2" not in done.stderr


def test_every_shipped_plugin_declares_its_options_and_defaults_match() -> None:
    """The models' defaults are the constructors' (the constructor gets only what the
    config sets, so a drift would make docs/plugins.md wrong)."""
    import inspect

    from watchdog import plugins
    from watchdog.pluginbase import options_model

    for group in plugins.GROUPS:
        for name in plugins.available(group):
            factory = plugins.load(group, name)
            model = options_model(factory)
            assert model is not None, (group, name)
            params = inspect.signature(factory).parameters
            if name in ("slack", "slack_webhook"):
                continue  # built from the whole settings model (from_config)
            for field, info in model.model_fields.items():
                assert field in params, (name, field)
                if not info.is_required():  # a model may require what a constructor has not
                    default = params[field].default
                    assert info.default == default, (name, field, info.default, default)


MISFIT = """\
class NotASource:
    name = "misfit"

    def __init__(self, **options):
        pass
"""


@pytest.mark.parametrize("target", ["misfit:NotASource", "misfit:VALUE"])
def test_an_entry_point_that_is_not_a_source_is_refused(tmp_path: Path, target: str) -> None:
    site = tmp_path / "site"
    dist = site / "misfit_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: misfit-plugin\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[watchdog.sources]\nmisfit = {target}\n")
    (site / "misfit.py").write_text(MISFIT + "VALUE = 42\n")
    path = tmp_path / "watchdog.yaml"
    path.write_text("source: {plugin: misfit}\n"
                    f"actuators: [{{plugin: file, options: {{path: '{tmp_path}/x.json'}}}}]\n"
                    "modules: [checkout]\n")
    done = check(path, {"PYTHONPATH": str(site)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{path}:1: source" in done.stderr
    assert "entry point watchdog.sources:misfit does not point to a Source" in done.stderr
    assert ("has no fetch()" if target.endswith("NotASource") else "not a class") \
        in done.stderr


def test_a_daemon_config_typo_names_the_valid_fields(tmp_path: Path) -> None:
    path = config(tmp_path, "    url: http://127.0.0.1:9\n", extra="apii: {enabled: true}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    (issue,) = caught.value.issues
    assert issue.line == line_of(path, "apii")
    assert "apii: unknown field (valid: db, state_dir, rules, source, actuators" \
        in issue.message, issue.message
    assert "see watchdog/daemon/config.py" not in issue.message
