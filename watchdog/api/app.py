"""The HTTP API's application factory.

Everything the routes use is passed in (no globals): the journal file, the rules (each
module's plan, for control), the clock, the control token, the configured modules, and
the Prometheus registry served at ``/metrics``. The daemon passes its own registry (with
its :class:`~watchdog.telemetry.Telemetry` and journal collector); without one, a fresh
registry holding a :class:`~watchdog.telemetry.JournalCollector` is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from watchdog import __version__
from watchdog.api import errors
from watchdog.api.context import ApiContext
from watchdog.api.history import TickHistory
from watchdog.api.routes import checkpoints, control, decisions, health, status, web
from watchdog.clock import Clock, SystemClock
from watchdog.config.loader import RuleSet, load_default_rules
from watchdog.telemetry import JournalCollector, Telemetry

DEFAULT_BODY_LIMIT = 64 * 1024
DESCRIPTION = """\
Status and manual control of rollout-watchdog. Reads need no token; every control route
needs `Authorization: Bearer <token>` (WATCHDOG_API_TOKEN) and a JSON body with a
`reason`. Every error is a JSON object `{status, error, message, details?}`.
"""


def create_app(journal_path: str | Path, *, rules: RuleSet | None = None,
               token: SecretStr | None = None, clock: Clock | None = None,
               modules: Sequence[str] = (), registry: CollectorRegistry | None = None,
               telemetry: Telemetry | None = None,
               max_body_bytes: int = DEFAULT_BODY_LIMIT,
               history: TickHistory | None = None) -> FastAPI:
    """The API over the journal at ``journal_path`` (a file: each request opens it);
    ``history``: the daemon's ticks, charted by the web view (``/ui/``)."""
    if str(journal_path) == ":memory:":
        raise ValueError("the API reads the journal file the daemon writes, not :memory:")
    clock = clock or SystemClock()
    if registry is None:
        registry = CollectorRegistry()
        registry.register(JournalCollector(journal_path, clock.now))
    app = FastAPI(title="rollout-watchdog", version=__version__, description=DESCRIPTION,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  generate_unique_id_function=lambda route: route.name)
    app.state.watchdog = ApiContext(
        journal_path=str(journal_path), clock=clock, token=token, modules=tuple(modules),
        registry=registry, telemetry=telemetry,
        rules=rules if rules is not None else load_default_rules())
    app.state.tick_history = history
    errors.install(app)
    for router in (health.router, status.router, decisions.router, checkpoints.reader,
                   web.router, control.router, checkpoints.router):
        app.include_router(router)
    app.add_middleware(errors.BodyLimit, limit=max_body_bytes)
    app.add_middleware(errors.Options, routes=list(app.router.routes))  # OPTIONS, no body
    app.add_middleware(errors.CatchAll)  # outermost of ours: sees every other failure
    return app
