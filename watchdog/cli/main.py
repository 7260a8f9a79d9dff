"""Entry point: ``rollout-watchdog COMMAND``. Subcommands live one file each beside this.

Each subcommand's module is imported only when that command runs (or for ``--help``):
``backtest`` is started once per scenario by the scorer, and importing the daemon's,
the journal's and the rule tester's modules it does not use cost about a tenth of a
second each time.
"""

from __future__ import annotations

import importlib

import click

from watchdog import __version__

# command name -> "module:attribute"
COMMANDS = {
    "check": "watchdog.cli.check:check",
    "backtest": "watchdog.cli.backtest:backtest",
    "baseline": "watchdog.cli.baseline:baseline",
    "test": "watchdog.cli.ruletest:ruletest",
    "run": "watchdog.cli.run:run",
    "journal": "watchdog.cli.journal:journal",
    "record": "watchdog.cli.record:record",
    "query": "watchdog.cli.query:query",
    "status": "watchdog.cli.status:status_cmd",
    "history": "watchdog.cli.status:history",
    **{name: f"watchdog.cli.control:{attr}" for name, attr in (
        ("start", "start"),
        ("pause", "pause"), ("resume", "resume"), ("promote", "promote"),
        ("rollback", "rollback"), ("abort", "abort"), ("kill-switch", "kill_switch"),
        ("checkpoint", "checkpoint"), ("step-back", "step_back"),
        ("set-stage", "set_stage"), ("approve", "approve"))},
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when first looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise RuntimeError(f"{target} is not the command {cmd_name!r}")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rollout-watchdog")
def cli() -> None:
    """Guards staged rollouts: judges V2 against V1 and advances, holds or rolls back."""


def main() -> None:
    cli()
