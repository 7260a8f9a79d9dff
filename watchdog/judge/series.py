"""Samples held per (version, metric) as sorted arrays, cut into time windows fast."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from watchdog.model import Sample, Version


class Series:
    """One version's samples of one metric, sorted by time; a repeated time keeps the last."""

    __slots__ = ("t", "v")

    def __init__(self, t: np.ndarray, v: np.ndarray) -> None:
        self.t = t
        self.v = v

    @classmethod
    def of(cls, points: Iterable[tuple[float, float]]) -> Series:
        merged = dict(sorted(points, key=lambda p: p[0]))
        return cls(np.fromiter(merged.keys(), dtype=float, count=len(merged)),
                   np.fromiter(merged.values(), dtype=float, count=len(merged)))

    def window(self, start: float, end: float) -> tuple[list[float], np.ndarray]:
        """Samples with ``start < t <= end``."""
        lo = int(self.t.searchsorted(start, side="right"))
        hi = int(self.t.searchsorted(end, side="right"))
        return self.t[lo:hi].tolist(), self.v[lo:hi]

    def since(self, start: float, end: float) -> np.ndarray:
        """Values with ``start <= t <= end``."""
        lo = int(self.t.searchsorted(start, side="left"))
        hi = int(self.t.searchsorted(end, side="right"))
        return self.v[lo:hi]

    def paired(self, other: Series, start: float, end: float, tolerance: float
               ) -> tuple[np.ndarray, np.ndarray]:
        """Values of self and other in (start, end] at the same instants (within tolerance)."""
        lo = int(self.t.searchsorted(start, side="right"))
        hi = int(self.t.searchsorted(end, side="right"))
        t, v = self.t[lo:hi], self.v[lo:hi]
        if not len(t) or not len(other.t):
            return np.empty(0), np.empty(0)
        last = len(other.t) - 1
        idx = np.minimum(np.maximum(other.t.searchsorted(t), 1), last) if last > 0 \
            else np.zeros(len(t), dtype=int)
        left = np.maximum(idx - 1, 0)
        nearest = np.where(np.abs(other.t[left] - t) <= np.abs(other.t[idx] - t), left, idx)
        keep = np.abs(other.t[nearest] - t) <= tolerance
        return v[keep], other.v[nearest[keep]]

    def until(self, end: float) -> Series:
        hi = int(self.t.searchsorted(end, side="right"))
        return Series(self.t[:hi], self.v[:hi])

    def between(self, start: float, end: float) -> Series:
        """A view of the samples with ``start < t <= end``."""
        lo = int(self.t.searchsorted(start, side="right"))
        hi = int(self.t.searchsorted(end, side="right"))
        return Series(self.t[lo:hi], self.v[lo:hi])

    def last_time(self, at_or_before: float) -> float | None:
        hi = int(self.t.searchsorted(at_or_before, side="right"))
        return float(self.t[hi - 1]) if hi else None

    def __len__(self) -> int:
        return len(self.t)


EMPTY = Series(np.empty(0), np.empty(0))


class SeriesStore:
    """Samples of one module, by version and metric."""

    def __init__(self, series: dict[tuple[Version, str], Series] | None = None) -> None:
        self._series = series or {}

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> SeriesStore:
        points: dict[tuple[Version, str], list[tuple[float, float]]] = defaultdict(list)
        for s in samples:
            points[(s.version, s.metric)].append((s.t, s.value))
        return cls({key: Series.of(p) for key, p in points.items()})

    def get(self, version: Version, metric: str) -> Series:
        return self._series.get((version, metric), EMPTY)

    def until(self, end: float) -> SeriesStore:
        """A view holding only samples at or before ``end``."""
        return SeriesStore({key: s.until(end) for key, s in self._series.items()})

    def between(self, start: float, end: float) -> SeriesStore:
        """A view holding only samples with ``start < t <= end``."""
        return SeriesStore({key: s.between(start, end) for key, s in self._series.items()})

    def keys(self) -> list[tuple[Version, str]]:
        return list(self._series)

    def count(self) -> int:
        return sum(len(s) for s in self._series.values())
