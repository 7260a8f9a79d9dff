"""``rollout-watchdog run``: the daemon, in the foreground (systemd runs it like this)."""

from __future__ import annotations

import logging
import sys

import click

from watchdog.cli.errors import exit_on_errors
from watchdog.errors import WatchdogError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET = ("apscheduler", "httpx", "httpcore")
"""Libraries whose INFO lines are per job or per request (httpx logs every scrape and
webhook call with its full URL, which may carry a credential): warnings and errors only."""


@click.command()
@click.option("--config", "config", envvar="WATCHDOG_CONFIG", type=click.Path(dir_okay=False),
              help="Daemon config file (WATCHDOG_CONFIG). Default: the embedded demo config.")
@click.option("--check", is_flag=True,
              help="Only validate the config, its rules and plugins; exit 0 or 2.")
def run(config: str | None, check: bool) -> None:
    """Run the daemon in the foreground until SIGTERM (SIGHUP reloads config and rules)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    for chatty in QUIET:
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from watchdog.cli.lean import import_http_lean

    import_http_lean()  # first: without httpx's command-line client and trio (cli/lean.py)
    from watchdog.daemon.service import Daemon

    with exit_on_errors(WatchdogError):
        if check:
            _check(config)
            return
        daemon = Daemon(config)
    with exit_on_errors(WatchdogError):  # e.g. the API's port taken: said, not a traceback
        code = daemon.run()
    sys.exit(code)


def _check(config: str | None) -> None:
    """What a start (or a reload) would validate, without opening the journal or
    listening: config, rules, plugins, then the journal file and the API's bind."""
    import os

    from watchdog.daemon.build import PluginSet, close_plugin
    from watchdog.daemon.config import load_config
    from watchdog.daemon.preflight import preflight

    loaded = load_config(config)
    built = PluginSet.build(loaded)
    try:  # the queries, tried now: a warning for each that finds nothing (cli/query.py)
        from watchdog.cli.query import check_queries

        for warning in check_queries(loaded, built.source):
            click.echo(warning, err=True)
        batching = getattr(built.source, "batching", None)  # which queries batch (prometheus)
        if callable(batching):
            from watchdog.engine import tick_windows

            modules = [loaded.rules.for_module(n) for n in loaded.module_names]
            for line in batching(modules, tick_windows(modules)):
                click.echo(line, err=True)
    finally:
        for instance in built.instances():
            close_plugin(instance)
    preflight(loaded, os.environ)
    click.echo(f"{loaded.file}: OK ({len(loaded.module_names)} modules: "
               f"{', '.join(loaded.module_names)}; rules: "
               f"{', '.join(loaded.rules.files) or 'shipped defaults'})")
