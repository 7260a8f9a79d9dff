"""Options several commands share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

F = TypeVar("F", bound=Callable[..., Any])


def output_options(f: F) -> F:
    """``--json`` and its kubectl spelling ``-o json`` (``-o text``: the default); the
    command receives one ``as_json`` flag."""

    @functools.wraps(f)
    def wrapper(*args: Any, as_json: bool, output: str | None, **kwargs: Any) -> Any:
        return f(*args, as_json=as_json or output == "json", **kwargs)

    with_output = click.option("-o", "--output", type=click.Choice(["text", "json"]),
                               default=None, help="Output format (-o json: as --json).")(wrapper)
    both = click.option("--json", "as_json", is_flag=True,
                        help="JSON output (same as -o json).")(with_output)
    return cast(F, both)
