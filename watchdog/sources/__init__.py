"""Metrics sources, one file each, registered under the entry-point group ``watchdog.sources``.

A source answers one question: the samples of a module's metrics, per version, over a
time range. The daemon, the backtest and the baseline capture all go through it.

``fetch`` is called on the evaluation path, so it must return within a bounded time
whatever the backend does: the network sources (``prometheus``, ``scrape``) read
concurrently under one deadline, a fraction of the module's interval
(:mod:`watchdog.sources.deadline`), and return what arrived in time.
"""

from __future__ import annotations

from typing import Protocol

from watchdog.config.schema import Module
from watchdog.judge.series import SeriesStore
from watchdog.pluginbase import PluginLifecycle


class Source(Protocol):
    """What the daemon calls; a plugin of this kind is a :class:`SourcePlugin`."""

    name: str

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        """Samples of ``module``'s declared metrics for both versions with start < t <= end."""
        ...


class SourcePlugin(Source, PluginLifecycle, Protocol):
    """The plugin contract of a source: the methods above and
    :class:`~watchdog.pluginbase.PluginLifecycle`
    (defaults in ``watchdog/sources/base.py``)."""
