"""A process paused (SIGSTOP) inside a PostgreSQL transaction does not hold its locks for
ever: the server ends its session after the journal's idle-in-transaction timeout (its
busy timeout), so another instance can take the lease over; the paused one, continued,
finds its connection closed, gets JournalUnavailable once, then a new connection."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from watchdog.journal import open_journal

HOLDER = r"""
import os, signal, sys, time
from watchdog.errors import JournalUnavailable
from watchdog.journal import open_journal
j = open_journal(sys.argv[1], busy_timeout=0.3)
j.acquire_lease("checkout", "a", 1.0, time.time())
try:
    with j.transaction():
        j.sql.execute("SELECT * FROM leases WHERE module = ? FOR UPDATE", ("checkout",))
        print("locked", flush=True)
        os.kill(os.getpid(), signal.SIGSTOP)  # paused with the row locked
    print("committed", flush=True)
except JournalUnavailable:
    print("unavailable", flush=True)
print("leases", [(x.holder, x.epoch) for x in j.leases()], flush=True)
"""


def test_a_paused_transaction_releases_its_locks_and_reconnects(pg: Any) -> None:
    url = pg.new_schema()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        time.sleep(0.2)
        other = open_journal(url, busy_timeout=0.3)
        try:
            taken = None
            deadline = time.monotonic() + 10
            while taken is None and time.monotonic() < deadline:
                try:
                    taken = other.acquire_lease("checkout", "b", 1.0, time.time())
                except Exception:  # the row is still locked: lock timeout
                    time.sleep(0.1)
            assert taken is not None and taken.epoch == 2
        finally:
            other.close()
        proc.send_signal(signal.SIGCONT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out.splitlines() == ["unavailable", "leases [('b', 2)]"], out
