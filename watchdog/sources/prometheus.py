"""The ``prometheus`` source: PromQL over the Prometheus HTTP API.

Each declared metric's ``query`` is a PromQL template; ``{module}`` and ``{version}`` are
replaced by plain string replacement (PromQL's own braces are left alone). ``fetch`` runs one
range query (``/api/v1/query_range``, step = the module's interval) per metric and version,
so a baseline over a past window costs one request, not one per sample; ``instant`` runs
instant queries (``/api/v1/query``).

Errors: an unreachable server, a timeout, HTTP 429 or 5xx are :class:`SourceUnavailable`
and are retried with exponential backoff; a rejected query (HTTP 400/422, ``bad_data``) is
:class:`BadQuery`; a query with no series is :class:`EmptyResult`. Credentials are
``SecretStr`` and never logged or shown in ``repr``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import SecretStr

from watchdog.config.schema import Module
from watchdog.errors import BadQuery, EmptyResult, SourceError, SourceUnavailable
from watchdog.judge.series import SeriesStore
from watchdog.model import Sample, Version

log = logging.getLogger(__name__)

ALL_VERSIONS = (Version.V1, Version.V2)


def render(template: str, module: str, version: str) -> str:
    """The query for one module and version: ``{module}``/``{version}`` replaced, nothing
    else touched."""
    return template.replace("{module}", module).replace("{version}", version)


@dataclass(frozen=True)
class PromSeries:
    """One series of a query result: its labels and its ``(t, value)`` points."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    return SecretStr(value) if isinstance(value, str) else value


