"""Stored V1 baselines: a summary of V1 for one metric over a window, with provenance."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cached_property

import numpy as np

from watchdog.judge.domain import Domain


@dataclass(frozen=True)
class Baseline:
    module: str
    metric: str
    window_from: float
    window_to: float
    source: str
    captured_at: float
    count: int
    mean: float
    stddev: float
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float
    samples: tuple[tuple[float, float], ...] = field(repr=False, default=())
    pinned: bool = False
    expires_at: float | None = None
    id: int | None = None

    def stat(self, aggregate: str) -> float:
        """The baseline figure that matches a rule's aggregate."""
        table = {"mean": self.mean, "median": self.p50, "p50": self.p50, "p90": self.p90,
                 "p95": self.p95, "p99": self.p99, "min": self.min, "max": self.max,
                 "last": self.mean}
        return table[aggregate]

    def values(self) -> np.ndarray:
        """The samples' values, made once (read-only: every caller shares the array)."""
        return self._values

    @cached_property
    def _values(self) -> np.ndarray:
        values = np.array([v for _, v in self.samples], dtype=float)
        values.flags.writeable = False
        return values

    def __hash__(self) -> int:
        return self._hash

    def __getstate__(self) -> dict[str, object]:
        # a copy or a pickle carries the fields only: a hash made in another process (its
        # own string hashing) or values for other samples must not come along
        return {k: v for k, v in self.__dict__.items() if k not in ("_hash", "_values")}

    @cached_property
    def _hash(self) -> int:
        # the hash the dataclass would make (of every compared field), made once: the judge's
        # caches are keyed by the baseline at every tick, and hashing its hour of samples
        # then took more than judging with them
        return hash(tuple(getattr(self, f.name) for f in fields(self) if f.compare))

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


MIN_SAMPLES = 10
"""Fewest V1 samples ``baseline capture`` stores a baseline from (``--min-samples``): one
sample has no spread, and a mean of three is one outlier away from anything."""


class EmptyBaseline(ValueError):
    """No V1 samples (or fewer than asked for) fell in the capture window."""


class TooFewSamples(EmptyBaseline):
    """Some V1 samples, but fewer than asked for: a baseline that cannot be trusted."""


def iso(t: float) -> str:
    """A time for people: ISO 8601 UTC; a replay's simulated seconds as ``t=120s``."""
    if abs(t) < 1e9 or not math.isfinite(t):
        return f"t={t:g}s"
    try:
        stamp = datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError):  # beyond what a datetime can say
        return f"t={t:g}s"
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


def capture(module: str, metric: str, points: Iterable[tuple[float, float]],
            window_from: float, window_to: float, source: str, captured_at: float,
            expires_at: float | None = None, domain: Domain | None = None,
            min_samples: int = 1) -> Baseline:
    """Summarise V1 points ``(t, value)`` of one metric with ``window_from <= t < window_to``.

    Non-finite values (a source's NaN for 0/0, say) are no samples: one would make every
    statistic NaN, and every comparison against the baseline silently false. Nor are
    values outside the metric's ``domain`` (judge/domain.py; unknown, any value within
    +-1e100): a negative error rate in a baseline makes every healthy V2 look worse.
    Fewer than ``min_samples`` samples left: :class:`EmptyBaseline` (nothing to trust).
    """
    bounds = domain or Domain()
    inside = [(t, v) for t, v in points if window_from <= t < window_to]
    picked = sorted((t, v) for t, v in inside
                    if math.isfinite(v) and bounds.low <= v <= bounds.high)
    if len(picked) < max(1, min_samples):
        dropped = len(inside) - len(picked)
        found = f"only {len(picked)} V1 sample(s)" if picked else "no V1 samples"
        least = f" (at least {min_samples} needed)" if min_samples > 1 else ""
        kind = TooFewSamples if picked else EmptyBaseline
        raise kind(f"{found} of {metric} for module {module} in "
                            f"[{iso(window_from)}, {iso(window_to)}){least}"
                            + (f" ({dropped} not finite or out of domain {bounds} dropped)"
                               if dropped else ""))
    values = np.array([v for _, v in picked], dtype=float)
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
    return Baseline(
        module=module, metric=metric, window_from=window_from, window_to=window_to,
        source=source, captured_at=captured_at, count=len(values),
        mean=float(values.mean()), stddev=float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        p50=float(p50), p90=float(p90), p95=float(p95), p99=float(p99),
        min=float(values.min()), max=float(values.max()), samples=tuple(picked),
        expires_at=expires_at,
    )
