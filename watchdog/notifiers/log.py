"""The ``log`` notifier, the default: one log line per notification.

Levels follow severity (info -> INFO, warning -> WARNING, critical -> ERROR) so journald
priorities and log-based alerting see rollbacks. The line is ``key=value`` pairs on one
line (newlines in titles or reasons are flattened), easy to grep and to parse.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from watchdog.notifiers import Notification
from watchdog.notifiers.base import NotifierBase
from watchdog.pluginbase import PluginOptions

LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


class LogOptions(PluginOptions):
    """Options of the ``log`` notifier."""

    logger: str | None = Field(default=None, min_length=1, description="Logger name "
                               "(default: watchdog.notifications).")


class LogNotifier(NotifierBase):
    name = "log"
    Options = LogOptions

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("watchdog.notifications")
        self.sent = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None, **_: Any) -> LogNotifier:
        """``logger``: the logger name (default ``watchdog.notifications``)."""
        name = (config or {}).get("logger")
        return cls(logging.getLogger(str(name)) if name else None)

    def send(self, notification: Notification) -> None:
        self.logger.log(LEVELS.get(notification.severity, logging.WARNING), "%s",
                        format_line(notification))
        self.sent += 1

    def __repr__(self) -> str:
        return f"LogNotifier(logger={self.logger.name!r})"


def format_line(n: Notification) -> str:
    parts: list[tuple[str, Any]] = [
        ("module", n.module), ("kind", n.kind), ("action", n.action), ("severity", n.severity),
        ("stage", n.stage), ("traffic", None if n.traffic_percent is None
                             else f"{n.traffic_percent:g}%"),
        ("title", n.title), ("reasons", "; ".join(n.reasons) or None)]
    fired = [e for e in n.evidence if e.get("breached") is True or n.kind == "alert_resolved"]
    for e in fired:
        nums = " ".join(f"{k}={_num(e[k])}" for k in ("observed", "reference", "limit", "z",
                                                       "p_value") if k in e)
        parts.append(("rule", f"{e.get('rule', '?')}({nums})" if nums else e.get("rule", "?")))
    if n.links.get("runbook_url"):
        parts.append(("runbook", n.links["runbook_url"]))
    parts.append(("key", n.key))
    return " ".join(f"{k}={_quote(v)}" for k, v in parts if v is not None)


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _quote(value: Any) -> str:
    text = " ".join(str(value).split())  # one line, whatever the input
    if not text or any(c in text for c in ' "='):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text
