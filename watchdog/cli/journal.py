"""``rollout-watchdog journal``: operations on the journal itself."""

from __future__ import annotations

import sys

import click

from watchdog.errors import JournalError


@click.group("journal")
def journal() -> None:
    """Operations on the journal (SQLite file or PostgreSQL database)."""


@journal.command("migrate")
@click.option("--from", "source", required=True, metavar="SQLITE|URL",
              help="The journal to copy: a SQLite path (or sqlite:///PATH) or a "
                   "postgresql:// URL.")
@click.option("--to", "target", required=True, metavar="URL|SQLITE",
              help="Where to copy it (created and migrated if needed).")
@click.option("--force", is_flag=True,
              help="Replace the contents of a target that is not empty.")
def migrate_cmd(source: str, target: str, force: bool) -> None:
    """Copy a journal with its history (decisions keep their ids and order; checkpoints,
    alerts, baselines, settings, snapshots, notification outbox, API audit, leases).

    Stop the daemons writing to the source first. Exit status 2 when the target is not
    empty (without --force) or a journal cannot be opened."""
    from watchdog.journal.migrate import migrate

    try:
        copied = migrate(source, target, force=force)
    except (JournalError, ValueError) as err:
        click.echo(f"rollout-watchdog journal migrate: {err}", err=True)
        sys.exit(2)
    click.echo(f"copied {copied.summary()}")
