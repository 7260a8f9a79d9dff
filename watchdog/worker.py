"""A background thread that runs one round of work, then waits ``poll_interval`` or a wake-up.

The actuation outbox and the notification queues are both such workers: each round does
what is due (and decides itself what is due, e.g. retries under backoff), a caller can
:meth:`wake` it early, and :meth:`stop` lets the current round finish. A round that raises
is a bug (rounds catch what they expect): it is logged once, not once per round, and the
worker keeps going, since a stopped outbox would stop every later rollback.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class PollingWorker:
    def __init__(self, name: str, work: Callable[[], object], poll_interval: float,
                 failure_message: str) -> None:
        self.name = name
        self.poll_interval = poll_interval
        self._work = work
        self._failure_message = failure_message
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._round_done = time.monotonic()  # when the last round finished (or the start)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._round_done = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def since_round(self) -> float:
        """Seconds since the last round finished (or the worker started)."""
        return time.monotonic() - self._round_done

    def stop(self, timeout: float) -> bool:
        """Stop after the current round; False if it is still busy after ``timeout``."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            self._wake.clear()  # before the round: a wake-up during the round is kept
            try:
                self._work()
                failing = False
            except Exception:  # the round catches what it expects; this is a bug
                if not failing:
                    log.exception("%s; it keeps going", self._failure_message)
                failing = True
            self._round_done = time.monotonic()
            self._wake.wait(self.poll_interval)
