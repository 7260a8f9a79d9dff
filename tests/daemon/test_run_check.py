"""``run --check`` refuses what ``run`` refuses, and secrets are read within limits.

Issue 16, item 10: ``run --check`` said OK for an API on 0.0.0.0 without a token (which
``run`` refuses) and for a ``db`` that is a folder or not an SQLite file; a secret
``{from_file: /dev/zero}`` ended in MemoryError. The real command runs in process
(click's runner); the journals are real SQLite files.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from watchdog.cli.main import cli
from watchdog.daemon.build import PluginSet
from watchdog.daemon.config import load_config
from watchdog.errors import ConfigError
from watchdog.journal.store import Journal

SCENARIO = Path(__file__).parents[1] / "data" / "scenarios" / "aa-clean-1000.jsonl"
NO_TOKEN = {"WATCHDOG_API_TOKEN": None, "WATCHDOG_API_TOKEN_FILE": None,
            "CREDENTIALS_DIRECTORY": None, "WATCHDOG_API_HOST": None, "WATCHDOG_DB": None}


def config(tmp_path: Path, extra: str = "", db: str = "journal.db") -> str:
    path = tmp_path / "watchdog.yaml"
    path.write_text(f"db: {db}\nsource: {{plugin: file, options: {{path: {SCENARIO}}}}}\n"
                    "actuators: [{plugin: file, options: {path: \"{state_dir}/{module}.json\"}}]\n"
                    "modules: [checkout]\n" + extra)
    return str(path)


def run_check(path: str, **env: str | None) -> Result:
    return CliRunner().invoke(cli, ["run", "--check", "--config", path], env={**NO_TOKEN, **env})


def test_a_plain_config_is_ok_and_no_journal_is_created(tmp_path: Path) -> None:
    done = run_check(config(tmp_path))
    assert done.exit_code == 0, done.output
    assert ": OK (1 modules: checkout" in done.output
    assert not (tmp_path / "journal.db").exists()


def test_an_existing_journal_is_ok(tmp_path: Path) -> None:
    Journal(tmp_path / "journal.db").close()
    done = run_check(config(tmp_path))
    assert done.exit_code == 0, done.output


def test_an_api_beyond_loopback_without_a_token_is_refused(tmp_path: Path) -> None:
    path = config(tmp_path, "api: {enabled: true, host: 0.0.0.0, port: 0}\n")
    done = run_check(path)
    assert done.exit_code == 2, done.output
    assert f"error: {path}:5: api.host: refusing to serve the API on '0.0.0.0' " \
           "without a token" in done.output
    done = run_check(path, WATCHDOG_API_TOKEN="a-token-of-32-characters-0123456")
    assert done.exit_code == 0, done.output


def test_an_api_host_from_the_environment_is_checked_too(tmp_path: Path) -> None:
    done = run_check(config(tmp_path, "api: {enabled: true}\n"), WATCHDOG_API_HOST="0.0.0.0")
    assert done.exit_code == 2, done.output
    assert "error: WATCHDOG_API_HOST: refusing to serve the API on '0.0.0.0'" in done.output


def test_a_db_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "journal.db").mkdir()
    path = config(tmp_path)
    done = run_check(path)
    assert done.exit_code == 2, done.output
    assert f"error: {path}:1: db: {tmp_path / 'journal.db'} is a folder" in done.output


def test_a_db_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    (tmp_path / "journal.db").write_text("not a database, just text\n" * 10)
    path = config(tmp_path)
    done = run_check(path)
    assert done.exit_code == 2, done.output
    assert f"error: {path}:1: db: {tmp_path / 'journal.db'} is not an SQLite database" \
        in done.output


def test_a_db_of_another_application_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "journal.db")
    conn.execute("CREATE TABLE other (x)")
    conn.commit()
    conn.close()
    done = run_check(config(tmp_path))
    assert done.exit_code == 2, done.output
    assert "holds tables but no rollout-watchdog schema version" in done.output


def test_a_db_in_a_folder_that_cannot_be_made_is_refused(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("a file, not a folder")
    done = run_check(config(tmp_path, db="plain/journal.db"))
    assert done.exit_code == 2, done.output
    assert "db: cannot create" in done.output and "not a folder" in done.output


@pytest.mark.parametrize(("target", "why"), [("/dev/zero", "not a regular file"),
                                            ("folder", "Is a directory")],
                         ids=["device", "folder"])
def test_a_secret_file_that_is_not_a_regular_file_is_refused(tmp_path: Path, target: str,
                                                             why: str) -> None:
    (tmp_path / "folder").mkdir()
    where = target if target.startswith("/") else str(tmp_path / target)
    path = write_text(tmp_path, path_text(tmp_path, where))
    loaded = load_config(path)
    with pytest.raises(ConfigError) as err:
        PluginSet.build(loaded, env={})
    assert f"cannot read secret file {where}: {why}" in str(err.value)


def test_an_oversized_secret_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.secret"
    big.write_bytes(b"x" * (1 << 20))
    loaded = load_config(write_text(tmp_path, path_text(tmp_path, str(big))))
    with pytest.raises(ConfigError) as err:
        PluginSet.build(loaded, env={})
    assert f"cannot read secret file {big}: larger than 65,536 bytes" in str(err.value)


def path_text(tmp_path: Path, secret_file: str) -> str:
    return (f"db: journal.db\nsource: {{plugin: file, options: {{path: {SCENARIO}}}}}\n"
            "actuators:\n  - plugin: webhook\n    options:\n"
            "      url: http://127.0.0.1:9/x\n"
            f"      secret: {{from_file: {secret_file}}}\nmodules: [checkout]\n")


def write_text(tmp_path: Path, text: str) -> str:
    path = tmp_path / "watchdog.yaml"
    path.write_text(text)
    return str(path)


def test_a_token_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    path = config(tmp_path, "api: {enabled: true}\n")
    done = run_check(path, WATCHDOG_API_TOKEN_FILE="/dev/zero")
    assert done.exit_code == 2, done.output
    assert "error: /dev/zero: cannot read the API token: not a regular file" in done.output
