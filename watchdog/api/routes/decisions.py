"""``GET /api/decisions``: the decision journal, filtered, shaped for Grafana.

Rows carry ``time`` and ``timeEnd`` in unix seconds with ``title``, ``text`` and ``tags``,
which is what Grafana's Infinity data source needs for tables and annotations.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, NoReturn

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError

from watchdog.api.context import context, journal, known_module
from watchdog.api.errors import ERROR_RESPONSES
from watchdog.api.models import DecisionRow, ModulePath
from watchdog.api.views import decision_row
from watchdog.journal.base import Journal

router = APIRouter(tags=["read"])

MS_THRESHOLD = 1e11  # larger epoch numbers are milliseconds (Grafana's ${__from})
TIME_HELP = ("Unix seconds (or milliseconds, as Grafana's ${__from}) or RFC 3339 with a "
             "time zone, e.g. 2024-05-01T12:00:00Z")


def parse_time(text: str, where: str) -> float:
    """Unix seconds from epoch seconds, epoch milliseconds or RFC 3339 (zone required)."""
    value = text.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            _invalid(where, f"not a time: expected {TIME_HELP}")
        if parsed.tzinfo is None:
            _invalid(where, "RFC 3339 time without a time zone (add Z or +00:00)")
        return parsed.timestamp()
    if not math.isfinite(number):
        _invalid(where, "not a finite number")
    return number / 1000.0 if abs(number) >= MS_THRESHOLD else number


def _invalid(where: str, message: str) -> NoReturn:
    raise RequestValidationError([{"loc": ("query", where), "msg": message,
                                   "type": "value_error"}])


@router.get("/api/decisions", response_model=list[DecisionRow],
            responses={404: ERROR_RESPONSES[404], 422: ERROR_RESPONSES[422],
                       503: ERROR_RESPONSES[503]})
def decisions(request: Request, j: Annotated[Journal, Depends(journal)],
              module: Annotated[ModulePath | None, Query()] = None,
              since: Annotated[str | None, Query(alias="from", max_length=40,
                                                 description=TIME_HELP)] = None,
              until: Annotated[str | None, Query(alias="to", max_length=40,
                                                 description=TIME_HELP)] = None,
              limit: Annotated[int, Query(ge=1, le=10000,
                                          description="The newest N in range")] = 1000,
              evidence: Annotated[bool, Query(description="Include rule evidence")] = False,
              ) -> list[DecisionRow]:
    """Decisions oldest first, at most ``limit`` (the newest ones in the range)."""
    start = None if since is None else parse_time(since, "from")
    end = None if until is None else parse_time(until, "to")
    if module is not None:
        known_module(context(request), j, module)
    found = j.decisions(module=module, since=start, until=end, limit=limit)
    return [decision_row(d, evidence) for d in found]
