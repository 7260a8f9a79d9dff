"""The command-line entry point loads each subcommand's module only when it runs."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from watchdog.cli.main import COMMANDS, cli


def test_every_listed_command_resolves_to_itself() -> None:
    ctx = click.Context(cli)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name
    assert cli.get_command(ctx, "nosuch") is None


def test_help_lists_every_command_and_an_unknown_one_is_an_error() -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["--help"])
    assert shown.exit_code == 0
    for name in COMMANDS:
        assert f"  {name} " in shown.output
    wrong = runner.invoke(cli, ["nosuch"])
    assert wrong.exit_code == 2 and "No such command 'nosuch'" in wrong.output


def test_the_entry_point_imports_no_subcommand_until_one_runs() -> None:
    code = ("import sys, watchdog.cli.main; "
            "print(sorted(m for m in sys.modules if m.startswith('watchdog.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    for heavy in ("watchdog.cli.backtest", "watchdog.cli.control", "watchdog.engine",
                  "watchdog.journal.store", "watchdog.config.schema"):
        assert repr(heavy) not in loaded, loaded
