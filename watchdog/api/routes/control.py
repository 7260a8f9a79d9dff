"""Manual control, as the CLI has it: ``POST /api/modules/{module}/{action}`` for start,
pause, resume, promote, rollback, abort, step-back, approve and set-stage, and ``POST
/api/kill-switch`` and ``POST /api/groups/{group}/kill-switch`` (checkpoints:
:mod:`watchdog.api.routes.checkpoints`).

Every route needs the bearer token (:mod:`watchdog.api.auth`) and a JSON body with a
``reason`` (and optionally the ``actor``); the action goes through
:class:`watchdog.control.Control`, which journals the decision with both.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from watchdog.api.auth import ProtectedRoute, bearer
from watchdog.api.context import context, journal, known_module
from watchdog.api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from watchdog.api.models import (
    ActionBody,
    ActionResult,
    GroupKillSwitchResult,
    KillSwitchBody,
    KillSwitchResult,
    ModuleDecisionView,
    ModulePath,
    SetStageBody,
)
from watchdog.api.views import decision_view, traffic
from watchdog.control import Control
from watchdog.groups.engine import group_kill_key
from watchdog.journal.store import Journal

DEFAULT_ACTOR = "api"
MODULE_ACTIONS = {
    "start": "Start the rollout of a configured module that has none, at its first stage",
    "pause": "Pause the rollout at its stage (traffic stays; no advance)",
    "resume": "Resume a paused rollout at its stage, or a rolled-back one from stage 1",
    "promote": "Promote V2 to 100% now",
    "rollback": "Roll back to V1 now",
    "abort": "Abort the rollout (V1, terminal)",
    "step-back": "Step the rollout back one stage (not to 0%)",
    "approve": "Approve the step to the next stage (one that needs a person's approval)",
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "Missing or invalid token (journaled)"},
    409: {"model": ErrorBody, "description": "Not allowed in the module's current phase "
                                             "(or while the kill switch is on)"},
    **ERROR_RESPONSES}

router = APIRouter(prefix="/api", tags=["control"], route_class=ProtectedRoute,
                   dependencies=[Depends(bearer)], responses=RESPONSES)


def _module_route(action: str, summary: str) -> None:
    def endpoint(request: Request, module: Annotated[ModulePath, Path()], body: ActionBody,
                 j: Annotated[Journal, Depends(journal)]) -> ActionResult:
        return _act(request, j, module, action, body)

    endpoint.__doc__ = f"{summary}. Needs the token; journaled with actor and reason."
    router.add_api_route(f"/modules/{{module}}/{action}", endpoint, methods=["POST"],
                         name=action.replace("-", "_"), summary=summary,
                         response_model=ActionResult)


def _act(request: Request, j: Journal, module: str, action: str, body: ActionBody,
         stage: float | None = None) -> ActionResult:
    ctx = context(request)
    known_module(ctx, j, module)
    done = Control(j, ctx.rules).act(action, module, ctx.clock.now(),
                                     body.actor or DEFAULT_ACTOR, body.reason, stage=stage)
    cp = j.checkpoint(module)
    assert cp is not None
    kill = bool(j.setting("kill_switch", False))
    return ActionResult(module=module, action=done.decision.action,
                        decision=decision_view(done), phase=cp.phase,
                        traffic_percent=traffic(cp, kill))


for _action, _summary in MODULE_ACTIONS.items():
    _module_route(_action, _summary)


@router.post("/modules/{module}/set-stage", name="set_stage", response_model=ActionResult,
             summary="Put the rollout at one of its plan's stages")
def set_stage(request: Request, module: Annotated[ModulePath, Path()], body: SetStageBody,
              j: Annotated[Journal, Depends(journal)]) -> ActionResult:
    """Put the rollout at the stage of ``traffic_percent`` (a stage of its plan): down is
    a step back, up an advance by the actor. Needs the token; journaled with actor and
    reason."""
    return _act(request, j, module, "set-stage", body, stage=body.traffic_percent)


@router.post("/kill-switch", name="kill_switch", response_model=KillSwitchResult)
def kill_switch(request: Request, body: KillSwitchBody,
                j: Annotated[Journal, Depends(journal)]) -> KillSwitchResult:
    """Turn the global kill switch on (V1 everywhere; progressing rollouts pause) or off
    (rollouts it paused resume). Needs the token; journaled with actor and reason."""
    ctx = context(request)
    done = Control(j, ctx.rules).set_kill_switch(body.state == "on", ctx.clock.now(),
                                                 body.actor or DEFAULT_ACTOR, body.reason,
                                                 ctx.modules)
    return KillSwitchResult(kill_switch=bool(j.setting("kill_switch", False)),
                            decisions=[decision_view(d) for d in done])


@router.post("/groups/{group}/kill-switch", name="group_kill_switch",
             response_model=GroupKillSwitchResult,
             summary="Turn a module group's own kill switch on or off")
def group_kill_switch(request: Request, group: Annotated[ModulePath, Path()],
                      body: KillSwitchBody, j: Annotated[Journal, Depends(journal)]
                      ) -> GroupKillSwitchResult:
    """A module group's kill switch, as ``kill-switch on --group``: on, the group holds
    and every member's flag is off; off, it resumes (unless the global kill switch is
    on). Needs the token; journaled with actor and reason."""
    ctx = context(request)
    if group not in ctx.rules.groups:
        known = ", ".join(sorted(ctx.rules.groups)) or "none"
        raise ApiError(404, f"unknown group {group!r} (groups: {known})")
    done = Control(j, ctx.rules).set_group_kill_switch(
        group, body.state == "on", ctx.clock.now(), body.actor or DEFAULT_ACTOR, body.reason)
    return GroupKillSwitchResult(group=group,
                                 kill_switch=bool(j.setting(group_kill_key(group), False)),
                                 decisions=[ModuleDecisionView(
                                     **decision_view(d).model_dump(),
                                     module=d.decision.module) for d in done])
