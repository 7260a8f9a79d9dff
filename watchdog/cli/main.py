"""Entry point: ``rollout-watchdog COMMAND``. Subcommands live one file each beside this."""

from __future__ import annotations

import click

from watchdog import __version__
from watchdog.cli.backtest import backtest
from watchdog.cli.baseline import baseline
from watchdog.cli.check import check
from watchdog.cli.control import COMMANDS as CONTROL_COMMANDS
from watchdog.cli.ruletest import ruletest
from watchdog.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rollout-watchdog")
def cli() -> None:
    """Guards staged rollouts: judges V2 against V1 and advances, holds or rolls back."""


cli.add_command(check)
cli.add_command(backtest)
cli.add_command(baseline)
cli.add_command(ruletest)
cli.add_command(run)
for _command in CONTROL_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli()
