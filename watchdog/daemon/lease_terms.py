"""The terms of :mod:`watchdog.daemon.leases`: an instance's name, a lease's time to live,
the heartbeat rows' prefix and :class:`Change` (a lease gained or lost)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from watchdog.journal.records import Lease

PREFIX = "@instance/"  # heartbeat rows in the lease table (module names never start so)
LEASE_FACTOR = 1.5  # a lease's time to live, in tick periods
MIN_TTL = 0.5  # seconds


def instance_name(configured: str | None, env: Mapping[str, str]) -> str:
    return configured or env.get("WATCHDOG_INSTANCE") or \
        f"{socket.gethostname()}:{os.getpid()}"


def lease_ttl(period: float, configured: float | None) -> float:
    return configured if configured is not None else max(MIN_TTL, LEASE_FACTOR * period)


@dataclass(frozen=True)
class Change:
    """A lease this instance gained (``lease``; ``previous`` is the row it replaced) or
    lost (``lease`` None; ``previous`` its last lease, ``to`` who holds it now)."""

    module: str
    lease: Lease | None
    previous: Lease | None
    to: str = ""

    @property
    def took_over(self) -> bool:
        """Gained after another instance's lease ran out (it died, hung or lost the
        database): not a first lease, not one given back when an instance joined."""
        return self.lease is not None and self.previous is not None and \
            self.previous.holder not in ("", self.lease.holder)
