"""The API under test: a real uvicorn server on 127.0.0.1 (a free port, always stopped)
over a real journal that the real engine wrote by replaying shipped scenarios.

The template journal holds three modules:

- ``checkout``: reg-errors-3pct replayed to its rollback (rolled_back, V1);
- ``search``: aa-clean (renamed) replayed to t=1300 s (progressing past stage 1, V2);
- ``billing``: configured but never started.

Tests that change state serve a copy of it (``fresh_db``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from watchdog.api import ApiServer, create_app
from watchdog.backtest.replay import run
from watchdog.backtest.scenario import load_scenario
from watchdog.clock import Clock, FakeClock
from watchdog.config.loader import load_default_rules
from watchdog.engine import TickResult
from watchdog.journal.store import Journal
from watchdog.model import Action
from watchdog.telemetry import JournalCollector, Telemetry, register_runtime_collectors

SCENARIOS = Path(__file__).parent.parent / "data" / "scenarios"
TOKEN = "test-token-0123456789abcdef"
MODULES = ("checkout", "search", "billing")
NOW = 4000.0  # the API's clock: after every replayed decision (0 .. 1300 s)
SEARCH_STOP = 1300.0


@dataclass
class Template:
    db: Path
    telemetry: Telemetry
    registry: CollectorRegistry


@dataclass
class Served:
    url: str
    db: Path
    client: httpx.Client
    server: ApiServer

    def auth(self, token: str = TOKEN) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    db = tmp_path_factory.mktemp("api-template") / "journal.db"
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    registry.register(JournalCollector(db, FakeClock(NOW).now))
    register_runtime_collectors(registry)  # as the daemon's registry (daemon/observe.py)

    def observe(result: TickResult) -> None:
        telemetry.observe_tick(result, 0.01)

    rules = load_default_rules()
    regression = run(load_scenario(SCENARIOS / "reg-errors-3pct-1582.jsonl"), rules,
                     journal_path=db, on_tick=observe)
    assert regression.outcome == "rolled_back"
    clean = dataclasses.replace(load_scenario(SCENARIOS / "aa-clean-1000.jsonl"),
                                module="search")
    healthy = run(clean, rules, journal_path=db, stop_after=SEARCH_STOP, on_tick=observe)
    assert healthy.outcome == "in_progress"
    return Template(db, telemetry, registry)


def restore(template: Template, target: Path) -> Path:
    """Make ``target`` a copy of the template journal (SQLite's online backup: every page
    is overwritten, so a file the API serves can be reset between tests)."""
    with contextlib.closing(sqlite3.connect(template.db)) as src, \
            contextlib.closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
    return target


@pytest.fixture
def fresh_db(template: Template, tmp_path: Path) -> Path:
    """A private copy of the template journal."""
    return restore(template, tmp_path / "journal.db")


ServeFn = Callable[..., Served]


@pytest.fixture(scope="session")
def _servers() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for s in started:
        s.client.close()
        s.server.stop()


def _start(started: list[Served], db: Path, *, token: str | None = TOKEN,
           clock: Clock | None = None, registry: CollectorRegistry | None = None,
           telemetry: Telemetry | None = None, max_body_bytes: int = 64 * 1024) -> Served:
    secret = SecretStr(token) if token is not None else None
    app = create_app(db, rules=load_default_rules(), token=secret,
                     clock=clock or FakeClock(NOW), modules=MODULES, registry=registry,
                     telemetry=telemetry, max_body_bytes=max_body_bytes)
    server = ApiServer(app, "127.0.0.1", 0, secret)
    server.start()
    served = Served(server.url, db, httpx.Client(base_url=server.url, timeout=10), server)
    started.append(served)
    return served


@pytest.fixture
def serve() -> Iterator[ServeFn]:
    """Start servers for one test; all are stopped when it ends."""
    started: list[Served] = []

    def start(db: Path, **options: object) -> Served:
        return _start(started, db, **options)  # type: ignore[arg-type]

    yield start
    for s in started:
        s.client.close()
        s.server.stop()


@pytest.fixture(scope="session")
def reader(template: Template, _servers: list[Served]) -> Served:
    """One server over the template for tests that only read (session-wide)."""
    return _start(_servers, template.db, registry=template.registry,
                  telemetry=template.telemetry)


@pytest.fixture(scope="session")
def _writable_server(template: Template, _servers: list[Served],
                     tmp_path_factory: pytest.TempPathFactory) -> Served:
    db = restore(template, tmp_path_factory.mktemp("api-writable") / "journal.db")
    return _start(_servers, db)


@pytest.fixture
def writable(template: Template, _writable_server: Served) -> Served:
    """A server over its own journal, reset to the template for each test that changes
    state (between requests the API holds no connection to it)."""
    restore(template, _writable_server.db)
    return _writable_server


@pytest.fixture(scope="session")
def api() -> SimpleNamespace:
    """The constants above, for test modules (which cannot import this file by name)."""
    return SimpleNamespace(NOW=NOW, TOKEN=TOKEN, MODULES=MODULES, SEARCH_STOP=SEARCH_STOP)


@pytest.fixture(scope="session")
def facts(template: Template) -> SimpleNamespace:
    """What the replays journaled (judge tuning may move them: tests read them here)."""
    journal = Journal(template.db)
    try:
        rollback = [jd for jd in journal.decisions(module="checkout")
                    if jd.decision.action is Action.ROLLBACK]
        search = journal.checkpoint("search")
        checkout_updated = journal.checkpoint_updated_at("checkout")
        search_updated = journal.checkpoint_updated_at("search")
        advances = [jd.decision.traffic_percent for jd in journal.decisions(module="search")]
    finally:
        journal.close()
    assert len(rollback) == 1 and search is not None
    assert checkout_updated is not None and search_updated is not None
    assert search.stage >= 1 and search.traffic_percent > 5.0, "search should have advanced"
    return SimpleNamespace(
        rollback_at=rollback[0].decision.at, checkout_updated=checkout_updated,
        search=search, search_updated=search_updated, search_traffic=advances,
        first_stage=load_default_rules().for_module("search").plan.stages[0].traffic)
