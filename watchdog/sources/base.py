"""The base of a metrics source plugin: the contract's defaults (:mod:`watchdog.pluginbase`)
and what the loader checks (:data:`CONTRACT`). A third-party source may subclass
:class:`SourceBase` or just have ``name`` and ``fetch``."""

from __future__ import annotations

from watchdog.config.schema import Module
from watchdog.judge.series import SeriesStore
from watchdog.pluginbase import Contract, PluginBase

CONTRACT = Contract("Source", ("fetch",),
                    "a name and fetch(module, start, end) -> SeriesStore",
                    "watchdog/sources/base.py")


class SourceBase(PluginBase):
    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        """Samples of ``module``'s declared metrics for both versions with
        start < t <= end."""
        raise NotImplementedError
