"""Checkpoints, as the CLI's ``checkpoint create|list|restore``: named snapshots of every
module's rollout state (and the kill switch).

``GET /api/checkpoints`` is a read and needs no token, like every other GET. Creating
(``POST /api/checkpoints``) and restoring (``POST /api/checkpoints/{name}/restore``) need
the bearer token and a ``reason``, are recorded in ``api_audit``, and go through
:class:`watchdog.control.Control`: the snapshot keeps its actor and reason, a restore
journals a decision (with both) for each module whose state changes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from watchdog.api.auth import ProtectedRoute, bearer
from watchdog.api.context import context, journal
from watchdog.api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from watchdog.api.models import (
    ActionBody,
    CheckpointBody,
    CheckpointName,
    CheckpointView,
    RestoreResult,
)
from watchdog.api.routes.control import DEFAULT_ACTOR
from watchdog.api.views import decision_view
from watchdog.control import Control
from watchdog.journal.store import Journal

READ_RESPONSES: dict[int | str, dict[str, Any]] = {503: ERROR_RESPONSES[503]}
CONTROL_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid token (journaled)"},
    **ERROR_RESPONSES}
NOT_FOUND = {"model": ErrorBody, "description": "No checkpoint of that name, or no route"}

reader = APIRouter(prefix="/api", tags=["read"])
router = APIRouter(prefix="/api", tags=["control"], route_class=ProtectedRoute,
                   dependencies=[Depends(bearer)], responses=CONTROL_RESPONSES)


def _views(control: Control) -> list[CheckpointView]:
    return [CheckpointView.model_validate(row) for row in control.snapshots()]


@reader.get("/checkpoints", name="checkpoints", response_model=list[CheckpointView],
            responses=READ_RESPONSES)
def checkpoints(request: Request, j: Annotated[Journal, Depends(journal)]
                ) -> list[CheckpointView]:
    """The saved checkpoints, oldest first: who took each, why, and every module's phase
    and traffic then."""
    return _views(Control(j, context(request).rules))


@router.post("/checkpoints", name="checkpoint_create", status_code=201,
             response_model=CheckpointView,
             responses={409: {"model": ErrorBody,
                              "description": "A checkpoint of that name exists already"}})
def checkpoint_create(request: Request, body: CheckpointBody,
                      j: Annotated[Journal, Depends(journal)]) -> CheckpointView:
    """Save every module's rollout state (and the kill switch) as ``name``. Needs the
    token; kept with actor and reason."""
    ctx = context(request)
    control = Control(j, ctx.rules)
    control.snapshot_create(body.name, ctx.clock.now(), body.actor or DEFAULT_ACTOR,
                            body.reason)
    return next(v for v in _views(control) if v.name == body.name)


@router.post("/checkpoints/{name}/restore", name="checkpoint_restore",
             response_model=RestoreResult,
             responses={404: NOT_FOUND, 409: {
                 "model": ErrorBody, "description": "The kill switch is on"}})
def checkpoint_restore(request: Request, name: Annotated[CheckpointName, Path()],
                       body: ActionBody, j: Annotated[Journal, Depends(journal)]
                       ) -> RestoreResult:
    """Bring every module of checkpoint ``name`` back to its state then: a decision per
    module that changes (timers restart, alert states start afresh); modules started
    after the checkpoint keep their state. Needs the token; journaled with actor and
    reason."""
    ctx = context(request)
    control = Control(j, ctx.rules)
    if all(s["name"] != name for s in control.snapshots()):
        raise ApiError(404, f"no checkpoint named {name!r}; see GET /api/checkpoints")
    done = control.snapshot_restore(name, ctx.clock.now(), body.actor or DEFAULT_ACTOR,
                                    body.reason)
    return RestoreResult(checkpoint=name, decisions=[decision_view(d) for d in done],
                         phases={c.module: c.phase for c in j.checkpoints()})
