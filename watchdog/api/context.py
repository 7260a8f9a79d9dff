"""What the routes share: the journal path, the clock, the token, the registry, control.

Set once by :func:`watchdog.api.app.create_app` on ``app.state``. Each request opens its
own journal connection (:func:`journal`), so requests on FastAPI's worker threads never
share a SQLite connection, and the daemon's own connection is never touched.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Request
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from watchdog.api.errors import ApiError
from watchdog.clock import Clock
from watchdog.config.loader import RuleSet
from watchdog.journal import base, open_journal
from watchdog.rollout.state import Checkpoint
from watchdog.statusrows import configured_groups
from watchdog.telemetry import Telemetry


@dataclass(frozen=True)
class ApiContext:
    journal_path: str
    clock: Clock
    token: SecretStr | None
    modules: tuple[str, ...]
    registry: CollectorRegistry
    telemetry: Telemetry | None
    rules: RuleSet


def context(request: Request) -> ApiContext:
    ctx = request.app.state.watchdog
    assert isinstance(ctx, ApiContext)
    return ctx


def journal(request: Request) -> Iterator[base.Journal]:
    """A journal connection for this request (a FastAPI dependency)."""
    opened = open_journal(context(request).journal_path)
    try:
        yield opened
    finally:
        opened.close()


def module_names(ctx: ApiContext, journal: base.Journal) -> list[str]:
    """Modules the daemon was configured with, and every module the journal knows."""
    known = set(ctx.modules)
    known.update(configured_groups(ctx.rules, ctx.modules))
    known.update(journal.modules())
    return sorted(known)


def known_module(ctx: ApiContext, journal: base.Journal, module: str) -> Checkpoint | None:
    """The module's checkpoint (None: configured but not started); 404 when unknown."""
    cp = journal.checkpoint(module)
    if cp is None and module not in ctx.modules \
            and module not in configured_groups(ctx.rules, ctx.modules):
        raise ApiError(404, f"unknown module {module!r}: not configured and not in the "
                            "journal")
    return cp
