"""Module groups in the API (issue 20 item 1): ``POST /api/groups/{group}/kill-switch``
(token, journaled with actor and reason, as ``kill-switch on --group``) and each member's
state in the group's ``/status`` entry. A real uvicorn server over a real journal where
Control started the group ``comp`` of tests/test_groups.py's rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from watchdog.api import ApiServer, create_app
from watchdog.clock import FakeClock
from watchdog.config.loader import load_texts
from watchdog.control import Control
from watchdog.groups.engine import group_kill_key
from watchdog.journal.store import Journal
from watchdog.model import Action

TOKEN = "test-token-0123456789abcdef"
RULES = """
modules:
  - name: c.a
    metrics: {m: {direction: higher_is_worse}}
    rules: [{name: r, kind: absolute, metric: m, above: 1}]
    plan: &p {stages: [10, 50, 100], hold: 60s}
  - {name: c.b, metrics: {m: {direction: higher_is_worse}}, plan: *p,
     rules: [{name: r, kind: absolute, metric: m, above: 1}]}
groups:
  - name: comp
    plan: *p
    members: [{module: c.a}, {module: c.b, joins_at: 50}]
"""
BODY = {"reason": "ForceV1Mode", "actor": "carol"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path]]:
    rules = load_texts([("g.yaml", RULES)])
    db = tmp_path / "journal.db"
    journal = Journal(db)
    try:
        Control(journal, rules).act("start", "comp", 0.0, "carol", "week 7")
    finally:
        journal.close()
    app = create_app(db, rules=rules, token=SecretStr(TOKEN), clock=FakeClock(100.0),
                     modules=("c.a", "c.b"))
    server = ApiServer(app, "127.0.0.1", 0, SecretStr(TOKEN))
    server.start()
    client = httpx.Client(base_url=server.url, timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        yield client, db
    finally:
        client.close()
        server.stop()


def decisions(db: Path) -> list[Any]:
    j = Journal(db)
    try:
        return [jd.decision for jd in j.decisions()]
    finally:
        j.close()


def test_status_shows_each_members_state(served: tuple[httpx.Client, Path]) -> None:
    client, _ = served
    entries = {m["module"]: m for m in client.get("/status").json()["modules"]}
    assert entries["comp"]["members"] == {"c.a": "enabled", "c.b": "waiting"}
    assert entries["c.a"]["members"] is None  # a module has none
    one = client.get("/api/modules/comp").json()
    assert one["members"] == {"c.a": "enabled", "c.b": "waiting"}


def test_the_group_kill_switch_is_journaled_with_actor_and_reason(
        served: tuple[httpx.Client, Path]) -> None:
    client, db = served
    r = client.post("/api/groups/comp/kill-switch", json={**BODY, "state": "on"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["group"] == "comp" and answer["kill_switch"] is True
    assert [(d["module"], d["traffic_percent"]) for d in answer["decisions"]] == [
        ("comp", 0.0), ("c.a", 0.0)]
    last = decisions(db)[-2:]
    assert [(d.module, d.actor, d.kill_switch) for d in last] == [
        ("comp", "carol", True), ("c.a", "carol", True)]
    assert "ForceV1Mode" in last[0].reasons[0] and last[0].action is Action.PAUSE
    j = Journal(db)
    try:
        assert j.setting(group_kill_key("comp")) is True
        assert j.setting("kill_switch", False) is False  # the global one stays off
    finally:
        j.close()
    status = {m["module"]: m for m in client.get("/status").json()["modules"]}["comp"]
    assert status["paused_by_kill_switch"] is True
    r = client.post("/api/groups/comp/kill-switch", json={**BODY, "state": "off"})
    assert r.status_code == 200 and r.json()["kill_switch"] is False
    assert [(d["module"], d["traffic_percent"]) for d in r.json()["decisions"]] == [
        ("comp", 10.0), ("c.a", 10.0)]


def test_the_group_kill_switch_needs_the_token_and_a_known_group(
        served: tuple[httpx.Client, Path]) -> None:
    client, db = served
    before = len(decisions(db))
    r = client.post("/api/groups/comp/kill-switch", json={**BODY, "state": "on"},
                    headers={"Authorization": "Bearer wrong-token-0123456789abcdef"})
    assert r.status_code == 401
    r = client.post("/api/groups/nope/kill-switch", json={**BODY, "state": "on"})
    assert r.status_code == 404 and "comp" in r.text
    r = client.post("/api/groups/comp/kill-switch", json={"state": "on"})
    assert r.status_code == 422
    assert len(decisions(db)) == before


def test_a_configured_group_starts_over_the_api_and_its_members_do_not(
        tmp_path: Path) -> None:
    # a group whose members are all configured modules is the daemon's to run: it is
    # listed and can be started before it has a checkpoint; once it runs, a member's own
    # start is refused (its flag follows the group)
    rules = load_texts([("g.yaml", RULES)])
    db = tmp_path / "journal.db"
    Journal(db).close()
    app = create_app(db, rules=rules, token=SecretStr(TOKEN), clock=FakeClock(100.0),
                     modules=("c.a", "c.b"))
    server = ApiServer(app, "127.0.0.1", 0, SecretStr(TOKEN))
    server.start()
    client = httpx.Client(base_url=server.url, timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        listed = {m["module"]: m["phase"] for m in client.get("/status").json()["modules"]}
        assert listed["comp"] == "not_started"
        assert client.get("/api/modules/comp").status_code == 200
        started = client.post("/api/modules/comp/start", json=BODY)
        assert started.status_code == 200, started.text
        refused = client.post("/api/modules/c.a/start", json=BODY)
        assert refused.status_code == 409 and "member of group 'comp'" in refused.text
    finally:
        client.close()
        server.stop()
