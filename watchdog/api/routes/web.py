"""The web view: a status page at ``/ui/`` (``/`` redirects there) and the one JSON route
it needs besides ``/status`` and ``/api/decisions``: ``GET /api/modules/{module}/live``.

The page is three files shipped in the package (watchdog/api/static/): HTML, CSS and a
small script that polls the JSON routes every second and draws the charts as inline SVG.
No build step, no CDN. Its Content-Security-Policy allows scripts, styles and requests
from the API's own origin only (no inline script, no other origin), and it holds no
secret: control buttons send the token the operator pastes, kept in the tab's
sessionStorage, as ``Authorization: Bearer``.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse, Response

from watchdog.api.context import context, journal, known_module
from watchdog.api.errors import ERROR_RESPONSES, ApiError
from watchdog.api.history import TickHistory
from watchdog.api.live import ModuleLive, module_live
from watchdog.api.models import ModulePath
from watchdog.journal.store import Journal

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Cache-Control": "no-cache"}
ASSETS = {"index.html": "text/html; charset=utf-8",
          "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8",
          "icon.svg": "image/svg+xml"}

router = APIRouter()
_cache: dict[str, bytes] = {}


def asset(name: str) -> bytes:
    """One of the page's files, read from the package once."""
    if name not in _cache:
        _cache[name] = (resources.files("watchdog.api") / "static" / name).read_bytes()
    return _cache[name]


def history(request: Request) -> TickHistory | None:
    found = getattr(request.app.state, "tick_history", None)
    return found if isinstance(found, TickHistory) else None


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("ui/", status_code=307)


@router.get("/ui", include_in_schema=False)
def ui_redirect() -> RedirectResponse:
    return RedirectResponse("ui/", status_code=307)


@router.get("/ui/", include_in_schema=False)
def page() -> Response:
    return Response(asset("index.html"), media_type=ASSETS["index.html"], headers=HEADERS)


@router.get("/ui/{name}", include_in_schema=False)
def static(name: str) -> Response:
    if name not in ASSETS or name == "index.html":
        raise ApiError(404, "no such file of the web view")
    return Response(asset(name), media_type=ASSETS[name], headers=HEADERS)


@router.get("/api/modules/{module}/live", response_model=ModuleLive, tags=["read"],
            responses={code: ERROR_RESPONSES[code] for code in (404, 422, 503)})
def live(request: Request, module: Annotated[ModulePath, Path()],
         j: Annotated[Journal, Depends(journal)]) -> ModuleLive:
    """Each rule's observed value against its limit at the last evaluation, and per metric
    V1 against V2 over the current stage: the values the rules compared at each tick (V2's
    aggregate over the rule's window against live V1's or the baseline's), not raw
    samples. Every tick when the API runs in the daemon (since it started); otherwise
    only the ticks that journaled a decision."""
    known_module(context(request), j, module)
    kept = history(request)
    return module_live(j, module, None if kept is None else kept.of(module))
