"""The values a metric can take, and the samples outside them dropped as missing data.

A rate outside [0, 1], a negative latency or a latency of 1e308 is no measurement: it is a
broken exporter, query or source, as a NaN is. Taken for one, it decided rollouts: a V2
latency of 1e308 or -50 ms read as healthy (the overflow made every comparison false; a
negative latency is "faster"), and a live V1 error rate of -1.003 rolled a healthy V2 back.
So the judge drops such samples once per tick, before any rule sees them, and says so:
:func:`admit` returns what it dropped (the daemon counts and logs it), and
:func:`annotate` notes it in each affected rule's evidence and summary.

A metric's domain is its declared ``min``/``max``; where one is not declared it follows
from the ``unit`` (:data:`UNIT_DOMAINS`: a ratio is in [0, 1], a percentage in [0, 100],
a time, a size or a rate is >= 0), and otherwise any value goes. Every domain is within
+-:data:`VALUE_LIMIT` (1e100): no measurement is larger, and the judge's statistics
(squares of differences summed over a window) stay finite for every value it admits,
which a huge finite sample such as 1e308 would overflow to inf.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from watchdog.config.schema import VALUE_LIMIT, MetricSpec, Module, RelativeRule, Rule
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Rejected, RejectReason, RuleResult, Version

_TIME = ("ns", "us", "µs", "ms", "s", "sec", "seconds", "min", "minutes", "h", "hours")
_SIZE = ("bits", "bytes", "b", "kb", "kib", "mb", "mib", "gb", "gib", "tb", "tib")
_RATE = ("rps", "qps", "ops", "hz", "/s", "per_second", "requests_per_second")
_COUNT = ("count", "requests", "messages", "errors", "events")
UNIT_DOMAINS: dict[str, tuple[float, float]] = {
    "ratio": (0.0, 1.0), "fraction": (0.0, 1.0), "percent": (0.0, 100.0), "%": (0.0, 100.0),
    **{unit: (0.0, VALUE_LIMIT) for unit in (*_TIME, *_SIZE, *_RATE, *_COUNT)},
}
"""Units (case-insensitive) that say what values a metric can take, where it declares no
``min``/``max`` of its own; any other unit admits every value within +-VALUE_LIMIT."""


@dataclass(frozen=True, slots=True)
class Domain:
    """The closed interval [low, high] of values a metric can take."""

    low: float = -VALUE_LIMIT
    high: float = VALUE_LIMIT

    def __str__(self) -> str:
        return f"[{self.low:g}, {self.high:g}]"

    def outside(self, values: np.ndarray) -> np.ndarray:
        """A mask of the values below ``low`` or above ``high``."""
        return np.asarray((values < self.low) | (values > self.high))


def domain_of(spec: MetricSpec) -> Domain:
    """The metric's declared ``min``/``max``, else its unit's bounds, within +-VALUE_LIMIT."""
    return _domain(spec.unit, spec.min_value, spec.max_value)


# v.min() and v.max() without their Python-level dispatch (every series, every tick)
_LOWEST, _HIGHEST = np.minimum.reduce, np.maximum.reduce


@lru_cache(maxsize=1024)  # once per metric declaration, not per series and tick
def _domain(unit: str, declared_min: float | None, declared_max: float | None) -> Domain:
    low, high = UNIT_DOMAINS.get(unit.strip().lower(), (-VALUE_LIMIT, VALUE_LIMIT))
    if declared_min is not None:
        low = declared_min
    if declared_max is not None:
        high = declared_max
    return Domain(max(low, -VALUE_LIMIT), min(high, VALUE_LIMIT))


def admit(store: SeriesStore, module: Module) -> tuple[SeriesStore, tuple[Rejected, ...]]:
    """The tick's samples without those outside their metric's domain, and what was dropped
    (also the non-finite samples the series dropped when it was made).

    A series with nothing to drop is passed on as it is. A metric the module does not
    declare (no rule reads it) is held to +-VALUE_LIMIT only.
    """
    kept: dict[tuple[Version, str], Series] = {}
    dropped: list[Rejected] = []
    for (version, metric), series in store.items():
        spec = module.metrics.get(metric)
        domain = Domain() if spec is None else domain_of(spec)
        if len(series.non_finite):
            dropped.append(Rejected(version, metric, RejectReason.NON_FINITE, str(domain),
                                    tuple(series.non_finite.tolist())))
        v = series.v
        if not len(v) or (domain.low <= _LOWEST(v) and _HIGHEST(v) <= domain.high):
            kept[(version, metric)] = series
            continue
        out, text = domain.outside(v), str(domain)
        for reason, mask in ((RejectReason.BELOW_MIN, series.v < domain.low),
                             (RejectReason.ABOVE_MAX, series.v > domain.high)):
            if mask.any():
                dropped.append(Rejected(version, metric, reason, text,
                                        tuple(series.t[mask].tolist())))
        kept[(version, metric)] = series.kept(~out)
    return SeriesStore(kept), tuple(dropped)


def annotate(result: RuleResult, rule: Rule, now: float, interval: float,
             rejected: tuple[Rejected, ...]) -> RuleResult:
    """The rule's result, saying how many samples of its metric in its window (V2 and V1)
    were dropped, and why: "(3 V2 samples out of domain [0, 1] dropped)". Unchanged where
    none were."""
    if not rejected:
        return result
    window = max(rule.window, (rule.min_samples - 0.5) * interval,
                 (rule.long_window or 0.0) if isinstance(rule, RelativeRule) else 0.0)
    counts: dict[tuple[bool, Version], int] = defaultdict(int)
    domain, reasons = "", set()
    for r in rejected:
        if r.metric != rule.metric:
            continue
        n = sum(1 for t in r.times if now - window < t <= now)
        if n:
            counts[(r.reason is RejectReason.NON_FINITE, r.version)] += n
            domain = r.domain
            reasons.add(r.reason.value)
    if not counts:
        return result
    out, bad = _versions(counts, False), _versions(counts, True)
    note = "; ".join([f"{out} samples out of domain {domain} dropped"] * bool(out)
                     + [f"{bad} samples not finite dropped"] * bool(bad))
    evidence = {**result.evidence, "rejected": {
        "v2": counts[(False, Version.V2)] + counts[(True, Version.V2)],
        "v1": counts[(False, Version.V1)] + counts[(True, Version.V1)],
        "domain": domain, "reasons": sorted(reasons), "window": window}}
    return replace(result, summary=f"{result.summary} ({note})", evidence=evidence)


def _versions(counts: dict[tuple[bool, Version], int], non_finite: bool) -> str:
    """'3 V2 and 60 V1' (an empty string when neither has any)."""
    parts = [f"{counts[(non_finite, v)]} {v.value.upper()}" for v in (Version.V2, Version.V1)
             if counts.get((non_finite, v))]
    return " and ".join(parts)
