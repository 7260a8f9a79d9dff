"""The Prometheus HTTP API's answers, decoded: errors sorted into the source error kinds,
result data turned into series. Pure: no I/O (the HTTP calls are in ``prometheus.py``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx

from watchdog.errors import BadQuery, EmptyResult, SourceError
from watchdog.model import Version
from watchdog.sources import deadline as dl

log = logging.getLogger("watchdog.sources.prometheus")


class Labelled(Protocol):
    @property
    def labels(self) -> dict[str, str]: ...


S = TypeVar("S", bound=Labelled)


@dataclass(frozen=True)
class PromSeries:
    """One series of a query result: its labels and its ``(t, value)`` points."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


def error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return f": {text[:200]}" if text else ""
    if isinstance(body, dict) and body.get("error"):
        return f": {body.get('errorType', 'error')}: {body['error']}"
    return ""


def payload(url: str, response: httpx.Response) -> Any:
    status = response.status_code
    if status in (400, 422):
        raise BadQuery(f"prometheus rejected the query (HTTP {status}){error_text(response)}")
    if status in (401, 403):
        raise SourceError(f"prometheus {url}: HTTP {status}: check the credentials")
    if status >= 300:
        raise SourceError(f"prometheus {url}: HTTP {status}{error_text(response)}")
    try:
        body = response.json()
    except ValueError as err:
        raise SourceError(f"prometheus {url}: the answer is not JSON "
                          f"(is this the Prometheus base URL?)") from err
    if not isinstance(body, dict) or body.get("status") not in ("success", "error"):
        raise SourceError(f"prometheus {url}: not a Prometheus API answer")
    if body["status"] == "error":
        kind, message = body.get("errorType", "error"), body.get("error", "")
        if kind in ("bad_data", "execution"):
            raise BadQuery(f"prometheus rejected the query: {kind}: {message}")
        raise SourceError(f"prometheus {url}: {kind}: {message}")
    for warning in body.get("warnings") or []:
        log.warning("prometheus %s: %s", url, warning)
    return body.get("data")


def decode(data: Any, promql: str) -> list[PromSeries]:
    """The series of a ``data`` object (matrix, vector or scalar result)."""
    try:
        kind, result = data["resultType"], data["result"]
        if kind == "matrix":
            return [PromSeries(dict(r["metric"]),
                               tuple((float(t), float(v)) for t, v in r["values"]))
                    for r in result]
        if kind == "vector":
            return [PromSeries(dict(r["metric"]), ((float(r["value"][0]),
                                                    float(r["value"][1])),))
                    for r in result]
        if kind == "scalar":
            return [PromSeries({}, ((float(result[0]), float(result[1])),))]
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise SourceError(f"prometheus: malformed answer to {promql!r}: {err}") from err
    raise BadQuery(f"prometheus: {promql!r} gives a {kind} result, not numbers")


def one_series(series: Sequence[S], metric: str, version: Version) -> S:
    """The query's one series; BadQuery when it returns several (not aggregated)."""
    if len(series) > 1:
        shown = ", ".join(str(s.labels) for s in series[:3])
        raise BadQuery(f"query of {metric} for {version} returns {len(series)} series "
                       f"({shown}...): aggregate it to one, e.g. with sum() or max()")
    return series[0]


def worst(errors: Iterable[SourceError]) -> SourceError | None:
    """The error that best explains a fetch without samples: a rejected query, then an
    unreachable server or a failure of its own, then a missed deadline, then no data."""
    def rank(e: SourceError) -> int:
        return 0 if isinstance(e, BadQuery) else 2 if isinstance(e, dl.DeadlineExceeded) \
            else 3 if isinstance(e, EmptyResult) else 1
    return min(errors, key=rank, default=None)
