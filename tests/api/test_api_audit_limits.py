"""``api_audit`` stays bounded under refused requests, and ``OPTIONS`` answers every route.

Refused control requests (no token, a wrong token, none configured) are aggregated: one
row per (client, method, route, reason) per :data:`~watchdog.api.audit.BUCKET_SECONDS`,
with the count of requests and the last time; past :data:`~watchdog.api.audit.MAX_KEYS`
such rows in a bucket, further keys fold into one row. Accepted and authenticated-but-
rejected requests keep one row each. A real server over a real journal, except where the
test calls :func:`watchdog.api.audit.record` directly to play many client addresses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from watchdog.api import audit
from watchdog.clock import FakeClock
from watchdog.journal.schema import open_database
from watchdog.journal.store import Journal

Served = Any
ServeFn = Callable[..., Any]
TOKEN = "test-token-0123456789abcdef"  # as in conftest.py
NOW = 4000.0  # as in conftest.py
SPEC = json.loads((Path(__file__).parents[2] / "docs" / "openapi.json").read_text("utf-8"))


def rows(db: Path) -> list[dict[str, Any]]:
    j = Journal(db)
    try:
        return audit.entries(j, 10_000)
    finally:
        j.close()


def test_600_refused_requests_make_a_few_rows_with_exact_counts(serve: ServeFn,
                                                                fresh_db: Path) -> None:
    clock = FakeClock(NOW)
    served = serve(fresh_db, clock=clock)
    bad = [{}, {"Authorization": "Bearer wrong-token-0123456789abcdef"}]
    for i in range(600):
        module = ("search", "checkout", "payments")[i % 3]
        action = ("pause", "rollback")[(i // 3) % 2]
        r = served.client.post(f"/api/modules/{module}/{action}", json={"reason": "x"},
                               headers=bad[(i // 6) % 2])
        assert r.status_code == 401
    got = rows(fresh_db)
    assert len(got) == 4, got  # (pause, rollback) x (missing_token, wrong_token)
    assert sum(r["count"] for r in got) == 600
    assert {(r["action"], r["outcome"], r["count"]) for r in got} == {
        (a, o, 150) for a in ("pause", "rollback") for o in ("missing_token", "wrong_token")}
    for r in got:  # several modules: the route's template, no module
        assert r["path"] == f"/api/modules/{{module}}/{r['action']}" and r["module"] is None
        assert r["at"] == r["last_at"] == NOW and r["status"] == 401
        assert r["client"] == "127.0.0.1" and r["method"] == "POST"
    # a new bucket: new rows; one path only: that path and its module
    clock.advance(audit.BUCKET_SECONDS)
    for _ in range(3):
        assert served.client.post("/api/modules/search/pause",
                                  json={"reason": "x"}).status_code == 401
    clock.advance(1.5)
    assert served.client.post("/api/modules/search/pause").status_code == 401
    newer = rows(fresh_db)[4:]
    assert [(r["path"], r["module"], r["count"], r["at"], r["last_at"]) for r in newer] == [
        ("/api/modules/search/pause", "search", 4, NOW + audit.BUCKET_SECONDS,
         NOW + audit.BUCKET_SECONDS + 1.5)]


def test_accepted_and_rejected_actions_keep_one_row_each(serve: ServeFn,
                                                         fresh_db: Path) -> None:
    served = serve(fresh_db)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for action, status in (("pause", 200), ("pause", 409), ("resume", 200),
                           ("resume", 409), ("pause", 200)):
        r = served.client.post(f"/api/modules/search/{action}", json={"reason": "r"},
                               headers=auth)
        assert r.status_code == status, r.text
    got = rows(fresh_db)
    assert [(r["action"], r["status"], r["outcome"], r["count"]) for r in got] == [
        ("pause", 200, "ok", 1), ("pause", 409, "rejected", 1), ("resume", 200, "ok", 1),
        ("resume", 409, "rejected", 1), ("pause", 200, "ok", 1)]


def test_many_client_addresses_fold_into_one_row_past_the_limit(fresh_db: Path) -> None:
    clients = audit.MAX_KEYS + 40
    for i in range(clients):
        for outcome in ("missing_token", "missing_token", "wrong_token"):
            assert audit.record(str(fresh_db), audit.Attempt(
                NOW + i * 0.01, f"10.0.{i // 250}.{i % 250}", "POST",
                "/api/kill-switch", "kill_switch", None, 401, outcome))
    got = rows(fresh_db)
    assert len(got) == audit.MAX_KEYS + 1
    assert sum(r["count"] for r in got) == 3 * clients
    folded = got[-1]
    assert (folded["client"], folded["action"], folded["outcome"]) == (
        audit.OTHERS, "kill_switch", "refused")
    assert folded["at"] < folded["last_at"]


def test_real_client_addresses_are_kept_apart(serve: ServeFn, fresh_db: Path) -> None:
    served = serve(fresh_db)
    for host in ("127.0.0.2", "127.0.0.3", "127.0.0.2"):
        transport = httpx.HTTPTransport(local_address=host)
        with httpx.Client(base_url=served.url, transport=transport, timeout=10) as client:
            assert client.post("/api/kill-switch").status_code == 401
    assert [(r["client"], r["count"]) for r in rows(fresh_db)] == [
        ("127.0.0.2", 2), ("127.0.0.3", 1)]


def concrete(path: str) -> str:
    return path.replace("{module}", "search").replace("{name}", "before")


def test_options_lists_every_method_each_route_serves_without_a_token(
        writable: Served) -> None:
    served_by: dict[str, set[str]] = {}
    for path, ops in SPEC["paths"].items():
        served_by.setdefault(concrete(path), set()).update(m.upper() for m in ops)
    assert served_by["/api/checkpoints"] == {"GET", "POST"}  # two routers, one path
    served_by["/health"].add("HEAD")  # served for probes, left out of the published spec
    for path, methods in served_by.items():
        r = writable.client.options(path)
        assert r.status_code == 204, (path, r.text)
        assert r.headers["allow"] == ", ".join(sorted({*methods, "OPTIONS"})), path
        assert r.content == b""
    r = writable.client.options("/openapi.json")
    assert r.status_code == 204 and r.headers["allow"] == "GET, HEAD, OPTIONS"
    r = writable.client.options("/no/such/route")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert rows(writable.db) == []  # OPTIONS is not a control request
    # a wrong method names every method served there too
    r = writable.client.put("/api/checkpoints")
    assert r.status_code == 405 and r.headers["allow"] == "GET, OPTIONS, POST"
    assert "GET, OPTIONS, POST" in r.json()["message"]


def test_a_v4_journal_keeps_its_audit_rows_as_single_requests(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    db = open_database(path, migrate_to=4)
    db.execute("INSERT INTO api_audit (at, client, method, path, action, module, status,"
               " outcome) VALUES (12.5, '10.0.0.1', 'POST', '/api/kill-switch',"
               " 'kill_switch', NULL, 401, 'missing_token')")
    db.conn.close()
    [row] = rows(path)  # migrated to v5 on opening
    assert (row["count"], row["at"], row["last_at"]) == (1, 12.5, 12.5)
    assert audit.record(str(path), audit.Attempt(13.0, "10.0.0.1", "POST",
                                                 "/api/kill-switch", "kill_switch", None,
                                                 401, "missing_token"))
    [row] = rows(path)
    assert (row["count"], row["at"], row["last_at"]) == (2, 12.5, 13.0)
