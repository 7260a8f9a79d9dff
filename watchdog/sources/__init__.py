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


class Source(Protocol):
    """What the daemon calls; a plugin of this kind is a :class:`SourcePlugin`."""

    name: str

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        """Samples of ``module``'s declared metrics for both versions with start < t <= end."""
        ...


class SourcePlugin(Source, Protocol):
    """The plugin contract of a source, checked when its entry point is loaded
    (``watchdog/daemon/build.py``; defaults in ``watchdog/sources/base.py``, see
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
