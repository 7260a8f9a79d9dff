"""The systemd notification protocol (sd_notify(3)) for ``Type=notify`` and ``WatchdogSec=``.

The protocol is one datagram per notification: newline-separated ``KEY=VALUE`` assignments
sent over an ``AF_UNIX``/``SOCK_DGRAM`` socket to the address in ``$NOTIFY_SOCKET`` (a path,
or a Linux abstract socket when it starts with ``@``). Without ``$NOTIFY_SOCKET`` (not run by
systemd, or a unit type that does not listen) every call is a no-op.

Why the standard library and not a package: ``sdnotify`` (PyPI, last release 2017) is
untyped, has no watchdog interval, no ``RELOADING=1``/``MONOTONIC_USEC=`` and no injectable
environment; ``systemd-watchdog`` has the interval but raises on a failed send, measures with
the wall clock and reads ``os.environ`` only; ``systemd-python``/``cysystemd`` are C
extensions needing libsystemd headers to build. The protocol itself is a ``sendto`` of a few
bytes, so one page of code here, fully typed and tested against a real socket, cost less than any
of those dependencies.

Guarantees: every method is thread-safe (one lock around the shared socket), never blocks
(the socket is non-blocking: a full receive queue drops the notification instead of
stalling the loop; systemd raises ``net.unix.max_dgram_qlen`` to 512 and drains its socket
promptly, so in practice it is never full), and never raises into the caller: a failed
send returns ``False``, is counted in :attr:`Notifier.failures` and logged once at DEBUG
until a send succeeds again.

The daemon's hooks (see docs/systemd.md)::

    notifier = Notifier()                       # reads $NOTIFY_SOCKET once
    pinger = WatchdogPinger.from_env(notifier)  # reads $WATCHDOG_USEC / $WATCHDOG_PID
    ...                                         # config, journal, scheduler up
    notifier.ready(status="3 modules loaded")   # READY=1
    loop:  evaluate; notifier.status(summary); pinger.tick()
           wait at most pinger.max_wait(until_next_evaluation)
    SIGHUP: notifier.reloading(); reload; notifier.ready(status=...)
    SIGTERM: notifier.stopping(); finish the tick; exit 0

Ping the watchdog from the evaluation loop itself, never from a helper thread: a thread
that pings on a timer keeps pinging while the loop is hung, and systemd never restarts it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)

STATUS_MAX_BYTES = 1024  # systemd reads at most 4096 bytes per datagram (NOTIFY_BUFFER_MAX)


def notify_address(env: Mapping[str, str] = os.environ) -> str | None:
    """The socket address from ``$NOTIFY_SOCKET`` as :func:`socket.sendto` wants it.

    ``@name`` becomes the abstract address ``\\0name``; a relative path or an empty value
    is not a socket systemd would give, so it is ignored (None).
    """
    value = env.get("NOTIFY_SOCKET", "")
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(env: Mapping[str, str] = os.environ, pid: int | None = None
                      ) -> float | None:
    """Seconds between keep-alive pings: half of ``WatchdogSec=``, as sd_watchdog_enabled(3)
    recommends; None when systemd expects no pings from this process.

    ``$WATCHDOG_USEC`` must be a positive integer; ``$WATCHDOG_PID``, when set, must be this
    process (``pid``, default :func:`os.getpid`), otherwise the variables were inherited from
    a parent that is the one being watched.
    """
    usec = env.get("WATCHDOG_USEC", "").strip()
    if not usec.isdigit() or int(usec) <= 0:
        return None
    owner = env.get("WATCHDOG_PID", "").strip()
    me = os.getpid() if pid is None else pid
    if owner and (not owner.isdigit() or int(owner) != me):
        return None
    return int(usec) / 2_000_000


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock ``MONOTONIC_USEC=`` is read against."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def one_line(text: str, limit: int = STATUS_MAX_BYTES) -> str:
    """``text`` on one line (newlines and other control characters become spaces, runs of
    spaces collapse), cut to ``limit`` UTF-8 bytes without splitting a character."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    data = flat.encode("utf-8")
    if len(data) <= limit:
        return flat
    return data[:limit].decode("utf-8", errors="ignore")


