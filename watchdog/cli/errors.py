"""How a command reports bad input: ``error: ...`` lines on stderr, then exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from watchdog.errors import ConfigError


@contextmanager
def exit_on_errors(*kinds: type[Exception], code: int = 2) -> Iterator[None]:
    """Print a :class:`ConfigError`'s issues (each ``file:line: ...``) or one of ``kinds``
    as ``error:`` lines and exit with ``code``; anything else propagates."""
    try:
        yield
    except ConfigError as err:
        for issue in err.issues:
            click.echo(f"error: {issue}", err=True)
        sys.exit(code)
    except kinds as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(code)
