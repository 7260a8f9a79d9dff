"""Issue 18, items 1 and 5: every command takes the daemon's config (``--config`` or
``WATCHDOG_CONFIG``) and so the same journal; read-only commands never create a journal,
need only the journal (a broken rule file is a warning), and show no module that neither
the config nor the journal has. Real journal files, the real CLI in-process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from watchdog.cli.main import cli
from watchdog.errors import JournalError
from watchdog.journal.store import Journal

SCENARIO = Path(__file__).parent.parent / "data" / "scenarios" / "aa-clean-1000.jsonl"
RULES = "modules:\n  - name: search\n    include_defaults: true\n"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.chdir(tmp_path)  # a default ./rollout-watchdog.db would land here
    for name in ("WATCHDOG_CONFIG", "WATCHDOG_DB"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "rules.yaml").write_text(RULES)
    config = tmp_path / "watchdog.yaml"
    config.write_text("db: journal.db\nrules: [rules.yaml]\nsource: {plugin: file, options: "
                      "{path: x}}\nactuators: [{plugin: file, options: {path: "
                      f"\"{tmp_path}/{{module}}.json\"}}}}]\nmodules: [search]\n")
    return {"root": tmp_path, "config": str(config), "db": tmp_path / "journal.db"}


def cli_run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"SUDO_USER": "", "USER": "carol",
                                                    **(env or {})})


def test_baseline_commands_use_the_configs_journal_by_flag_or_environment(
        site: dict[str, Any]) -> None:
    env = {"WATCHDOG_CONFIG": site["config"]}
    done = cli_run("baseline", "capture", "--scenario", str(SCENARIO), "--module", "search",
                   env=env)
    assert done.exit_code == 0, done.output
    assert site["db"].exists() and not (site["root"] / "rollout-watchdog.db").exists()
    listed = cli_run("baseline", "list", "--json", env=env)
    assert listed.exit_code == 0, listed.output
    assert {b["module"] for b in json.loads(listed.output)} == {"search"}
    flagged = cli_run("baseline", "list", "--config", site["config"], "-o", "json")
    assert json.loads(flagged.output) == json.loads(listed.output)
    first = json.loads(listed.output)[0]["id"]
    assert cli_run("baseline", "show", str(first), env=env).exit_code == 0
    assert cli_run("baseline", "pin", str(first), "--config", site["config"]).exit_code == 0
    assert not (site["root"] / "rollout-watchdog.db").exists()


@pytest.mark.parametrize("command", [["status"], ["history"], ["checkpoint", "list"],
                                     ["baseline", "list"], ["baseline", "show", "1"]])
def test_read_only_commands_never_create_a_journal(site: dict[str, Any],
                                                   command: list[str]) -> None:
    for args in ([], ["--config", site["config"]], ["--db", "elsewhere.db"]):
        done = cli_run(*command, *args)
        assert done.exit_code == 2, (args, done.output)
        assert "no journal at" in done.output, done.output
        assert "Traceback" not in done.output
    assert sorted(p.name for p in site["root"].iterdir()) == ["rules.yaml", "watchdog.yaml"]


def test_the_read_only_journal_refuses_writes(site: dict[str, Any]) -> None:
    from watchdog.cli.readonly import ReadOnlyJournal

    Journal(site["db"]).close()
    journal = ReadOnlyJournal(site["db"])
    try:
        assert journal.decisions() == []
        with pytest.raises(JournalError):
            journal.set_setting("kill_switch", True)
    finally:
        journal.close()


def test_status_and_history_work_from_the_journal_when_the_rules_do_not_parse(
        site: dict[str, Any]) -> None:
    assert cli_run("start", "search", "--reason", "go", "--config", site["config"]
                   ).exit_code == 0
    (site["root"] / "rules.yaml").write_text("modules:\n  - name: search\n    plan: [oops\n")
    done = cli_run("status", "--config", site["config"], "--json")
    assert done.exit_code == 0, done.output
    assert "warning:" in done.stderr and "showing the journal alone" in done.stderr
    rows = json.loads(done.stdout)["modules"]
    assert [(r["module"], r["phase"], r["stage"]) for r in rows] == [("search", "progressing",
                                                                        1)]
    history = cli_run("history", "--config", site["config"], "--json")
    assert history.exit_code == 0 and len(json.loads(history.stdout)) == 1


def test_status_without_a_config_shows_only_the_journals_modules(
        site: dict[str, Any]) -> None:
    assert cli_run("start", "search", "--reason", "go", "--config", site["config"]
                   ).exit_code == 0
    done = cli_run("status", "--db", str(site["db"]), "--json")
    assert done.exit_code == 0, done.output
    assert [r["module"] for r in json.loads(done.output)["modules"]] == ["search"]  # no checkout


def test_a_config_that_cannot_be_read_is_an_error_not_a_traceback(
        site: dict[str, Any]) -> None:
    for command in (["status"], ["history"], ["baseline", "list"], ["checkpoint", "list"]):
        done = cli_run(*command, "--config", "missing.yaml")
        assert done.exit_code == 2, done.output
        assert "error: missing.yaml: cannot read: No such file or directory" in done.output
        assert done.exception is None or isinstance(done.exception, SystemExit)
    (site["root"] / "broken.yaml").write_text("db: [unclosed\n")
    done = cli_run("status", "--config", "broken.yaml")
    assert done.exit_code == 2 and "error: broken.yaml:" in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit)