class Notifier:
    """Sends notifications to systemd; a no-op when ``$NOTIFY_SOCKET`` is unset."""

    def __init__(self, env: Mapping[str, str] = os.environ) -> None:
        self.address = notify_address(env)
        self.failures = 0
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._logged = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram. True when it was sent; False when
        disabled or the send failed (never an exception)."""
        if self.address is None or not assignments:
            return False
        payload = "\n".join(assignments).encode("utf-8")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sock.setblocking(False)
                self._sock.sendto(payload, self.address)
            except (OSError, ValueError) as err:  # ValueError: a NUL inside the path
                self.failures += 1
                if not self._logged:
                    self._logged = True
                    log.debug("sd_notify to %r failed (further failures not logged): %s",
                              self.address, err)
                return False
            self._logged = False
            return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up (or a reload) is complete."""
        return self.notify("READY=1", *self._status(status))

    def status(self, text: str) -> bool:
        """``STATUS=``: one line shown by ``systemctl status``."""
        return self.notify(f"STATUS={one_line(text)}")

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping. Prefer :class:`WatchdogPinger`."""
        return self.notify("WATCHDOG=1")

    def reloading(self, status: str | None = None) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC=`` (systemd 253+ matches it to the reload
        request for ``Type=notify-reload``; older versions ignore the field). Send
        :meth:`ready` when the reload is done, whether it succeeded or not."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}",
                           *self._status(status))

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown has begun."""
        return self.notify("STOPPING=1", *self._status(status))

    def errno(self, number: int, status: str | None = None) -> bool:
        """``ERRNO=``: why the service is failing, shown by ``systemctl status``."""
        return self.notify(f"ERRNO={int(number)}", *self._status(status))

    def extend_timeout(self, seconds: float) -> bool:
        """``EXTEND_TIMEOUT_USEC=``: ask for ``seconds`` more before the current start,
        reload or stop timeout fires (e.g. around a long journal migration)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    @staticmethod
    def _status(status: str | None) -> tuple[str, ...]:
        return () if status is None else (f"STATUS={one_line(status)}",)


class WatchdogPinger:
    """Sends ``WATCHDOG=1`` at most once per ``interval`` seconds (half of ``WatchdogSec=``).

    Call :meth:`tick` from the evaluation loop after each pass that completed (evaluated
    what was due, or found nothing due), never from a timer thread: pings must stop when the
    loop hangs, so that systemd kills and restarts the daemon. The loop must come round at
    least once per interval; :meth:`max_wait` caps its sleep accordingly.
    ``interval=None`` (no watchdog configured) makes both methods inert.
    """

    def __init__(self, notifier: Notifier, interval: float | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if interval is not None and not interval > 0:
            raise ValueError(f"watchdog interval must be positive, not {interval!r}")
        self.notifier = notifier
        self.interval = interval
        self.pings = 0
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, notifier: Notifier, env: Mapping[str, str] = os.environ,
                 clock: Callable[[], float] = time.monotonic) -> WatchdogPinger:
        """A pinger for the interval systemd gave this process (inert without one, or
        without a notification socket to ping)."""
        interval = watchdog_interval(env) if notifier.enabled else None
        return cls(notifier, interval, clock)

    @property
    def enabled(self) -> bool:
        return self.interval is not None

    def tick(self) -> bool:
        """Ping if the last ping is ``interval`` old (or there was none). True if sent."""
        if self.interval is None:
            return False
        with self._lock:
            now = self._clock()
            if self._last is not None and now - self._last < self.interval:
                return False
            self._last = now
            self.pings += 1
        return self.notifier.watchdog()

    def max_wait(self, wanted: float) -> float:
        """How long the loop may sleep: ``wanted``, cut so it is back before the next
        ping is due (never negative)."""
        if self.interval is None:
            return max(0.0, wanted)
        with self._lock:
            due = self.interval if self._last is None else \
                self._last + self.interval - self._clock()
        return max(0.0, min(wanted, due))
