"""The Prometheus HTTP API client under the ``prometheus`` source: authentication, retries
with exponential backoff under a deadline, and the raw instant and range queries (a range
longer than the server's point limit split into requests). The answers are decoded in
:mod:`watchdog.sources.promapi`; the source itself is :mod:`watchdog.sources.prometheus`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from watchdog.errors import EmptyResult, SourceUnavailable
from watchdog.sources import deadline as dl
from watchdog.sources.promapi import PromSeries, decode, error_text, payload

log = logging.getLogger("watchdog.sources.prometheus")


def _secret(value: SecretStr | str | None) -> SecretStr | None:
    return SecretStr(value) if isinstance(value, str) else value


class PromClient:
    """Requests to one Prometheus (``url``), with its credentials."""

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

    def __repr__(self) -> str:
        auth = "bearer" if self._token else "basic" if self._username else "none"
        return f"PrometheusSource(url={self.url!r}, auth={auth})"

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def query(self, promql: str, at: float | None = None, *,
              until: float | None = None) -> list[PromSeries]:
        """An instant query (``/api/v1/query``); raises EmptyResult when nothing matches.
        ``until``: the monotonic instant by which it must be done (retries included)."""
        form = {"query": promql}
        if at is not None:
            form["time"] = repr(float(at))
        data = self._call("/api/v1/query", form, until)
        series = decode(data, promql)
        if not series:
            raise EmptyResult(f"prometheus: no series for {promql!r}")
        return series

    def query_range(self, promql: str, start: float, end: float, step: float, *,
                    until: float | None = None) -> list[PromSeries]:
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
                "end": repr(float(chunk_end)), "step": repr(float(step))}, until)
            for s in decode(data, promql):
                merged.setdefault(tuple(sorted(s.labels.items())), []).extend(s.points)
            chunk_start = chunk_end + step
        if not merged:
            raise EmptyResult(f"prometheus: no series for {promql!r} "
                              f"over [{start:.3f}, {end:.3f}]")
        return [PromSeries(dict(k), tuple(p)) for k, p in merged.items()]

    def _request_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", **self._headers}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        return headers

    def _post(self, url: str, form: dict[str, str], timeout: float) -> httpx.Response:
        """One POST; basic auth if configured, else whatever the client does."""
        headers = self._request_headers()
        if self._username is None:
            return self._client.post(url, data=form, headers=headers, timeout=timeout)
        password = self._password.get_secret_value() if self._password else ""
        return self._client.post(url, data=form, headers=headers, timeout=timeout,
                                 auth=httpx.BasicAuth(self._username, password))

    def _call(self, path: str, form: dict[str, str], until: float | None = None) -> Any:
        """POST a form to the API, retrying SourceUnavailable with exponential backoff.
        No attempt starts after the monotonic instant ``until``, and no wait ends after
        it; an attempt in progress runs to its own ``timeout`` (its answer may be judged
        late, see :class:`~watchdog.sources.deadline.Carry`)."""
        url = self.url + path
        failure: SourceUnavailable | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                delay = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
                if delay + dl.MIN_ATTEMPT > dl.left(until):
                    break  # no time for another try before the deadline
                log.debug("prometheus: retry %d of %d in %.3gs after: %s",
                          attempt, self.retries, delay, failure)
                self._sleep(delay)
            if dl.left(until) <= 0:
                failure = failure or dl.DeadlineExceeded(f"prometheus {url}: no time left "
                                                         "before the deadline")
                break
            try:
                response = self._post(url, form, self.timeout)
            except httpx.TimeoutException as err:
                failure = SourceUnavailable(f"prometheus {url}: timed out after "
                                            f"{self.timeout:g}s")
                failure.__cause__ = err
                continue
            except httpx.TransportError as err:
                failure = SourceUnavailable(f"prometheus {url}: unreachable: {err}")
                failure.__cause__ = err
                continue
            if response.status_code >= 500 or response.status_code == 429:
                failure = SourceUnavailable(f"prometheus {url}: HTTP {response.status_code}"
                                            f"{error_text(response)}")
                continue
            return payload(url, response)
        assert failure is not None
        raise failure from failure.__cause__

