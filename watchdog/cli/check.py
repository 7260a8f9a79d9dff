"""``rollout-watchdog check [PATHS]``: validate rule files the way promtool does."""

from __future__ import annotations

import sys

import click

from watchdog.config.loader import load_paths
from watchdog.errors import ConfigError


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
def check(paths: tuple[str, ...]) -> None:
    """Validate rule files (or folders of them). Exit 0 when all are valid, 1 otherwise."""
    targets = list(paths) or ["rules/"]
    try:
        ruleset = load_paths(list(targets))
    except ConfigError as err:
        for issue in err.issues:
            click.echo(str(issue), err=True)
        click.echo(f"FAILED: {len(err.issues)} problem(s)", err=True)
        sys.exit(1)
    rules = sum(len(m.rules) for m in ruleset.modules.values())
    for file in ruleset.files:
        click.echo(f"  {file}: ok")
    click.echo(f"SUCCESS: {len(ruleset.modules)} module(s), {rules} rule(s) in "
               f"{len(ruleset.files)} file(s)")
