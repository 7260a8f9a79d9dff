"""``GET /health`` (liveness, module versions, traffic) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.exposition import choose_encoder

from watchdog import __version__
from watchdog.api.context import context, journal, module_names
from watchdog.api.errors import ERROR_RESPONSES
from watchdog.api.models import Health
from watchdog.api.views import traffic, version
from watchdog.journal.store import Journal

router = APIRouter()


@router.get("/health", response_model=Health, tags=["read"],
            responses={503: ERROR_RESPONSES[503]})
def health(request: Request, j: Annotated[Journal, Depends(journal)]) -> Health:
    """Alive, and each module's version and V2 traffic percent as journaled
    (``curl -s localhost:8787/health | jq .module_versions``)."""
    ctx = context(request)
    lease = getattr(request.app.state, "lease_state", None)  # set by the daemon
    kill = bool(j.setting("kill_switch", False))
    versions, shares, phases = {}, {}, {}
    for module in module_names(ctx, j):
        cp = j.checkpoint(module)
        versions[module] = version(cp, kill)
        shares[module] = traffic(cp, kill)
        phases[module] = "not_started" if cp is None else cp.phase.value
    return Health.model_validate({"status": "ok", "version": __version__,
                                  "time": ctx.clock.now(), "kill_switch": kill,
                                  "module_versions": versions, "traffic": shares,
                                  "phases": phases, "lease": lease() if lease else None})


# HEAD: the same answer without a body (the server drops it), for load balancers and uptime
# probes; left out of the published spec, which describes GET
router.add_api_route("/health", health, methods=["HEAD"], response_model=Health,
                     include_in_schema=False)


@router.get("/metrics", tags=["read"], response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition"}})
def metrics(request: Request) -> Response:
    """The telemetry registry in the Prometheus text format (OpenMetrics on request)."""
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(context(request).registry), media_type=content_type)
