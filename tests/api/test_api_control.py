"""POST control routes: the token (and the audit of every attempt), the actions journaled
with actor and reason, and the 404/409/413/422 answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from watchdog.api import audit
from watchdog.journal.store import Journal

Served = Any
ServeFn = Callable[..., Any]
TOKEN = "test-token-0123456789abcdef"  # as in conftest.py
BODY = {"reason": "checking the dashboards", "actor": "alice"}
ROUTES = [(f"/api/modules/search/{action}", BODY)
          for action in ("start", "pause", "resume", "promote", "rollback", "abort")]
ROUTES.append(("/api/kill-switch", {**BODY, "state": "on"}))
BAD_AUTH = [
    ({}, "missing_token"),
    ({"Authorization": "Bearer wrong-token-0123456789abcdef"}, "wrong_token"),
    ({"Authorization": f"Bearer {TOKEN}x"}, "wrong_token"),
    ({"Authorization": f"Basic {TOKEN}"}, "missing_token"),
    ({"Authorization": "Bearer"}, "missing_token"),
    ({"Authorization": TOKEN}, "missing_token"),
]


def read(db: Path) -> Journal:
    return Journal(db)


def snapshot(db: Path) -> tuple[Any, ...]:
    j = read(db)
    try:
        return (len(j.decisions()), [c.to_dict() for c in j.checkpoints()],
                j.setting("kill_switch", False))
    finally:
        j.close()


def audit_rows(db: Path) -> list[dict[str, Any]]:
    j = read(db)
    try:
        return audit.entries(j, 1000)
    finally:
        j.close()


@pytest.fixture
def journal_of(writable: Served) -> Iterator[Journal]:
    j = read(writable.db)
    yield j
    j.close()


def test_test_token_matches_conftest(api: Any) -> None:
    assert api.TOKEN == TOKEN


@pytest.mark.parametrize(("path", "body"), ROUTES)
def test_every_control_route_refuses_without_a_valid_token(writable: Served, path: str,
                                                           body: dict[str, Any]) -> None:
    before = snapshot(writable.db)
    for headers, _ in BAD_AUTH:
        r = writable.client.post(path, json=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith('Bearer realm="rollout-watchdog"')
        assert TOKEN not in r.text
    # neither a bad body nor an unknown module tells an anonymous caller anything
    assert writable.client.post(path, content=b"{not json").status_code == 401
    assert writable.client.post(path.replace("search", "payments"),
                                json=body).status_code == 401
    assert snapshot(writable.db) == before
    rows = audit_rows(writable.db)
    # refused requests: one row per route and outcome, with the count (watchdog.api.audit)
    assert [(r["outcome"], r["count"]) for r in rows] == [
        ("missing_token", 6), ("wrong_token", 2)]
    assert {r["status"] for r in rows} == {401}
    assert {r["client"] for r in rows} == {"127.0.0.1"}
    assert {r["method"] for r in rows} == {"POST"}
    assert rows[0]["at"] == rows[0]["last_at"] == 4000.0
    expected = "kill_switch" if path.endswith("kill-switch") else path.rsplit("/", 1)[1]
    assert {r["action"] for r in rows} == {expected}
    if expected == "kill_switch":
        assert rows[0]["path"] == path and rows[0]["module"] is None
    else:  # search and payments: the route's template, no module
        assert rows[0]["path"] == f"/api/modules/{{module}}/{expected}"
        assert rows[0]["module"] is None
        assert (rows[1]["path"], rows[1]["module"]) == (path, "search")


def test_without_a_configured_token_control_is_refused_and_journaled(
        serve: ServeFn, fresh_db: Path) -> None:
    served = serve(fresh_db, token=None)
    before = snapshot(fresh_db)
    for path, body in ROUTES:
        r = served.client.post(path, json=body, headers={"Authorization": "Bearer anything"})
        assert r.status_code == 401
        assert "no API token is configured" in r.json()["message"]
    assert snapshot(fresh_db) == before
    assert [r["outcome"] for r in audit_rows(fresh_db)] == ["no_token_configured"] * len(
        ROUTES)
    assert served.client.get("/status").status_code == 200  # reading needs no token


def last(journal: Journal, module: str) -> tuple[str, str, tuple[str, ...], str, float]:
    jd = journal.last_decision(module)
    cp = journal.checkpoint(module)
    assert jd is not None and cp is not None
    d = jd.decision
    return d.action.value, d.actor, d.reasons, cp.phase.value, cp.traffic_percent


def test_actions_are_journaled_with_actor_and_reason(writable: Served, journal_of: Journal,
                                                     facts: Any) -> None:
    now = facts.search.traffic_percent
    steps = [("pause", "paused", now), ("resume", "progressing", now),
             ("rollback", "rolled_back", 0.0), ("resume", "progressing", facts.first_stage),
             ("promote", "promoted", 100.0)]
    for i, (action, phase, traffic) in enumerate(steps):
        body = {"reason": f"step {i}: {action}", "actor": f"alice.{i}"}
        r = writable.client.post(f"/api/modules/search/{action}", json=body,
                                 headers=writable.auth())
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["module"] == "search" and answer["action"] == action
        assert answer["phase"] == phase and answer["traffic_percent"] == traffic
        assert answer["decision"]["actor"] == f"alice.{i}"
        assert answer["decision"]["reasons"] == [f"step {i}: {action}"]
        assert answer["decision"]["time"] == 4000.0
        assert last(journal_of, "search") == (action, f"alice.{i}", (f"step {i}: {action}",),
                                              phase, traffic)
    r = writable.client.post("/api/modules/checkout/abort", json={"reason": "  give up  "},
                             headers=writable.auth())
    assert r.status_code == 200
    assert last(journal_of, "checkout") == ("abort", "api", ("give up",), "aborted", 0.0)
    rows = audit_rows(writable.db)
    assert [(r["action"], r["status"], r["outcome"]) for r in rows] == [
        *[(a, 200, "ok") for a, _, _ in steps], ("abort", 200, "ok")]


def test_illegal_transition_is_409_and_changes_nothing(writable: Served) -> None:
    before = snapshot(writable.db)
    r = writable.client.post("/api/modules/checkout/pause", json=BODY,
                             headers=writable.auth())
    assert r.status_code == 409
    assert r.json()["error"] == "conflict" and "rolled_back" in r.json()["message"]
    r = writable.client.post("/api/modules/billing/pause", json=BODY,
                             headers=writable.auth())
    assert r.status_code == 409 and "no rollout yet" in r.json()["message"]
    assert snapshot(writable.db) == before
    assert [(r["status"], r["outcome"]) for r in audit_rows(writable.db)] == [
        (409, "rejected")] * 2


def test_unknown_module_is_404_with_the_token(writable: Served) -> None:
    for action in ("start", "pause", "rollback"):
        r = writable.client.post(f"/api/modules/payments/{action}", json=BODY,
                                 headers=writable.auth())
        assert r.status_code == 404, r.text
        assert "unknown module 'payments'" in r.json()["message"]
    assert {r["status"] for r in audit_rows(writable.db)} == {404}


@pytest.mark.parametrize(("path", "content", "where"), [
    ("/api/modules/search/pause", b'{"actor": "alice"}', ["body", "reason"]),
    ("/api/modules/search/pause", b'{"reason": "   "}', ["body", "reason"]),
    ("/api/modules/search/pause", b'{"reason": 42}', ["body", "reason"]),
    ("/api/modules/search/pause", b'{"reason": "r", "force": true}', ["body", "force"]),
    ("/api/modules/search/pause", b'{"reason": "r", "actor": "a b"}', ["body", "actor"]),
    ("/api/modules/search/pause", b'{"reason": "' + b"x" * 501 + b'"}', ["body", "reason"]),
    ("/api/modules/search/pause", b"{not json", ["body", 1]),
    ("/api/modules/search/pause", b"", ["body"]),
    ("/api/modules/search/pause", b"[]", ["body"]),
    ("/api/modules/bad%20name/pause", b'{"reason": "r"}', ["path", "module"]),
    ("/api/modules/billing/start", b'{"actor": "alice"}', ["body", "reason"]),
    ("/api/modules/billing/start", b'{"reason": "r", "stage": 2}', ["body", "stage"]),
    ("/api/modules/bad%20name/start", b'{"reason": "r"}', ["path", "module"]),
    ("/api/kill-switch", b'{"reason": "r", "state": "maybe"}', ["body", "state"]),
    ("/api/kill-switch", b'{"reason": "r"}', ["body", "state"]),
])
def test_malformed_requests_are_422_saying_what_is_wrong(
        writable: Served, path: str, content: bytes, where: list[Any]) -> None:
    before = snapshot(writable.db)
    r = writable.client.post(path, content=content, headers={
        **writable.auth(), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["status"] == 422 and body["error"] == "validation_error"
    assert where in [d["loc"] for d in body["details"]]
    assert all(set(d) == {"loc", "msg", "type"} for d in body["details"])  # no input echoed
    assert snapshot(writable.db) == before


def test_bodies_over_the_limit_are_413(writable: Served) -> None:
    big = {"reason": "x" * (70 * 1024)}
    r = writable.client.post("/api/modules/search/pause", json=big, headers=writable.auth())
    assert r.status_code == 413
    assert r.json() == {"status": 413, "error": "payload_too_large",
                        "message": "request body larger than 65536 bytes"}

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"reason": "'
        for _ in range(80):
            yield b"y" * 1024
        yield b'"}'

    r = writable.client.post("/api/modules/search/pause", content=chunks(),
                             headers={**writable.auth(), "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert writable.client.get("/health").status_code == 200
    j = read(writable.db)
    try:
        cp = j.checkpoint("search")
        assert cp is not None and cp.phase.value == "progressing"
    finally:
        j.close()


def test_kill_switch_on_and_off(writable: Served, journal_of: Journal) -> None:
    r = writable.client.post("/api/kill-switch", headers=writable.auth(),
                             json={"state": "on", "reason": "incident 42", "actor": "bob"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["kill_switch"] is True
    assert {d["actor"] for d in answer["decisions"]} == {"bob"}
    assert journal_of.setting("kill_switch") is True
    health = writable.client.get("/health").json()
    assert set(health["module_versions"].values()) == {"v1"}
    cp = journal_of.checkpoint("search")
    assert cp is not None and cp.phase.value == "paused" and cp.paused_by_kill_switch
    pause = journal_of.last_decision("search")
    assert pause is not None and pause.decision.reasons == ("incident 42",)
    r = writable.client.post("/api/kill-switch", headers=writable.auth(),
                             json={"state": "off", "reason": "incident 42 over"})
    assert r.status_code == 200 and r.json()["kill_switch"] is False
    cp = journal_of.checkpoint("search")
    assert cp is not None and cp.phase.value == "progressing"
    resumed = journal_of.last_decision("search")
    assert resumed is not None and resumed.decision.actor == "api"
    assert writable.client.get("/health").json()["module_versions"]["search"] == "v2"


def test_start_journals_a_rollout_with_actor_and_reason(writable: Served,
                                                        journal_of: Journal,
                                                        facts: Any) -> None:
    assert journal_of.checkpoint("billing") is None
    r = writable.client.post("/api/modules/billing/start", headers=writable.auth(),
                             json={"reason": "ticket 99: go", "actor": "carol"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["module"] == "billing" and answer["action"] == "advance"
    assert answer["phase"] == "progressing"
    assert answer["traffic_percent"] == facts.first_stage
    assert answer["decision"]["actor"] == "carol" and answer["decision"]["time"] == 4000.0
    assert answer["decision"]["reasons"][0].startswith("ticket 99: go: stage 1 of ")
    action, actor, reasons, phase, traffic = last(journal_of, "billing")
    assert (action, actor, phase, traffic) == ("advance", "carol", "progressing",
                                               facts.first_stage)
    assert reasons[0].startswith("ticket 99: go")
    cp = journal_of.checkpoint("billing")
    assert cp is not None and cp.stage == 0 and cp.started_at == 4000.0
    status = writable.client.get("/api/modules/billing").json()
    assert status["phase"] == "progressing" and status["version"] == "v2"
    # a second start is refused: the module has a rollout now
    r = writable.client.post("/api/modules/billing/start", json=BODY,
                             headers=writable.auth())
    assert r.status_code == 409 and "already has a rollout" in r.json()["message"]
    rows = audit_rows(writable.db)
    assert [(r["action"], r["module"], r["status"], r["outcome"]) for r in rows] == [
        ("start", "billing", 200, "ok"), ("start", "billing", 409, "rejected")]


def test_start_is_409_with_a_rollout_or_under_the_kill_switch(writable: Served) -> None:
    before = snapshot(writable.db)
    for module, phase in (("search", "progressing"), ("checkout", "rolled_back")):
        r = writable.client.post(f"/api/modules/{module}/start", json=BODY,
                                 headers=writable.auth())
        assert r.status_code == 409, r.text
        assert r.json()["error"] == "conflict"
        assert f"already has a rollout ({phase})" in r.json()["message"]
    assert snapshot(writable.db) == before
    r = writable.client.post("/api/kill-switch", headers=writable.auth(),
                             json={"state": "on", "reason": "incident"})
    assert r.status_code == 200
    before = snapshot(writable.db)
    r = writable.client.post("/api/modules/billing/start", json=BODY,
                             headers=writable.auth())
    assert r.status_code == 409 and "kill switch is on" in r.json()["message"]
    assert snapshot(writable.db) == before
    assert [(r["action"], r["status"]) for r in audit_rows(writable.db)] == [
        ("start", 409), ("start", 409), ("kill_switch", 200), ("start", 409)]
