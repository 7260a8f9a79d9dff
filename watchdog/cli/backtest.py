"""``rollout-watchdog backtest SCENARIO``: replay a recorded rollout (contract in DESIGN.md)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from watchdog.backtest import replay
from watchdog.backtest.scenario import load_scenario
from watchdog.backtest.timeline import render
from watchdog.cli.errors import exit_on_errors
from watchdog.config.loader import RuleSet, load_default_rules, load_paths
from watchdog.errors import ScenarioError, UnknownModule


@click.command()
@click.argument("scenario", type=click.Path())
@click.option("--rules", "rules", multiple=True, type=click.Path(),
              help="Rule file or folder (repeatable). Default: the shipped default rules.")
@click.option("--config", "old_rules", multiple=True, type=click.Path(), hidden=True,
              help="Deprecated spelling of --rules (rule files, not a daemon config).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the contract).")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default=None,
              help="Output format (-o json: as --json).")
@click.option("--plot", type=click.Path(), help="Also draw the replay to this PNG file.")
@click.option("--approve", is_flag=True,
              help="Approve each step that needs a person's approval as soon as it is "
                   "ready (required when the plan has such a stage).")
def backtest(scenario: str, rules: tuple[str, ...], old_rules: tuple[str, ...],
             as_json: bool, output: str | None, plot: str | None, approve: bool) -> None:
    """Replay SCENARIO (JSON Lines) through the judge and rollout state machine.

    --config is a deprecated spelling of --rules here (it takes rule files): it still
    works, with a warning on stderr."""
    as_json = as_json or output == "json"
    if old_rules:
        click.echo("warning: backtest --config is deprecated: it takes rule files, so it is "
                   "now --rules (--config names the daemon config in every other command)",
                   err=True)
    paths: list[str | Path] = [*rules, *old_rules]
    if plot:
        _plot_or_exit(None, None, plot)  # matplotlib missing: say so before the replay
    with exit_on_errors(ScenarioError, UnknownModule):
        ruleset = load_paths(paths) if paths else load_default_rules()
        loaded = load_scenario(scenario)
        if loaded.members:  # a group recording (docs/scenario-format-groups.md)
            from watchdog.backtest.groupreplay import run_group

            result = run_group(loaded, ruleset, approve=approve)
        else:
            result = replay.run(loaded, ruleset, approve=approve)
    if as_json:
        click.echo(json.dumps(_finite(result.to_json())))
    else:
        click.echo(render(result))
    if plot:
        _plot_or_exit(result, ruleset, plot)
        if not as_json:
            click.echo(f"plot written to {plot}")


def _plot_or_exit(result: replay.BacktestResult | None, rules: RuleSet | None,
                  path: str) -> None:
    """Draw (or, without a result, only check matplotlib is there); exit 2 on failure."""
    from watchdog.backtest.plot import draw, require_matplotlib
    from watchdog.errors import WatchdogError

    try:
        if result is None or rules is None:
            require_matplotlib()
        else:
            draw(result, rules, path)
    except WatchdogError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)


def _finite(value: Any) -> Any:
    """Strict JSON: non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
