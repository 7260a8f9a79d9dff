"""Notifiers tell people, one file each, registered under ``watchdog.notifiers``.

Sending happens off the decision path: the engine only enqueues; a sender drains the
queue and calls :meth:`Notifier.send`. A notifier never blocks a rollback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from watchdog.pluginbase import PluginLifecycle


@dataclass(frozen=True)
class Notification:
    """One message about one module's rollout."""

    key: str  # idempotency key: the same key is never delivered twice
    module: str
    kind: str  # "decision", "alert_firing", "alert_resolved", "inconclusive"
    action: str | None  # the decision's action, for kind == "decision"
    severity: str  # "info", "warning", "critical"
    title: str
    stage: int | None
    traffic_percent: float | None
    reasons: tuple[str, ...] = ()
    evidence: tuple[dict[str, Any], ...] = ()
    at: float = 0.0
    links: dict[str, str] = field(default_factory=dict)  # dashboard, runbook_url


class Notifier(Protocol):
    """What the daemon calls; a plugin of this kind is a :class:`NotifierPlugin`."""

    name: str

    def send(self, notification: Notification) -> None:
        """Deliver or raise; the queue retries. Must be safe to call from a worker thread."""
        ...


class NotifierPlugin(Notifier, PluginLifecycle, Protocol):
    """The plugin contract of a notifier: the methods above and
    :class:`~watchdog.pluginbase.PluginLifecycle`
    (defaults in ``watchdog/notifiers/base.py``)."""
