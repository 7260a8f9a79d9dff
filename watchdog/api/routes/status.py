"""``GET /status`` (every module) and ``GET /api/modules/{module}`` (one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from watchdog.api.context import context, journal, known_module, module_names
from watchdog.api.errors import ERROR_RESPONSES
from watchdog.api.models import ModulePath, ModuleStatus, Status
from watchdog.api.views import module_status
from watchdog.journal.store import Journal

router = APIRouter(tags=["read"])


@router.get("/status", response_model=Status, responses={503: ERROR_RESPONSES[503]})
def status(request: Request, j: Annotated[Journal, Depends(journal)]) -> Status:
    """Per module: phase, stage, traffic, last verdict, last decision and why, baseline
    age; and the kill switch."""
    ctx = context(request)
    now = ctx.clock.now()
    kill = bool(j.setting("kill_switch", False))
    return Status(time=now, kill_switch=kill,
                  modules=[module_status(ctx, j, m, now, kill) for m in module_names(ctx, j)])


@router.get("/api/modules/{module}", response_model=ModuleStatus,
            responses={code: ERROR_RESPONSES[code] for code in (404, 422, 503)})
def one_module(request: Request, module: Annotated[ModulePath, Path()],
               j: Annotated[Journal, Depends(journal)]) -> ModuleStatus:
    """One module's status, as in ``/status``."""
    ctx = context(request)
    known_module(ctx, j, module)
    now = ctx.clock.now()
    return module_status(ctx, j, module, now, bool(j.setting("kill_switch", False)))
