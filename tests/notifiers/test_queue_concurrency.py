"""Many ticks enqueue at once into one shared journal connection while the senders run.

The daemon gives all its notification queues one journal (``_notify_journal``) and calls
``enqueue`` from every module's tick thread; each queue's sender reads and marks through
a connection of its own. Real SQLite file, real threads; only the notifier is a recorder.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from watchdog.journal.store import Journal
from watchdog.notifiers import Notification
from watchdog.notifiers.queue import NotificationQueue

from .conftest import make_note

THREADS, PER_THREAD = 32, 40


class Counting:
    """A notifier that counts deliveries per key (thread-safe)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: Counter[str] = Counter()
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        with self._lock:
            self.sent[notification.key] += 1


def test_concurrent_enqueues_lose_and_duplicate_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="watchdog")
    journal = Journal(tmp_path / "journal.db")
    notifiers = [Counting("alpha"), Counting("beta")]
    queues = [NotificationQueue(journal, n, poll_interval=0.01) for n in notifiers]
    for q in queues:
        q.start()
    barrier = threading.Barrier(THREADS)
    accepted: Counter[str] = Counter()
    guard = threading.Lock()

    def tick(t: int) -> None:
        barrier.wait()
        for i in range(PER_THREAD):
            note = make_note(key=f"m{t}-d{i}", module=f"m{t}")
            for q in queues:
                if q.enqueue(note):
                    with guard:
                        accepted[q.notifier.name] += 1

    threads = [threading.Thread(target=tick, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    expected = {f"m{t}-d{i}" for t in range(THREADS) for i in range(PER_THREAD)}
    deadline = time.monotonic() + 60  # generous: the senders poll every 10 ms
    while time.monotonic() < deadline and any(q.pending() for q in queues):
        time.sleep(0.05)
    for q in queues:
        q.stop()
    try:
        for q, n in zip(queues, notifiers, strict=True):
            keys = [r["key"] for r in q.rows()]
            assert sorted(keys) == sorted(expected), "one outbox row per notification"
            # delivery is at least once: a send whose "sent" mark the busy journal refused
            # is sent again (the Slack notifier's ledger drops the repeat); one CI run in
            # about ten saw one repeat under this load, so repeats are bounded, not banned
            assert set(n.sent) == expected, "every notification delivered"
            assert sum(n.sent.values()) - len(expected) <= len(expected) // 100, \
                "repeats only where a sent mark was refused"
            assert accepted[n.name] == len(expected)
            assert q.stats.enqueue_errors == 0 and q.pending() == 0
        assert not [r.getMessage() for r in caplog.records if "transaction" in r.getMessage()]
    finally:
        for q in queues:
            q.close()
        journal.close()
