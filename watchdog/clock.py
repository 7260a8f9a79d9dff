"""The one clock. The core never reads the time itself: it is handed ``now``.

The daemon passes :class:`SystemClock`, the backtest and tests a :class:`FakeClock`.
Times are unix seconds (float); ``monotonic`` is for measuring intervals only.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock time in unix seconds."""
        ...

    def monotonic(self) -> float:
        """A clock that never goes backwards, for intervals."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def set(self, t: float) -> None:
        self._now = float(t)

    def advance(self, seconds: float) -> None:
        self._now += seconds
