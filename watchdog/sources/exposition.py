"""Prometheus exposition text: parsing, label matching, and the maths the ``scrape`` source
needs to turn two consecutive scrapes into one value (counter rates with resets, ratios of
rates, histogram quantiles from bucket deltas as PromQL's ``histogram_quantile`` does).

Everything here is pure: no I/O and no clock.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from watchdog.errors import SourceError

LabelKey = tuple[tuple[str, str], ...]
"""A series' labels as a sorted tuple, usable as a dict key."""

Exposition = dict[str, list[tuple[dict[str, str], float]]]
"""Sample name (``http_requests_total``, ``x_bucket``...) -> [(labels, value)]."""

Counters = dict[LabelKey, float]
"""One counter's value per series."""

Histograms = dict[LabelKey, dict[float, float]]
"""One histogram's cumulative bucket counts per series (labels without ``le``): le -> count."""


class InvalidExposition(SourceError):
    """An endpoint answered with text that is not valid Prometheus exposition format."""


def parse(text: str, where: str = "exposition") -> Exposition:
    """Every sample in ``text`` by sample name; raises :class:`InvalidExposition`."""
    samples: Exposition = defaultdict(list)
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[s.name].append((dict(s.labels), float(s.value)))
    except (ValueError, TypeError, IndexError, KeyError) as err:
        raise InvalidExposition(f"{where}: not Prometheus exposition text: "
                                f"{_locate(text) or err}") from err
    return dict(samples)


def _locate(text: str) -> str | None:
    """'line N: <text>' for the first line the parser rejects on its own, if any."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            list(text_string_to_metric_families(line + "\n"))
        except (ValueError, TypeError, IndexError, KeyError) as err:
            shown = line if len(line) <= 80 else line[:77] + "..."
            return f"line {number}: {err} in {shown!r}"
    return None


def key(labels: Mapping[str, str], drop: str | None = None) -> LabelKey:
    return tuple(sorted((k, v) for k, v in labels.items() if k != drop))


def matches(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in wanted.items())


def find(exposition: Exposition, name: str, *suffixes: str) -> str | None:
    """The first of ``name + suffix`` present (``find(e, "x", "", "_total")``)."""
    for suffix in suffixes:
        if name + suffix in exposition:
            return name + suffix
    return None


def gauge(exposition: Exposition, name: str, wanted: Mapping[str, str]) -> float | None:
    """The largest finite value of the matching series (like ``max(...)``), or None."""
    values = [v for labels, v in exposition.get(name, []) if matches(labels, wanted)
              and math.isfinite(v)]
    return max(values) if values else None


def counters(exposition: Exposition, name: str, wanted: Mapping[str, str]) -> Counters | None:
    """Each matching series' counter value, or None when ``name`` (or ``name_total``) is
    absent."""
    found = find(exposition, name, "", "_total")
    if found is None:
        return None
    return {key(labels): v for labels, v in exposition[found] if matches(labels, wanted)}


def histograms(exposition: Exposition, name: str,
               wanted: Mapping[str, str]) -> Histograms | None:
    """Each matching series' cumulative buckets, or None when ``name_bucket`` is absent."""
    found = find(exposition, name, "_bucket")
    if found is None:
        return None
    out: Histograms = defaultdict(dict)
    for labels, v in exposition[found]:
        if "le" in labels and matches(labels, wanted):
            out[key(labels, drop="le")][float(labels["le"])] = v
    return dict(out)


def increase(prev: Counters, cur: Counters) -> float:
    """Summed increase of each series between two scrapes, with counter resets handled as
    ``rate()`` does (a drop means the counter restarted from zero). A series not in ``prev``
    contributes nothing: its starting point is unknown."""
    total = 0.0
    for series, value in cur.items():
        before = prev.get(series)
        if before is None:
            continue
        total += value if value < before else value - before
    return total


def bucket_increase(prev: Histograms, cur: Histograms) -> dict[float, float]:
    """Summed per-bucket increase (``sum by (le) (increase(x_bucket))``); a series any of whose
    buckets dropped is taken as reset, so all its current counts are new."""
    total: dict[float, float] = defaultdict(float)
    for series, buckets in cur.items():
        before = prev.get(series)
        if before is None:
            continue
        reset = any(count < before.get(le, 0.0) for le, count in buckets.items())
        for le, count in buckets.items():
            total[le] += count if reset else count - before.get(le, 0.0)
    return dict(total)


def quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """``histogram_quantile(q, ...)`` over cumulative bucket counts (le -> count): linear
    interpolation inside the bucket holding the rank. None when it is undefined (no
    observations, no +Inf bucket, fewer than two buckets) where PromQL gives NaN."""
    if not 0 <= q <= 1:
        raise ValueError(f"quantile must be within [0, 1], got {q}")
    bounds = sorted(buckets)
    if len(bounds) < 2 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return None
    counts: list[float] = []
    for le in bounds:  # repair non-monotonic counts as Prometheus does
        counts.append(max(buckets[le], counts[-1]) if counts else buckets[le])
    observations = counts[-1]
    if not 0 < observations < math.inf or any(math.isnan(c) for c in counts):
        return None  # no observations, or a count that is no number
    rank = q * observations
    b = next(i for i, c in enumerate(counts) if c >= rank)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


@dataclass(frozen=True)
class Reading:
    """What one scrape says about one metric: the raw state needed to diff against the next
    scrape (counters, histograms) or the value itself (gauges). ``t`` is wall-clock time
    (the sample's time), ``mono`` the monotonic clock (for the time between scrapes)."""

    t: float
    mono: float
    value: float | None = None
    numerator: Counters | None = None
    denominator: Counters | None = None
    buckets: Histograms | None = None
