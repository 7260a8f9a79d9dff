"""Notifiers tell people, one file each, registered under ``watchdog.notifiers``.

Sending happens off the decision path: the engine only enqueues; a sender drains the
queue and calls :meth:`Notifier.send`. A notifier never blocks a rollback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


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


class NotifierPlugin(Notifier, Protocol):
    """The plugin contract of a notifier, checked when its entry point is loaded
    (``watchdog/daemon/build.py``; defaults in ``watchdog/notifiers/base.py``, see
    :mod:`watchdog.pluginbase`). Besides the methods above, on the class: ``Options`` (a
    pydantic model of its config options, validated with each option's file:line; without
    one the options go to the constructor as they are), ``secret_options`` (the option
    names that hold secrets: an inline value becomes a SecretStr, never shown) and
    ``from_config(config, *, journal_path)`` (default: the constructor); on the instance:
    """

    def close(self) -> None:
        """Release what it holds open (HTTP clients); called on reload and at exit."""
        ...

    @property
    def disabled(self) -> bool:
        """True once it has given up (a notifier whose token was revoked)."""
        ...
