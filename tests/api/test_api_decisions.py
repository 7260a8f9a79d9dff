"""GET /api/decisions: filters, limits, time formats, and the Grafana row shape."""

from __future__ import annotations

from typing import Any

import pytest

from watchdog.api.routes.decisions import parse_time
from watchdog.journal.store import Journal

Served = Any


@pytest.fixture(scope="module")
def journaled(reader: Served) -> list[dict[str, Any]]:
    journal = Journal(reader.db)
    try:
        return [jd.to_dict() for jd in journal.decisions()]
    finally:
        journal.close()


def get(reader: Served, **params: Any) -> Any:
    r = reader.client.get("/api/decisions", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_all_decisions_as_grafana_rows(reader: Served, journaled: list[dict[str, Any]],
                                       facts: Any) -> None:
    rows = get(reader)
    assert [r["id"] for r in rows] == [d["id"] for d in journaled]
    # checkout: start, rollback; search: start and its advances
    assert len(rows) == 2 + len(facts.search_traffic)
    for row, d in zip(rows, journaled, strict=True):
        assert row["time"] == row["timeEnd"] == d["at"]
        assert row["module"] == d["module"] and row["action"] == d["action"]
        assert row["text"] == "; ".join(d["reasons"])
        assert row["tags"] == f"rollout-watchdog,{d['module']},{d['action']}"
        assert row["title"].startswith(d["module"] + " ")
        assert row["evidence"] is None
    rollback = next(r for r in rows if r["action"] == "rollback")
    assert rollback["title"] == "checkout rolled back to 0%"
    assert rollback["time"] == facts.rollback_at and rollback["from_stage"] == 1
    assert rollback["applied"] is True


def test_filter_by_module(reader: Served, facts: Any) -> None:
    rows = get(reader, module="search")
    assert [r["action"] for r in rows] == ["advance"] * len(facts.search_traffic)
    assert [r["traffic_percent"] for r in rows] == facts.search_traffic
    assert [r["to_stage"] for r in rows] == list(range(1, len(rows) + 1))
    assert {r["module"] for r in rows} == {"search"}


@pytest.mark.parametrize(("start", "end"), [
    ("500", "1250"),
    ("1970-01-01T00:08:20Z", "1970-01-01T00:20:50+00:00"),
    ("500.0", "1970-01-01T01:20:50+01:00"),
])
def test_time_range_in_seconds_milliseconds_or_rfc3339(reader: Served, start: str,
                                                       end: str) -> None:
    rows = get(reader, **{"from": start, "to": end})
    assert [(r["module"], r["time"]) for r in rows] == [("search", 600.0), ("search", 1200.0)]


def test_epoch_milliseconds_are_recognised() -> None:
    # Grafana's ${__from}/${__to} are epoch milliseconds; seconds stay seconds
    assert parse_time("1714564800000", "from") == 1714564800.0
    assert parse_time("1714564800", "from") == 1714564800.0
    assert parse_time("2024-05-01T12:00:00Z", "from") == 1714564800.0
    assert parse_time(" 2024-05-01T14:00:00+02:00 ", "to") == 1714564800.0


def test_range_bounds_are_inclusive(reader: Served, facts: Any) -> None:
    at = facts.rollback_at
    assert at < 600.0  # the regression is caught within the first stage
    rows = get(reader, **{"from": str(at), "to": "600"})
    assert [r["time"] for r in rows] == [at, 600.0]


def test_limit_keeps_the_newest_oldest_first(reader: Served,
                                             journaled: list[dict[str, Any]]) -> None:
    rows = get(reader, limit=2)
    assert [r["id"] for r in rows] == [d["id"] for d in journaled[-2:]]
    assert get(reader, module="checkout", limit=1)[0]["action"] == "rollback"


def test_evidence_on_request(reader: Served) -> None:
    rows = get(reader, module="checkout", evidence="true")
    rollback = rows[-1]
    assert rollback["action"] == "rollback"
    fired = [e for e in rollback["evidence"] if e.get("breached")]
    assert [e["rule"] for e in fired] == ["error_rate_regression"]
    assert fired[0]["observed"] > fired[0]["limit"]


@pytest.mark.parametrize(("params", "where"), [
    ({"from": "yesterday"}, ["query", "from"]),
    ({"to": "2024-05-01T12:00:00"}, ["query", "to"]),  # no time zone
    ({"from": "nan"}, ["query", "from"]),
    ({"limit": "0"}, ["query", "limit"]),
    ({"limit": "10001"}, ["query", "limit"]),
    ({"limit": "ten"}, ["query", "limit"]),
    ({"module": "no such module!"}, ["query", "module"]),
])
def test_bad_parameters_are_422_naming_the_parameter(reader: Served, params: dict[str, str],
                                                     where: list[str]) -> None:
    r = reader.client.get("/api/decisions", params=params)
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "validation_error" and body["status"] == 422
    assert [d["loc"] for d in body["details"]] == [where]
    assert ".".join(where) in body["message"]


def test_unknown_module_is_404(reader: Served) -> None:
    r = reader.client.get("/api/decisions", params={"module": "payments"})
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_configured_module_without_decisions_is_empty(reader: Served) -> None:
    assert get(reader, module="billing") == []