class PrometheusSource:
    name = "prometheus"

    def __init__(self, url: str, timeout: float = 10.0, retries: int = 2, *,
                 token: SecretStr | str | None = None, username: str | None = None,
                 password: SecretStr | str | None = None,
                 headers: Mapping[str, str] | None = None,
                 backoff: float = 0.5, max_backoff: float = 10.0, max_points: int = 11_000,
                 transport: httpx.BaseTransport | None = None,
                 client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"prometheus url must start with http:// or https://, got {url!r}")
        if timeout <= 0 or retries < 0 or backoff < 0 or max_points < 2:
            raise ValueError("need timeout > 0, retries >= 0, backoff >= 0, max_points >= 2")
        if token is not None and (username is not None or password is not None):
            raise ValueError("give a bearer token or basic auth (username/password), not both")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_points = max_points
        self._token = _secret(token)
        self._username = username
        self._password = _secret(password)
        self._headers = dict(headers or {})
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(transport=transport)
        self._sleep = sleep
        self.errors: dict[str, dict[tuple[Version, str], SourceError]] = {}
        """Per module, the (version, metric) problems of its last ``fetch``/``instant``
        that still returned the other metrics' samples."""
        self.last_errors: dict[tuple[Version, str], SourceError] = {}
        """The same for the last call, whichever module it was for."""

    def __repr__(self) -> str:
        auth = "bearer" if self._token else "basic" if self._username else "none"
        return f"PrometheusSource(url={self.url!r}, auth={auth})"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Source protocol ---------------------------------------------------------------

    def fetch(self, module: Module, start: float, end: float, *,
              versions: Iterable[Version] = ALL_VERSIONS,
              metrics: Iterable[str] | None = None) -> SeriesStore:
        """Samples with ``start < t <= end`` on a grid of ``module.interval`` ending at
        ``end``: one range request per metric and version (``versions``/``metrics`` narrow
        it, e.g. V1 of one metric for a baseline). Metrics without a query are skipped."""
        step = module.interval
        last = math.floor(end * 1000) / 1000  # Prometheus keeps milliseconds
        first = last - math.floor((last - start) / step + 1e-9) * step
        if first <= start:
            first += step

        def run(query: str) -> list[PromSeries]:
            if first > last:
                return [PromSeries({}, ())]
            found = self.query_range(query, first, last, step)
            return [PromSeries(s.labels, tuple(p for p in s.points if start < p[0] <= end))
                    for s in found]

        return self._collect(module, versions, metrics, run)

    def instant(self, module: Module, at: float, *,
                versions: Iterable[Version] = ALL_VERSIONS,
                metrics: Iterable[str] | None = None) -> SeriesStore:
        """One instant query per metric and version, evaluated at ``at``."""
        return self._collect(module, versions, metrics, lambda query: self.query(query, at))

    # -- raw API ---------------------------------------------------------------------------

    def query(self, promql: str, at: float | None = None) -> list[PromSeries]:
        """An instant query (``/api/v1/query``); raises EmptyResult when nothing matches."""
        form = {"query": promql}
        if at is not None:
            form["time"] = repr(float(at))
        data = self._call("/api/v1/query", form)
        series = _decode(data, promql)
        if not series:
            raise EmptyResult(f"prometheus: no series for {promql!r}")
        return series

    def query_range(self, promql: str, start: float, end: float,
                    step: float) -> list[PromSeries]:
        """A range query (``/api/v1/query_range``), in as few requests as the server's point
        limit allows (one for any window under ``max_points`` steps); raises EmptyResult
        when nothing matches."""
        if step <= 0 or end < start:
            raise ValueError(f"need step > 0 and start <= end, got [{start}, {end}] step {step}")
        merged: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
        chunk_start = start
        while chunk_start <= end:
            chunk_end = min(end, chunk_start + (self.max_points - 1) * step)
            data = self._call("/api/v1/query_range", {
                "query": promql, "start": repr(float(chunk_start)),
                "end": repr(float(chunk_end)), "step": repr(float(step))})
            for s in _decode(data, promql):
                merged.setdefault(tuple(sorted(s.labels.items())), []).extend(s.points)
            chunk_start = chunk_end + step
        if not merged:
            raise EmptyResult(f"prometheus: no series for {promql!r} "
                              f"over [{start:.3f}, {end:.3f}]")
        return [PromSeries(dict(k), tuple(p)) for k, p in merged.items()]

    # -- internals -------------------------------------------------------------------------

    def _collect(self, module: Module, versions: Iterable[Version],
                 metrics: Iterable[str] | None,
                 run: Callable[[str], list[PromSeries]]) -> SeriesStore:
        wanted = list(module.metrics) if metrics is None else list(metrics)
        versions = tuple(versions)
        unknown = [m for m in wanted if m not in module.metrics]
        if unknown:
            raise ValueError(f"module {module.name} declares no metric {', '.join(unknown)}")
        samples: list[Sample] = []
        errors: dict[tuple[Version, str], SourceError] = {}
        asked = 0
        for metric in wanted:
            template = module.metrics[metric].query
            if template is None:
                continue
            for version in versions:
                asked += 1
                query = render(template, module.name, version.value)
                try:
                    found = _one_series(run(query), metric, version)
                except (BadQuery, EmptyResult) as err:  # other metrics may still answer
                    errors[(version, metric)] = err
                    continue
                samples.extend(Sample(t, module.name, version, metric, v)
                               for t, v in found if math.isfinite(v))
        self.errors[module.name] = self.last_errors = errors
        for (version, metric), problem in errors.items():
            level = logging.DEBUG if isinstance(problem, EmptyResult) else logging.WARNING
            log.log(level, "module %s metric %s %s: %s", module.name, metric, version, problem)
        if asked and not samples:
            bad = [e for e in errors.values() if isinstance(e, BadQuery)]
            first = bad[0] if bad else next(iter(errors.values()), None)
            if first is not None:
                raise type(first)(f"no samples for module {module.name}: {first}") from first
            raise EmptyResult(f"prometheus: no finite values for module {module.name}")
        return SeriesStore.of(samples)

    def _request_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._headers}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return headers

    def _post(self, url: str, form: dict[str, str]) -> httpx.Response:
        """One POST; basic auth if configured, else whatever the client does."""
        headers = self._request_headers()
        if self._username is None:
            return self._client.post(url, data=form, headers=headers, timeout=self.timeout)
        password = self._password.get_secret_value() if self._password else ""
        return self._client.post(url, data=form, headers=headers, timeout=self.timeout,
                                 auth=httpx.BasicAuth(self._username, password))

    def _call(self, path: str, form: dict[str, str]) -> Any:
        """POST a form to the API, retrying SourceUnavailable with exponential backoff."""
        url = self.url + path
        failure: SourceUnavailable | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                log.debug("prometheus: retry %d of %d in %.3gs after: %s",
                          attempt, self.retries, delay, failure)
                self._sleep(delay)
            try:
                response = self._post(url, form)
            except httpx.TimeoutException as err:
                failure = SourceUnavailable(f"prometheus {url}: timed out after {self.timeout:g}s")
                failure.__cause__ = err
                continue
            except httpx.TransportError as err:
                failure = SourceUnavailable(f"prometheus {url}: unreachable: {err}")
                failure.__cause__ = err
                continue
            if response.status_code >= 500 or response.status_code == 429:
                failure = SourceUnavailable(f"prometheus {url}: HTTP {response.status_code}"
                                            f"{_error_text(response)}")
                continue
            return _payload(url, response)
        assert failure is not None
        raise failure from failure.__cause__


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return f": {text[:200]}" if text else ""
    if isinstance(body, dict) and body.get("error"):
        return f": {body.get('errorType', 'error')}: {body['error']}"
    return ""


def _payload(url: str, response: httpx.Response) -> Any:
    status = response.status_code
    if status in (400, 422):
        raise BadQuery(f"prometheus rejected the query (HTTP {status}){_error_text(response)}")
    if status in (401, 403):
        raise SourceError(f"prometheus {url}: HTTP {status}: check the credentials")
    if status >= 300:
        raise SourceError(f"prometheus {url}: HTTP {status}{_error_text(response)}")
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


def _decode(data: Any, promql: str) -> list[PromSeries]:
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


def _one_series(series: list[PromSeries], metric: str,
                version: Version) -> tuple[tuple[float, float], ...]:
    if len(series) > 1:
        shown = ", ".join(str(s.labels) for s in series[:3])
        raise BadQuery(f"query of {metric} for {version} returns {len(series)} series "
                       f"({shown}...): aggregate it to one, e.g. with sum() or max()")
    return series[0].points


if TYPE_CHECKING:
    from watchdog.sources import Source

    _: Source = PrometheusSource("http://127.0.0.1:9090")
