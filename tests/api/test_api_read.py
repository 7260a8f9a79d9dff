"""GET /health, /status and /api/modules/{module} over the replayed journal."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.journal.store import Journal

NOW = 4000.0  # the API's clock in conftest.py
Served = Any
ServeFn = Callable[..., Any]


def checkpoint_traffic(db: Path, module: str) -> float:
    journal = Journal(db)
    try:
        cp = journal.checkpoint(module)
        assert cp is not None
        return cp.traffic_percent
    finally:
        journal.close()


def test_clock_is_the_one_served(api: Any) -> None:
    assert api.NOW == NOW


def test_health_has_versions_and_traffic_per_module(reader: Served, facts: Any) -> None:
    r = reader.client.get("/health")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["status"] == "ok"
    assert body["time"] == NOW
    assert body["kill_switch"] is False
    assert body["module_versions"] == {"billing": "v1", "checkout": "v1", "search": "v2"}
    search = checkpoint_traffic(reader.db, "search")
    assert search == facts.search.traffic_percent > 0
    assert body["traffic"] == {"billing": 0.0, "checkout": 0.0, "search": search}
    assert body["phases"] == {"billing": "not_started", "checkout": "rolled_back",
                              "search": "progressing"}


def test_kill_switch_puts_every_module_on_v1(writable: Served) -> None:
    journal = Journal(writable.db)
    try:
        journal.set_setting("kill_switch", True)
    finally:
        journal.close()
    body = writable.client.get("/health").json()
    assert body["kill_switch"] is True
    assert set(body["module_versions"].values()) == {"v1"}
    assert set(body["traffic"].values()) == {0.0}
    assert writable.client.get("/status").json()["kill_switch"] is True


def by_module(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["module"]: m for m in status["modules"]}


def test_status_explains_each_module(reader: Served, facts: Any) -> None:
    r = reader.client.get("/status")
    assert r.status_code == 200
    status = r.json()
    assert status["time"] == NOW and status["kill_switch"] is False
    modules = by_module(status)
    assert sorted(modules) == ["billing", "checkout", "search"]

    checkout = modules["checkout"]
    assert checkout["phase"] == "rolled_back" and checkout["version"] == "v1"
    assert checkout["traffic_percent"] == 0.0 and checkout["stage"] == 1
    last = checkout["last_decision"]
    assert last["action"] == "rollback" and last["actor"] == "watchdog"
    assert any("error_rate" in reason for reason in last["reasons"])
    assert last["time"] == facts.rollback_at
    verdict = checkout["last_verdict"]
    assert verdict["kind"] == "critical" and "error_rate_regression" in verdict["firing"]
    assert checkout["alerts"].get("error_rate_regression") == "firing"
    assert set(checkout["baselines"]) == {"latency_p95_ms", "error_rate", "throughput_rps",
                                          "parse_rate", "memory_rss_bytes"}
    # the baseline was captured at the end of the scenario's baseline window (t=0)
    assert checkout["baseline_age_seconds"] == NOW
    assert checkout["baselines"]["error_rate"]["count"] > 100
    assert checkout["checkpoint_age_seconds"] == NOW - facts.checkout_updated

    search = modules["search"]
    assert search["phase"] == "progressing" and search["version"] == "v2"
    assert search["stage"] == facts.search.stage + 1 >= 2
    assert search["traffic_percent"] == facts.search.traffic_percent
    assert search["last_decision"]["action"] == "advance"
    assert search["last_verdict"]["kind"] == "healthy"
    assert search["last_tick_at"] == 1300.0  # replayed up to t=1300 s
    assert search["checkpoint_age_seconds"] == NOW - facts.search_updated

    billing = modules["billing"]
    assert billing["phase"] == "not_started" and billing["stage"] is None
    assert billing["last_decision"] is None and billing["baselines"] == {}


def test_one_module_matches_status(reader: Served) -> None:
    whole = by_module(reader.client.get("/status").json())
    for name in ("checkout", "search", "billing"):
        r = reader.client.get(f"/api/modules/{name}")
        assert r.status_code == 200
        assert r.json() == whole[name]


def test_unknown_module_is_404_json(reader: Served) -> None:
    r = reader.client.get("/api/modules/payments")
    assert r.status_code == 404
    assert r.json() == {"status": 404, "error": "not_found",
                        "message": "unknown module 'payments': not configured and not in "
                                   "the journal"}


def test_last_verdict_kept_by_the_daemon_in_the_journal_wins(serve: ServeFn,
                                                             fresh_db: Path) -> None:
    journal = Journal(fresh_db)
    try:
        journal.set_setting("verdict:search", {"kind": "warning", "firing": ["latency"],
                                               "since": 1234.0, "reasons": ["slow"]})
    finally:
        journal.close()
    served = serve(fresh_db)  # and no telemetry: the journal is the only source
    search = served.client.get("/api/modules/search").json()
    assert search["last_verdict"] == {"kind": "warning", "since": 1234.0,
                                      "firing": ["latency"], "reasons": ["slow"]}
    assert served.client.get("/api/modules/checkout").json()["last_verdict"] is None
