"""One writer of rollout state at a time, across processes.

A tick reads a module's checkpoint, spends a while fetching and judging, then writes the
checkpoint it derived. An operator's ``pause`` (from the CLI, another process) must not be
overwritten by a tick that read the checkpoint before it. Every writer of checkpoints
therefore holds this lock while it re-reads the current checkpoint, compares it with the
one it started from, and records (compare-and-swap). The lock is an advisory ``flock`` on
``<journal>.lock``; the kernel releases it when a holder dies, even by SIGKILL.
It is held for milliseconds: one read and one SQLite commit.

A PostgreSQL journal has no such file: its writers are on other hosts. There the
compare-and-swap is the write's own (``record(..., expect=Expected(cp))``, checked under a
per-module lock in the write's transaction) and :func:`state_lock` holds nothing.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from watchdog.errors import JournalError
from watchdog.journal import is_postgres


def lock_path(journal_path: str) -> str | None:
    if journal_path == ":memory:" or is_postgres(journal_path):
        return None
    return journal_path.removeprefix("sqlite:///") + ".lock"


@contextmanager
def state_lock(journal_path: str) -> Iterator[None]:
    """Hold the rollout-state lock of the journal at ``journal_path`` (none in memory)."""
    path = lock_path(journal_path)
    if path is None:
        yield
        return
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o660)
    except OSError as err:
        raise JournalError(f"cannot open the state lock {path}: {err.strerror or err}") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
