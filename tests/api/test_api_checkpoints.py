"""Checkpoints over HTTP: ``GET /api/checkpoints`` (no token, like every read),
``POST /api/checkpoints`` and ``POST /api/checkpoints/{name}/restore`` (token, audit,
actor and reason kept), and their 401/404/409/422 answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from watchdog.api import audit
from watchdog.config.loader import load_default_rules
from watchdog.control import Control
from watchdog.journal.store import Journal

Served = Any
ServeFn = Callable[..., Any]
TOKEN = "test-token-0123456789abcdef"  # as in conftest.py
CREATE = {"name": "before-change.1", "reason": "before the config change", "actor": "alice"}
RESTORE = {"reason": "the change went wrong", "actor": "bob"}
POSTS = [("/api/checkpoints", CREATE), ("/api/checkpoints/before-change.1/restore", RESTORE)]
BAD_AUTH = [
    ({}, "missing_token"),
    ({"Authorization": "Bearer wrong-token-0123456789abcdef"}, "wrong_token"),
    ({"Authorization": f"Basic {TOKEN}"}, "missing_token"),
]


def state(db: Path) -> tuple[Any, ...]:
    """Everything a checkpoint route could change: decisions, rollout state, snapshots."""
    j = Journal(db)
    try:
        return (len(j.decisions()), [c.to_dict() for c in j.checkpoints()],
                j.setting("kill_switch", False),
                Control(j, load_default_rules()).snapshots())
    finally:
        j.close()


def audit_rows(db: Path) -> list[dict[str, Any]]:
    j = Journal(db)
    try:
        return audit.entries(j, 1000)
    finally:
        j.close()


@pytest.fixture
def journal_of(writable: Served) -> Iterator[Journal]:
    j = Journal(writable.db)
    yield j
    j.close()


def create(served: Served, body: dict[str, Any] = CREATE) -> Any:
    return served.client.post("/api/checkpoints", json=body, headers=served.auth())


def test_the_list_needs_no_token_and_starts_empty(reader: Served) -> None:
    r = reader.client.get("/api/checkpoints")
    assert r.status_code == 200 and r.json() == []


def test_create_saves_every_module_with_actor_and_reason(writable: Served, journal_of: Journal,
                                                         facts: Any) -> None:
    r = create(writable)
    assert r.status_code == 201, r.text
    search = f"progressing {facts.search.traffic_percent:g}%"
    expected = {"name": "before-change.1", "created_at": 4000.0, "actor": "alice",
                "reason": "before the config change", "kill_switch": False,
                "modules": {"checkout": "rolled_back 0%", "search": search}}
    assert r.json() == expected
    saved = Control(journal_of, load_default_rules()).snapshots()
    assert [s["name"] for s in saved] == ["before-change.1"]
    assert saved[0]["actor"] == "alice" and saved[0]["reason"] == "before the config change"
    assert writable.client.get("/api/checkpoints").json() == [expected]
    r = create(writable, {"name": "second", "reason": "  again  "})
    assert r.status_code == 201
    assert r.json()["actor"] == "api" and r.json()["reason"] == "again"
    assert [c["name"] for c in writable.client.get("/api/checkpoints").json()] == [
        "before-change.1", "second"]
    rows = audit_rows(writable.db)
    assert [(r["action"], r["module"], r["path"], r["status"], r["outcome"])
            for r in rows] == [("checkpoint_create", None, "/api/checkpoints", 201, "ok")] * 2


def test_a_duplicate_name_is_409_and_keeps_the_first(writable: Served) -> None:
    assert create(writable).status_code == 201
    before = state(writable.db)
    r = create(writable, {**CREATE, "reason": "another try", "actor": "mallory"})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "conflict" and "exists already" in r.json()["message"]
    assert state(writable.db) == before
    assert [(r["status"], r["outcome"]) for r in audit_rows(writable.db)] == [
        (201, "ok"), (409, "rejected")]


def test_restore_puts_the_rollout_state_back(writable: Served, journal_of: Journal,
                                             facts: Any) -> None:
    assert create(writable).status_code == 201
    saved = journal_of.checkpoint("search")
    assert saved is not None
    r = writable.client.post("/api/modules/search/rollback", headers=writable.auth(),
                             json={"reason": "oops"})
    assert r.status_code == 200
    r = writable.client.post("/api/modules/billing/start", headers=writable.auth(),
                             json={"reason": "started after the checkpoint"})
    assert r.status_code == 200
    decisions = len(journal_of.decisions())

    r = writable.client.post("/api/checkpoints/before-change.1/restore", json=RESTORE,
                             headers=writable.auth())
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["checkpoint"] == "before-change.1"
    assert answer["phases"] == {"checkout": "rolled_back", "search": "progressing",
                                "billing": "progressing"}  # billing: not in the checkpoint
    [decision] = answer["decisions"]  # checkout already matched: no decision
    assert decision["actor"] == "bob" and decision["action"] == "resume"
    assert decision["traffic_percent"] == facts.search.traffic_percent
    assert decision["reasons"][0].startswith("the change went wrong (restore checkpoint "
                                             "'before-change.1': rolled_back")
    cp = journal_of.checkpoint("search")
    assert cp is not None
    assert (cp.phase, cp.stage, cp.traffic_percent) == (saved.phase, saved.stage,
                                                        saved.traffic_percent)
    assert cp.stage_started_at == 4000.0  # timers restart
    assert len(journal_of.decisions()) == decisions + 1
    last = journal_of.last_decision("search")
    assert last is not None and last.decision.actor == "bob"
    assert last.decision.reasons == tuple(decision["reasons"])
    assert writable.client.get("/api/modules/search").json()["version"] == "v2"
    rows = audit_rows(writable.db)
    assert rows[-1]["action"] == "checkpoint_restore" and rows[-1]["status"] == 200
    assert rows[-1]["path"] == "/api/checkpoints/before-change.1/restore"


def test_restoring_an_unchanged_state_journals_nothing(writable: Served) -> None:
    assert create(writable).status_code == 201
    before = state(writable.db)
    r = writable.client.post("/api/checkpoints/before-change.1/restore",
                             json={"reason": "no-op"}, headers=writable.auth())
    assert r.status_code == 200 and r.json()["decisions"] == []
    assert state(writable.db) == before


def test_an_unknown_checkpoint_is_404_with_the_token(writable: Served) -> None:
    before = state(writable.db)
    r = writable.client.post("/api/checkpoints/nope/restore", json=RESTORE,
                             headers=writable.auth())
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "not_found"
    assert "no checkpoint named 'nope'" in r.json()["message"]
    assert state(writable.db) == before
    assert [(r["action"], r["status"], r["outcome"]) for r in audit_rows(writable.db)] == [
        ("checkpoint_restore", 404, "rejected")]


def test_restore_under_the_kill_switch_is_409(writable: Served) -> None:
    assert create(writable).status_code == 201
    r = writable.client.post("/api/kill-switch", headers=writable.auth(),
                             json={"state": "on", "reason": "incident"})
    assert r.status_code == 200
    before = state(writable.db)
    r = writable.client.post("/api/checkpoints/before-change.1/restore", json=RESTORE,
                             headers=writable.auth())
    assert r.status_code == 409 and "kill switch is on" in r.json()["message"]
    assert state(writable.db) == before


@pytest.mark.parametrize(("path", "body"), POSTS)
def test_writing_refuses_without_a_valid_token_and_is_journaled(
        writable: Served, path: str, body: dict[str, Any]) -> None:
    assert create(writable).status_code == 201  # so that the restore could succeed
    before = state(writable.db)
    for headers, _ in BAD_AUTH:
        r = writable.client.post(path, json=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["error"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith('Bearer realm="rollout-watchdog"')
    # neither a bad body nor an unknown checkpoint tells an anonymous caller anything
    assert writable.client.post(path, content=b"{not json").status_code == 401
    assert writable.client.post("/api/checkpoints/nope/restore",
                                json=RESTORE).status_code == 401
    assert state(writable.db) == before
    rows = audit_rows(writable.db)[1:]  # after the create above
    # refused requests: one row per route and outcome, with the count (watchdog.api.audit)
    action = "checkpoint_create" if path == "/api/checkpoints" else "checkpoint_restore"
    assert [(r["action"], r["outcome"]) for r in rows][:2] == [
        (action, "missing_token"), (action, "wrong_token")]
    assert sum(r["count"] for r in rows) == len(BAD_AUTH) + 2
    assert {r["status"] for r in rows} == {401}
    assert rows[0]["path"] == (path if action == "checkpoint_create"
                               else "/api/checkpoints/{name}/restore")  # two names
    assert rows[0]["module"] is None


def test_without_a_configured_token_writing_is_refused(serve: ServeFn,
                                                       fresh_db: Path) -> None:
    served = serve(fresh_db, token=None)
    before = state(fresh_db)
    for path, body in POSTS:
        r = served.client.post(path, json=body, headers={"Authorization": "Bearer x"})
        assert r.status_code == 401 and "no API token is configured" in r.json()["message"]
    assert state(fresh_db) == before
    assert [r["outcome"] for r in audit_rows(fresh_db)] == ["no_token_configured"] * 2
    assert served.client.get("/api/checkpoints").status_code == 200


@pytest.mark.parametrize(("path", "content", "where"), [
    ("/api/checkpoints", b'{"reason": "r"}', ["body", "name"]),
    ("/api/checkpoints", b'{"name": "a"}', ["body", "reason"]),
    ("/api/checkpoints", b'{"name": "a", "reason": "  "}', ["body", "reason"]),
    ("/api/checkpoints", b'{"name": "a b", "reason": "r"}', ["body", "name"]),
    ("/api/checkpoints", b'{"name": "a/b", "reason": "r"}', ["body", "name"]),
    ("/api/checkpoints", b'{"name": "", "reason": "r"}', ["body", "name"]),
    ("/api/checkpoints", b'{"name": "' + b"n" * 65 + b'", "reason": "r"}', ["body", "name"]),
    ("/api/checkpoints", b'{"name": 7, "reason": "r"}', ["body", "name"]),
    ("/api/checkpoints", b'{"name": "a", "reason": "r", "x": 1}', ["body", "x"]),
    ("/api/checkpoints", b'{"name": "a", "reason": "r", "actor": "a b"}',
     ["body", "actor"]),
    ("/api/checkpoints", b"{not json", ["body", 1]),
    ("/api/checkpoints/before-change.1/restore", b'{"actor": "bob"}', ["body", "reason"]),
    ("/api/checkpoints/before-change.1/restore", b'{"reason": "r", "name": "x"}',
     ["body", "name"]),
    ("/api/checkpoints/bad%20name/restore", b'{"reason": "r"}', ["path", "name"]),
    ("/api/checkpoints/" + "n" * 65 + "/restore", b'{"reason": "r"}', ["path", "name"]),
])
def test_malformed_requests_are_422_saying_what_is_wrong(
        writable: Served, path: str, content: bytes, where: list[Any]) -> None:
    assert create(writable).status_code == 201
    before = state(writable.db)
    r = writable.client.post(path, content=content, headers={
        **writable.auth(), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["status"] == 422 and body["error"] == "validation_error"
    assert where in [d["loc"] for d in body["details"]]
    assert all(set(d) == {"loc", "msg", "type"} for d in body["details"])
    assert state(writable.db) == before
