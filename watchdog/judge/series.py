"""Samples held per (version, metric) as sorted arrays, cut into time windows fast."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from watchdog.model import Sample, Version

PAIR_SPAN = 600.0  # seconds of samples paired at least (the default rules' windows: 5 min)
_NONE = np.empty(0)  # no times (shared: never modified)
_ALL = np.logical_and.reduce  # ndarray.all() without its Python-level wrapper


class Series:
    """One version's samples of one metric, sorted by time; a repeated time keeps the last.

    Cutting windows is the judge's most frequent operation, on a few dozen samples at a
    time, so lookups bisect a Python list of the times (numpy's per-call overhead is
    several times the work here); that list and the pairing with another series are
    built on first use. ``t`` and ``v`` are never modified once the series exists.
    """

    __slots__ = ("_pairs", "_times", "non_finite", "t", "v")

    def __init__(self, t: np.ndarray, v: np.ndarray) -> None:
        self.non_finite = _NONE
        if len(v) and not np.isfinite(v).all():
            # NaN (a rate of no requests: 0 / 0) or inf is no measurement: a missing
            # sample, as a failed scrape is. Kept, it made a window's level NaN, which no
            # comparison reads as worse (silently healthy) and no count can be made of.
            # Their times are kept to be counted (judge/domain.py)
            keep = np.isfinite(v)
            self.non_finite = t[~keep]
            t, v = t[keep], v[keep]
        self.t = t
        self.v = v
        self._times: list[float] | None = None
        # (other, tolerance, first sample matched, times kept, own values, other's values)
        self._pairs: tuple[Series, float, int, list[float], np.ndarray, np.ndarray] | None \
            = None

    @classmethod
    def of(cls, points: Iterable[tuple[float, float]]) -> Series:
        merged = dict(sorted(points, key=lambda p: p[0]))
        return cls(np.fromiter(merged.keys(), dtype=float, count=len(merged)),
                   np.fromiter(merged.values(), dtype=float, count=len(merged)))

    @property
    def times(self) -> list[float]:
        """The sample times as a Python list (built once)."""
        if self._times is None:
            self._times = self.t.tolist()
        return self._times

    def window(self, start: float, end: float) -> tuple[list[float], np.ndarray]:
        """Samples with ``start < t <= end``."""
        times = self.times
        lo = bisect_right(times, start)
        hi = bisect_right(times, end)
        return times[lo:hi], self.v[lo:hi]

    def values(self, start: float, end: float) -> np.ndarray:
        """Values with ``start < t <= end`` (:meth:`window` without the times)."""
        times = self.times
        return self.v[bisect_right(times, start):bisect_right(times, end)]

    def count(self, start: float, end: float) -> int:
        """How many samples have ``start < t <= end``."""
        times = self.times
        return max(bisect_right(times, end) - bisect_right(times, start), 0)

    def since(self, start: float, end: float) -> np.ndarray:
        """Values with ``start <= t <= end``."""
        times = self.times
        return self.v[bisect_left(times, start):bisect_right(times, end)]

    def paired(self, other: Series, start: float, end: float, tolerance: float
               ) -> tuple[np.ndarray, np.ndarray]:
        """Values of self and other in (start, end] at the same instants (within tolerance).

        Each of self's samples is matched with other's nearest sample (of all of other's),
        which does not depend on the window: the matching is made once, from at least
        PAIR_SPAN before ``end`` to self's last sample, and each window is a slice of it
        (an earlier ``start`` extends it).
        """
        first = bisect_right(self.times, start)
        pairs = self._pairs
        if pairs is None or pairs[0] is not other or pairs[1] != tolerance \
                or pairs[2] > first:
            first = min(first, bisect_right(self.times, end - PAIR_SPAN))
            pairs = self._pairs = (other, tolerance, first, *self._match(other, tolerance, first))
        times = pairs[3]
        lo = bisect_right(times, start)
        hi = bisect_right(times, end)
        return pairs[4][lo:hi], pairs[5][lo:hi]

    def _match(self, other: Series, tolerance: float, first: int
               ) -> tuple[list[float], np.ndarray, np.ndarray]:
        """From sample ``first`` on: the times and values of self's samples with one of
        other's within tolerance, and the values of those nearest samples of other."""
        t, v = self.t[first:], self.v[first:]
        if not len(t) or not len(other.t):
            return [], np.empty(0), np.empty(0)
        found = other.at(t, tolerance)
        keep = ~np.isnan(found)
        if _ALL(keep):
            return self.times[first:], v, found
        return t[keep].tolist(), v[keep], found[keep]

    def at(self, t: np.ndarray, tolerance: float) -> np.ndarray:
        """This series' nearest sample to each of the instants ``t`` (ascending), NaN where
        none is within ``tolerance`` (a series holds no NaN of its own)."""
        if not len(self.t):
            return np.full(len(t), np.nan)
        last = len(self.t) - 1
        found = self.t.searchsorted(t)
        exact = np.minimum(found, last)
        if tolerance >= 0 and _ALL(self.t[exact] == t):
            # every instant has a sample at the very same time (a shared scrape grid, the
            # usual case): that one is the nearest
            return self.v[exact]
        idx = np.minimum(np.maximum(found, 1), last) if last > 0 \
            else np.zeros(len(t), dtype=int)
        left = np.maximum(idx - 1, 0)
        nearest = np.where(np.abs(self.t[left] - t) <= np.abs(self.t[idx] - t), left, idx)
        return np.where(np.abs(self.t[nearest] - t) <= tolerance, self.v[nearest], np.nan)

    def until(self, end: float) -> Series:
        hi = bisect_right(self.times, end)
        return self._part(0, hi, -np.inf, end)

    def between(self, start: float, end: float) -> Series:
        """A view of the samples with ``start < t <= end``."""
        times = self.times
        return self._part(bisect_right(times, start), bisect_right(times, end), start, end)

    def _part(self, lo: int, hi: int, start: float, end: float) -> Series:
        part = Series.__new__(Series)  # a slice of finite samples: no check again
        part.t, part.v, part._pairs = self.t[lo:hi], self.v[lo:hi], None
        part._times = self.times[lo:hi]
        bad = self.non_finite
        part.non_finite = bad[(bad > start) & (bad <= end)] if len(bad) else _NONE
        return part

    def kept(self, keep: np.ndarray) -> Series:
        """The samples where ``keep`` (a mask over them) is true; the non-finite ones
        dropped at construction are remembered as they were."""
        part = Series(self.t[keep], self.v[keep])
        part.non_finite = self.non_finite
        return part

    def last_time(self, at_or_before: float) -> float | None:
        times = self.times
        hi = bisect_right(times, at_or_before)
        return float(times[hi - 1]) if hi else None

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

    def items(self) -> list[tuple[tuple[Version, str], Series]]:
        return list(self._series.items())

    def count(self) -> int:
        return sum(len(s) for s in self._series.values())
