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
        daemon = _daemon_configs(targets)
        for file in daemon:
            click.echo(f"{file}: this is a daemon config; use rollout-watchdog run --check "
                       f"--config {file}", err=True)
        if daemon:
            sys.exit(1)
        for issue in err.issues:
            click.echo(str(issue), err=True)
        click.echo(f"FAILED: {len(err.issues)} problem(s)", err=True)
        sys.exit(1)
    rules = sum(len(m.rules) for m in ruleset.modules.values())
    for file in ruleset.files:
        click.echo(f"  {file}: ok")
    click.echo(f"SUCCESS: {len(ruleset.modules)} module(s), {rules} rule(s) in "
               f"{len(ruleset.files)} file(s)")


DAEMON_KEYS = ("source", "actuators", "notifiers")


def _daemon_configs(targets: list[str]) -> list[str]:
    """The files among ``targets`` that are daemon configs (a ``source:`` or
    ``actuators:`` at the top), not rule files."""
    from watchdog.config import limits
    from watchdog.config.loader import rule_files
    from watchdog.config.yamlload import load_yaml

    found = []
    for path in rule_files(list(targets)):
        try:
            # the read limits apply here too: /dev/zero or a huge file is the loader's to
            # refuse with its own message, not ours to read whole
            data = load_yaml(limits.read_text(path, limits.FILE_BYTES), str(path)).data
        except (OSError, UnicodeDecodeError, ConfigError, limits.LimitValueError):
            continue
        if isinstance(data, dict) and any(key in data for key in DAEMON_KEYS):
            found.append(str(path))
    return found
