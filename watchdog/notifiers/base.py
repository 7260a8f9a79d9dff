"""The base of a notifier plugin: the contract's defaults (:mod:`watchdog.pluginbase`)
and what the loader checks (:data:`CONTRACT`). A third-party notifier may subclass
:class:`NotifierBase` or just have ``name`` and ``send``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchdog.pluginbase import Contract, PluginBase

if TYPE_CHECKING:
    from watchdog.notifiers import Notification

CONTRACT = Contract("Notifier", ("send",), "a name and send(notification)",
                    "watchdog/notifiers/base.py")


class NotifierBase(PluginBase):
    def send(self, notification: Notification) -> None:
        """Deliver or raise; the queue retries. Must be safe to call from a worker thread."""
        raise NotImplementedError
