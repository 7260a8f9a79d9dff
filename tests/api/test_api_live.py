"""``GET /api/modules/{module}/live`` (the web view's rules table and charts): from the
journal's decision evidence when the API has no tick history (this server), and the
daemon's :class:`TickHistory` fed with real ticks of the real engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watchdog.api.history import TickHistory
from watchdog.api.live import module_live
from watchdog.backtest.replay import run
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import load_default_rules
from watchdog.engine import TickResult
from watchdog.journal.store import Journal

Served = Any
SCENARIOS = Path(__file__).parent.parent / "data" / "scenarios"


def test_without_the_daemon_the_numbers_come_from_the_journaled_evidence(
        reader: Served) -> None:
    body = reader.client.get("/api/modules/checkout/live").json()
    assert body["origin"] == "journal" and body["stage"] == 1
    firing = [r for r in body["rules"] if r["state"] == "breached"]
    assert [r["rule"] for r in firing] == ["error_rate_regression"]
    assert firing[0]["observed"] > firing[0]["limit"]
    error_rate = next(m for m in body["metrics"] if m["metric"] == "error_rate")
    assert error_rate["reference"] == "live V1"
    assert error_rate["points"][-1]["v2"] == firing[0]["observed"]
    none = reader.client.get("/api/modules/billing/live").json()
    assert none == {"module": "billing", "stage": None, "stage_started_at": None,
                    "evaluated_at": None, "origin": "none", "rules": [], "metrics": []}
    missing = reader.client.get("/api/modules/nope/live")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_the_tick_history_keeps_the_current_stage_of_each_metric(tmp_path: Path) -> None:
    ticks: list[TickResult] = []
    history = TickHistory(max_points=5)

    def note(result: TickResult) -> None:
        ticks.append(result)
        history.note(result)

    db = tmp_path / "journal.db"
    run(load_scenario(SCENARIOS / "reg-latency-x1.25-at-25pct-1485.jsonl"),
        load_default_rules(), journal_path=db, on_tick=note)
    kept = history.of("checkout")
    assert kept is not None
    last = ticks[-1]
    assert (kept.stage, kept.stage_started_at) == (last.checkpoint.stage,
                                                   last.checkpoint.stage_started_at)
    assert last.verdict is not None and kept.evaluated_at == last.verdict.at
    rule, what, points = kept.metrics["latency_p95_ms"]
    assert rule == "latency_p95_regression" and what == "live V1"
    assert len(points) == 5  # the cap
    assert all(p.t >= kept.stage_started_at for p in points)
    assert kept.rules[0].rule == "latency_p95_regression"
    assert history.of("search") is None
    journal = Journal(db)
    try:
        live = module_live(journal, "checkout", kept)
    finally:
        journal.close()
    assert live.origin == "daemon"
    assert live.metrics[[m.metric for m in live.metrics].index("latency_p95_ms")] \
        .points[-1].t == points[-1].t


def test_a_journaled_rule_without_a_verdict_shows_its_outcome() -> None:
    # the web view and status --watch read these states: warming and inapplicable hold
    # nothing and are shown as such; the rest of those without a verdict are inconclusive
    from watchdog.api.live import _journal_rule

    def state(**e: object) -> str:
        return _journal_rule({"rule": "r", "metric": "m", **e}).state

    assert state(breached=None, outcome="warming") == "warming"
    assert state(breached=None, outcome="inapplicable") == "inapplicable"
    assert state(breached=None, outcome="missing") == "inconclusive"
    assert state(breached=None) == "inconclusive"  # a journal from before outcomes
    assert state(breached=True, outcome="breached") == "breached"
    assert state(breached=False, outcome="clear") == "ok"
