"""watchdog.yaml: validation with file:line, defaults, secrets, plugins built and reused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from watchdog.daemon.build import PluginSet
from watchdog.daemon.config import DEFAULT_NAME, load_config
from watchdog.daemon.scheduler import JobSpec
from watchdog.errors import ConfigError


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "watchdog.yaml"
    path.write_text(text)
    return str(path)


def messages(path: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path)
    return [str(i) for i in err.value.issues]


def test_the_embedded_default_runs_the_demo(tmp_path: Path) -> None:
    loaded = load_config(None)
    assert loaded.file == DEFAULT_NAME
    assert loaded.config.source.plugin == "scrape"
    assert [a.plugin for a in loaded.config.actuators] == ["file"]
    assert loaded.module_names == ["checkout"] and loaded.config.modules[0].auto_start
    plugins = PluginSet.build(loaded, env={})
    path = plugins.actuators[0].path_for("checkout")  # type: ignore[attr-defined]
    assert str(path) == f"{loaded.state_dir}/checkout.flags.json"


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
source: {plugin: file}
actuators:
  - plugin: file
    optons: {path: x}
modules:
  - {name: checkout, interval: -3}
clock: {kind: replay}
outbox: {poll_interval: 2s}
""")
    assert messages(path) == [
        f"{path}:4: actuators[0].optons: unknown field (valid: plugin, options)",
        f"{path}:6: modules[0].interval: duration must not be negative, got -3",
        f"{path}:7: clock: step: a replay clock needs the step (simulated seconds per tick)",
        f"{path}:8: outbox.poll_interval: Input should be less than or equal to 0.25 "
        "(got 2.0)"]


