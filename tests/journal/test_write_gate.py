"""The SQLite journal's in-process write gate (watchdog/journal/gate.py): writers of one
file in one process queue on a lock instead of polling SQLite's busy handler, within the
same busy timeout. Real SQLite files; another process is a real subprocess.

What the gate buys is speed under contention (bench/scale.py on disk); these tests hold
its semantics: a queued write goes ahead when the one before it ends, a write that waits
longer than its busy timeout fails (JournalBusy) instead of waiting on, and another
process still meets SQLite's own lock."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from watchdog.errors import JournalBusy
from watchdog.journal.store import SqliteJournal


def test_a_write_queued_behind_another_goes_ahead_when_it_ends(tmp_path: Path) -> None:
    first, second = SqliteJournal(tmp_path / "j.db"), SqliteJournal(tmp_path / "j.db")
    inside, done = threading.Event(), threading.Event()

    def hold() -> None:
        with first.transaction():
            first.sql.execute("INSERT INTO settings (key, value) VALUES ('a', '1')")
            inside.set()
            time.sleep(0.3)

    t = threading.Thread(target=hold)
    t.start()
    assert inside.wait(30)
    def write() -> None:
        second.set_setting("b", 2)
        done.set()

    threading.Thread(target=write).start()
    t.join(30)
    assert done.wait(30)
    assert (second.setting("a"), second.setting("b")) == (1, 2)
    first.close()
    second.close()


def test_the_gate_s_wait_is_bounded_by_the_busy_timeout(tmp_path: Path) -> None:
    first = SqliteJournal(tmp_path / "j.db")
    hasty = SqliteJournal(tmp_path / "j.db", busy_timeout=0.2)
    with first.transaction():
        began = time.monotonic()
        with pytest.raises(JournalBusy):
            hasty.set_setting("b", 2)
        with pytest.raises(JournalBusy):  # an autocommitted write of the portable SQL too
            hasty.sql.execute("INSERT INTO settings (key, value) VALUES ('c', '3')")
        with pytest.raises(JournalBusy):
            hasty.mark_applied(1, 5.0)
        assert time.monotonic() - began < 10.0  # three waits of 0.2 s, not SQLite's 30 s
    hasty.set_setting("b", 2)  # free again
    assert first.setting("b") == 2
    first.close()
    hasty.close()


def test_another_process_still_meets_sqlite_s_lock(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    SqliteJournal(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys, time\n"
         f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
         "c.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        hasty = SqliteJournal(path, busy_timeout=0.3)
        with pytest.raises(JournalBusy):
            hasty.set_setting("b", 2)
        hasty.close()
    finally:
        holder.kill()
        holder.wait(30)
