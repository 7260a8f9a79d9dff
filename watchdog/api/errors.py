"""Every error the API returns is JSON: ``{"status", "error", "message", "details"?}``.

Unknown routes (404), wrong methods (405), malformed bodies or parameters (422, saying
which field and why, without echoing the input), bodies over the limit (413), failed
authentication (401), illegal transitions (409), an unreadable journal (503) and
anything unexpected (500, with no traceback: that goes to the log; :class:`CatchAll`).
``OPTIONS`` on a route, and the ``Allow`` header of a 405, name every method served at
that path, whichever router serves it (:class:`Options`).
"""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchdog.errors import IllegalTransition, JournalError, UnknownModule

log = logging.getLogger(__name__)

CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
         415: "unsupported_media_type", 422: "validation_error", 500: "internal_error",
         503: "unavailable"}


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    status: int
    error: str
    message: str
    details: list[ErrorDetail] | None = None


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, details: list[dict[str, Any]] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "error": CODES.get(status, "error"),
                            "message": message}
    if details is not None:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": description} for code, description in (
        (400, "Request body is not UTF-8 JSON text"),
        (404, "Unknown module or route"), (413, "Request body too large"),
        (422, "Invalid parameters or body"), (503, "The journal cannot be read"))}


def install(app: FastAPI) -> None:
    """Register the JSON handlers on ``app``."""

    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message, headers=exc.headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        message = exc.detail if isinstance(exc.detail, str) else CODES.get(
            exc.status_code, "error")
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route; see /openapi.json"
        headers = dict(exc.headers) if exc.headers else None
        if exc.status_code == 405:
            allowed = ", ".join(allowed_methods(request.app.router.routes, request.scope))
            headers = {**(headers or {}), "Allow": allowed}
            message = f"method {request.method} not allowed here (allowed: {allowed})"
        return error_response(exc.status_code, message, headers=headers)

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        details = [{"loc": [p for p in e.get("loc", ()) if isinstance(p, str | int)],
                    "msg": str(e.get("msg", "invalid")), "type": str(e.get("type", ""))}
                   for e in exc.errors()]
        where = "; ".join(f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}"
                          for d in details[:5])
        return error_response(422, f"invalid request: {where}", details)

    async def unknown_module(_: Request, exc: Exception) -> JSONResponse:
        return error_response(404, str(exc))

    async def illegal(_: Request, exc: Exception) -> JSONResponse:
        return error_response(409, str(exc))

    async def journal_down(_: Request, exc: Exception) -> JSONResponse:
        log.error("api: journal error: %s", exc)
        return error_response(503, "the journal cannot be read or written; see the log")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(UnknownModule, unknown_module)
    app.add_exception_handler(IllegalTransition, illegal)
    app.add_exception_handler(JournalError, journal_down)
    app.add_exception_handler(sqlite3.Error, journal_down)


class CatchAll:
    """ASGI middleware: an unexpected exception becomes a JSON 500 (the traceback goes to
    the log only). Unlike an ``Exception`` handler, which Starlette runs and then re-raises
    so that the server drops the connection, the exception ends here and the connection
    stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            log.exception("api: %s %s failed", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "internal error; see the daemon's log")
            await response(scope, receive, send)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 before the app
    sees any of it (by Content-Length when given, else by counting what arrives)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send, 413 if declared.isdigit() else 400)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send, 413)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, status: int) -> None:
        message = (f"request body larger than {self.limit} bytes" if status == 413
                   else "invalid Content-Length")
        response = error_response(status, message, headers={"Connection": "close"})
        await send({"type": "http.response.start", "status": status,
                    "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """Every method some route serves at ``scope``'s path, and OPTIONS; [] when none."""
    served = {method for method in METHODS for route in routes
              if route.matches({**scope, "method": method})[0] is Match.FULL}
    return sorted(served | {"OPTIONS"}) if served else []


class Options:
    """ASGI middleware: ``OPTIONS`` on a path some route serves is 204 with ``Allow``
    listing every method served there (no token needed: it reveals only what the published
    OpenAPI spec says); on any other path 404."""

    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "OPTIONS":
            await self.app(scope, receive, send)
            return
        allowed = allowed_methods(self.routes, scope)
        if not allowed:
            response = error_response(404, "no such route; see /openapi.json")
            await response(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 204,
                    "headers": [(b"allow", ", ".join(allowed).encode("ascii"))]})
        await send({"type": "http.response.body", "body": b""})
