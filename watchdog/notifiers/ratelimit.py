"""A token bucket per channel: at most ``rate`` messages a second, bursts up to ``burst``.

Slack allows about one message per second per channel (short bursts tolerated); going
faster earns 429s and, if it continues, a disabled app. The bucket keeps us under that
before Slack has to say so. Time comes from an injected clock and waiting from an
injected ``sleep``, so tests run on a fake clock without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from watchdog.clock import Clock, SystemClock


class TokenBucket:
    def __init__(self, rate: float = 1.0, burst: int = 1, clock: Clock | None = None,
                 sleep: Callable[[float], None] | None = None) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock or SystemClock()
        self._sleep = sleep or time.sleep
        self._tokens: dict[str, float] = {}
        self._stamp: dict[str, float] = {}
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds spent waiting, for /metrics

    def _refill(self, key: str, now: float) -> float:
        tokens = self._tokens.get(key, float(self.burst))
        last = self._stamp.get(key, now)
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
        self._tokens[key], self._stamp[key] = tokens, now
        return tokens

    def delay(self, key: str) -> float:
        """Seconds until ``key`` has a token (0 when one is available now)."""
        with self._lock:
            tokens = self._refill(key, self._clock.monotonic())
            return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def try_acquire(self, key: str) -> bool:
        with self._lock:
            tokens = self._refill(key, self._clock.monotonic())
            if tokens >= 1.0:
                self._tokens[key] = tokens - 1.0
                return True
            return False

    def acquire(self, key: str) -> float:
        """Take a token for ``key``, sleeping until one is available; returns the wait."""
        waited = 0.0
        while not self.try_acquire(key):
            wait = max(self.delay(key), 1e-3)
            self._sleep(wait)
            waited += wait
        self.waited += waited
        return waited