def test_unknown_plugins_and_modules_name_what_exists(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("modules:\n  - name: checkout\n    include_defaults: true\n")
    path = write(tmp_path, """\
rules: [rules.yaml]
source: {plugin: scrap}
actuators: [{plugin: file, options: {path: x}}]
notifiers: [{plugin: carrier_pigeon}]
modules: [checkout, search]
""")
    assert messages(path) == [
        f"{path}:5: no rules declare module 'search' (declared: checkout)",
        f"{path}:2: source.plugin: unknown source 'scrap' (available: file, prometheus, "
        "scrape)",
        f"{path}:4: notifiers[0].plugin: unknown notifier 'carrier_pigeon' (available: log, "
        "slack, slack_webhook)"]


def test_broken_rules_are_reported_at_their_own_lines(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("modules:\n  - name: checkout\n    plann: {}\n")
    path = write(tmp_path, "rules: [rules.yaml]\nsource: {plugin: file}\n"
                           "actuators: [{plugin: file}]\nmodules: [checkout]\n")
    got = messages(path)
    assert got[0] == f"{path}:1: the rules named here are invalid (below)"
    assert f"{tmp_path / 'rules.yaml'}:3: modules[0].plann: unknown field" in got[1]


def test_plugin_options_errors_point_at_the_entry(tmp_path: Path) -> None:
    path = write(tmp_path, """\
source: {plugin: file, options: {path: /nonexistent/scenario.jsonl}}
actuators:
  - plugin: file
    options: {path: "{state_dir}/{module}.json", format: toml}
modules: [checkout]
""")
    loaded = load_config(path)
    with pytest.raises(ConfigError) as err:
        PluginSet.build(loaded, env={})
    text = [str(i) for i in err.value.issues]
    assert text[0].startswith(f"{path}:1: source (file): ")
    # the option's own line, and what it may be (the plugin's options model)
    assert text[1] == (f"{path}:4: actuators[0].options.format: Input should be 'json', "
                       "'yaml', 'env' or 'flagd' (got 'toml')")


SECRET_CONFIG = """\
source: {{plugin: file, options: {{path: {scenario}}}}}
actuators:
  - plugin: file
    options: {{path: "{{state_dir}}/{{module}}.json"}}
  - plugin: webhook
    options:
      url: "http://127.0.0.1:9/flags/{{module}}"
      secret: {secret}
modules: [checkout]
"""


def test_secrets_come_from_env_files_or_credentials_and_are_never_shown(
        tmp_path: Path, kit: object, caplog: pytest.LogCaptureFixture) -> None:
    scenario = Path(__file__).parents[1] / "data" / "scenarios" / "aa-clean-1000.jsonl"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "flags").write_text("from-a-credential\n")
    (tmp_path / "secret.txt").write_text("from-a-file\n")
    cases = {"{from_env: FLAGS_SECRET}": "from-the-env",
             f"{{from_file: {tmp_path / 'secret.txt'}}}": "from-a-file",
             "{from_credential: flags}": "from-a-credential",
             "inline-secret-value": "inline-secret-value"}
    env = {"FLAGS_SECRET": "from-the-env", "CREDENTIALS_DIRECTORY": str(creds)}
    with caplog.at_level(logging.DEBUG):
        for written, value in cases.items():
            loaded = load_config(write(tmp_path, SECRET_CONFIG.format(
                scenario=scenario, secret=written)))
            plugins = PluginSet.build(loaded, env=env)
            webhook = plugins.actuators[1]
            assert webhook._secret == SecretStr(value)  # type: ignore[attr-defined]
            shown = f"{loaded.config!r} {loaded.config} {plugins.actuators!r}"
            assert value not in shown
    assert not any(v in r.getMessage() for r in caplog.records for v in cases.values())


def test_a_missing_secret_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    scenario = Path(__file__).parents[1] / "data" / "scenarios" / "aa-clean-1000.jsonl"
    path = write(tmp_path, SECRET_CONFIG.format(scenario=scenario,
                                                secret="{from_env: NOT_SET_ANYWHERE}"))
    with pytest.raises(ConfigError) as err:
        PluginSet.build(load_config(path), env={})
    assert [str(i) for i in err.value.issues] == [
        f"{path}:8: actuators[1].options.secret: environment variable NOT_SET_ANYWHERE "
        "is not set"]


def test_a_reload_keeps_the_instances_whose_options_did_not_change(tmp_path: Path) -> None:
    scenario = Path(__file__).parents[1] / "data" / "scenarios" / "aa-clean-1000.jsonl"
    path = write(tmp_path, SECRET_CONFIG.format(scenario=scenario, secret="one"))
    first = PluginSet.build(load_config(path), env={})
    write(tmp_path, SECRET_CONFIG.format(scenario=scenario, secret="two"))
    second = PluginSet.build(load_config(path), previous=first, env={})
    assert second.source is first.source
    assert second.actuators[0] is first.actuators[0]
    assert second.actuators[1] is not first.actuators[1]  # its secret changed
    assert first.unused_by(second) == [first.actuators[1]]


def test_intervals_and_alignment(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "modules:\n  - {name: a, include_defaults: true, interval: 20s}\n"
        "  - {name: b, include_defaults: true}\n  - {name: c, include_defaults: true}\n")
    path = write(tmp_path, "rules: [rules.yaml]\nsource: {plugin: file}\n"
                           "actuators: [{plugin: file}]\ninterval: 30s\n"
                           "modules: [a, {name: b, interval: 5s}, c]\n")
    loaded = load_config(path)
    assert [loaded.interval_of(m) for m in "abc"] == [30.0, 5.0, 30.0]
    spec = JobSpec(15.0, align=True, offset=2.0)
    assert spec.first_boundary(1000.0) == 1007.0  # 66 * 15 + 2 (Prometheus' phase)
    assert spec.first_boundary(1007.0) == 1022.0
    assert JobSpec(0.2).grace() == 1 and JobSpec(10.0, misfire_grace=2.5).grace() == 3


def test_run_check_validates_without_starting(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from watchdog.cli.main import cli

    scenario = Path(__file__).parents[1] / "data" / "scenarios" / "aa-clean-1000.jsonl"
    path = write(tmp_path, SECRET_CONFIG.format(scenario=scenario, secret="s3cr3t-value"))
    done = CliRunner().invoke(cli, ["run", "--check", "--config", path])
    assert done.exit_code == 0, done.output
    assert f"{path}: OK (1 modules: checkout" in done.output
    assert not (tmp_path / "rollout-watchdog.db").exists()  # no journal opened
    write(tmp_path, SECRET_CONFIG.format(scenario=scenario, secret="s3cr3t-value")
          .replace("plugin: webhook", "plugin: webhok"))
    done = CliRunner().invoke(cli, ["run", "--check", "--config", path])
    assert done.exit_code == 2
    assert f"error: {path}:5: actuators[1].plugin: unknown actuator 'webhok'" in done.output
    assert "s3cr3t-value" not in done.output
