"""How many ticks judge at once: a few, not one per module.

A tick reads its source (waiting on I/O: a batched fetch, per-module queries, up to the
source's deadline) outside any slot, then judges, decides and journals inside one. With a
thread per module and a thousand modules, the ticks that woke together (a batched fetch
answering all of them at once, a start-up, a takeover of many leases) shared the GIL
evenly and each lasted as long as all of them together; with ``SIZE`` slots, each lasts
about its own CPU time, the others wait their turn in the queue, not in the interpreter.

Rolling back never waits on anything: a tick waits for a slot at most ``patience``
seconds (a share of its interval) and then judges without one, so a slot held by a tick
whose journal write waits on another process (bounded by the journal's own wait) delays
no other module's rollback by more than that.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

SIZE = 4
PATIENCE_FRACTION = 0.2
PATIENCE_CAP = 2.0


def patience(interval: float) -> float:
    """Seconds a tick waits for a slot: 20 % of the interval, 50 ms .. 2 s."""
    return min(PATIENCE_CAP, max(0.05, PATIENCE_FRACTION * interval))


class Slots:
    def __init__(self, size: int = SIZE) -> None:
        self.size = max(1, size)
        self._free = threading.BoundedSemaphore(self.size)
        self._lock = threading.Lock()
        self.busy = 0  # ticks judging in a slot now
        self.without = 0  # ticks that judged without a slot (waited ``patience``)

    @contextmanager
    def hold(self, patience: float) -> Iterator[bool]:
        """A slot for the block (True), or none after ``patience`` seconds (False)."""
        got = self._free.acquire(timeout=max(0.0, patience))
        with self._lock:
            if got:
                self.busy += 1
            else:
                self.without += 1
        try:
            yield got
        finally:
            if got:
                with self._lock:
                    self.busy -= 1
                self._free.release()
