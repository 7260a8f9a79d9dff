"""POST /api/modules/{module}/step-back and /set-stage (issue 20 item 2): journaled with
actor and reason, 409 when the state does not allow it, 422 for a bad body."""

from __future__ import annotations

from typing import Any

from watchdog.journal.store import Journal
from watchdog.model import Action

Served = Any
BODY = {"reason": "p95 creeping at 25%", "actor": "alice"}


def last_decision(served: Served) -> Any:
    j = Journal(served.db)
    try:
        return j.decisions(module="search")[-1].decision
    finally:
        j.close()


def test_step_back_and_set_stage_are_journaled_with_actor_and_reason(writable: Served
                                                                       ) -> None:
    up = writable.client.post("/api/modules/search/set-stage",
                              json={**BODY, "traffic_percent": 75}, headers=writable.auth())
    assert up.status_code == 200, up.text
    assert (up.json()["action"], up.json()["traffic_percent"]) == ("advance", 75.0)
    down = writable.client.post("/api/modules/search/step-back", json=BODY,
                                headers=writable.auth())
    assert down.status_code == 200, down.text
    assert (down.json()["action"], down.json()["traffic_percent"]) == ("step_back", 50.0)
    d = last_decision(writable)
    assert (d.action, d.actor, d.reasons) == (
        Action.STEP_BACK, "alice", ("p95 creeping at 25%: to stage 3 of 6 at 50%",))


def test_a_stage_the_plan_lacks_is_409_and_a_bad_percentage_422(writable: Served) -> None:
    r = writable.client.post("/api/modules/search/set-stage",
                             json={**BODY, "traffic_percent": 30}, headers=writable.auth())
    assert r.status_code == 409 and "30% is not a stage" in r.text
    r = writable.client.post("/api/modules/search/set-stage",
                             json={**BODY, "traffic_percent": 130}, headers=writable.auth())
    assert r.status_code == 422
    r = writable.client.post("/api/modules/checkout/step-back", json=BODY,
                             headers=writable.auth())
    assert r.status_code == 409 and "rolled_back" in r.text


def test_approve_is_409_when_the_next_stage_needs_no_approval(writable: Served) -> None:
    r = writable.client.post("/api/modules/search/approve", json=BODY,
                             headers=writable.auth())
    assert r.status_code == 409 and "needs no approval" in r.text
