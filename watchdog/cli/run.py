"""``rollout-watchdog run``: the daemon, in the foreground (systemd runs it like this)."""

from __future__ import annotations

import logging
import sys

import click

from watchdog.errors import ConfigError, WatchdogError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@click.command()
@click.option("--config", "config", envvar="WATCHDOG_CONFIG", type=click.Path(dir_okay=False),
              help="Daemon config file (WATCHDOG_CONFIG). Default: the embedded demo config.")
def run(config: str | None) -> None:
    """Run the daemon in the foreground until SIGTERM (SIGHUP reloads config and rules)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    from watchdog.daemon.service import Daemon

    try:
        daemon = Daemon(config)
    except ConfigError as err:
        for issue in err.issues:
            click.echo(f"error: {issue}", err=True)
        sys.exit(2)
    except WatchdogError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    sys.exit(daemon.run())
