"""Bearer-token authentication of the control routes, and the audit of every attempt.

:class:`ProtectedRoute` checks the token before FastAPI reads the body or resolves any
dependency, so a caller without the token learns nothing (not whether the module exists,
not what the body should look like): every such request is 401, and journaled (refused
requests aggregated per client, route and reason: :mod:`watchdog.api.audit`). The token
is compared in constant time (:func:`hmac.compare_digest`). With no token configured the
control routes refuse everyone (use the CLI on the host instead).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from watchdog.api import audit
from watchdog.api.context import context
from watchdog.api.errors import ApiError
from watchdog.errors import IllegalTransition, JournalError, UnknownModule

log = logging.getLogger(__name__)

bearer = HTTPBearer(auto_error=False, description="The API token (WATCHDOG_API_TOKEN)")
"""Declares the scheme in the OpenAPI spec; :class:`ProtectedRoute` does the checking."""

MESSAGES = {
    "missing_token": "authentication required: send 'Authorization: Bearer <token>'",
    "wrong_token": "invalid token",
    "no_token_configured": "control through the API is disabled: no API token is "
                           "configured (WATCHDOG_API_TOKEN); use the CLI on the host",
}


def verify(header: str | None, expected: SecretStr | None) -> str:
    """``ok``, or why not: ``missing_token``, ``wrong_token``, ``no_token_configured``."""
    if expected is None:
        return "no_token_configured"
    scheme, _, presented = (header or "").strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return "missing_token"
    same = hmac.compare_digest(presented.encode("utf-8", "surrogateescape"),
                               expected.get_secret_value().encode("utf-8"))
    return "ok" if same else "wrong_token"


def status_of(exc: BaseException) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 422
    if isinstance(exc, UnknownModule):
        return 404
    if isinstance(exc, IllegalTransition):
        return 409
    return 503 if isinstance(exc, JournalError) else 500


class ProtectedRoute(APIRoute):
    """A route that needs the bearer token; each call is recorded in ``api_audit``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        action = self.name
        route = self.path

        async def guarded(request: Request) -> Response:
            ctx = context(request)
            module = request.path_params.get("module")

            def attempt(status: int, outcome: str) -> audit.Attempt:
                client = request.client.host if request.client is not None else "unknown"
                return audit.Attempt(ctx.clock.now(), client, request.method,
                                     request.url.path, action,
                                     module if isinstance(module, str) else None,
                                     status, outcome, route)

            outcome = verify(request.headers.get("authorization"), ctx.token)
            if outcome != "ok":
                refused = attempt(401, outcome)
                recorded = await run_in_threadpool(audit.write, ctx.journal_path, refused)
                # one warning per audit row: a flood of refused requests is counted there
                log.log(logging.DEBUG if recorded == "counted" else logging.WARNING,
                        "api: refused %s %s from %s: %s", request.method,
                        request.url.path, refused.client, outcome)
                challenge = 'Bearer realm="rollout-watchdog"' + (
                    ', error="invalid_token"' if outcome == "wrong_token" else "")
                raise ApiError(401, MESSAGES[outcome], {"WWW-Authenticate": challenge})
            try:
                response = await handler(request)
            except Exception as exc:
                status = status_of(exc)
                await run_in_threadpool(audit.record, ctx.journal_path,
                                        attempt(status, "rejected"))
                raise
            await run_in_threadpool(audit.record, ctx.journal_path,
                                    attempt(response.status_code, "ok"))
            return response

        return guarded
