"""One writer at a time per SQLite journal file within this process, queued on a lock.

SQLite lets one connection write at a time; the others wait in its busy handler, which
polls: it sleeps 1, 2, 5, 10 ... up to 100 ms between tries and never queues. At a
thousand modules on a disk journal (each commit an fsync, ~3 ms here) the lock is busy
most of the time, and a waiter asleep for 100 ms finds it taken again by a newcomer: a
few writes waited seconds (evaluation p99 7-28 s) while the lock stood idle between
polls. The daemon's writers (every module's engine, the outbox, the notification queue,
the lease keeper) each have their own connection to one file in one process, so they take
this gate first: a waiter is woken the moment the writer before it is done. The wait is
bounded by the connection's busy timeout as before (a tick's is short, so that a
rollback is never held up: its write fails in time and the rollback goes ahead). Other
processes (the CLI) still meet SQLite's own lock.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from watchdog.errors import JournalBusy

_GATES: dict[str, threading.RLock] = {}
_GUARD = threading.Lock()


def _gate(path: str) -> threading.RLock:
    key = os.path.realpath(path)
    with _GUARD:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = threading.RLock()
        return gate


@contextmanager
def write_gate(path: str, wait: float) -> Iterator[float]:
    """Hold the gate of the journal file at ``path`` (none for ":memory:"), waiting at most
    ``wait`` seconds; yields the seconds left of ``wait``. JournalBusy when it stays held."""
    if path == ":memory:":
        yield wait
        return
    gate = _gate(path)
    began = time.monotonic()
    if not gate.acquire(timeout=max(0.0, wait)):
        raise JournalBusy(f"journal {path}: database is locked (this process's other "
                          f"writers held it for {wait:g}s)")
    try:
        yield max(0.0, wait - (time.monotonic() - began))
    finally:
        gate.release()
