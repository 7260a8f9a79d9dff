"""The ``file`` source: samples from a JSON Lines file in the scenario format.

For replays and tests. Times in the file are used as they are.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from watchdog.backtest.scenario import Scenario, load_scenario
from watchdog.config.schema import Module
from watchdog.judge.series import SeriesStore
from watchdog.pluginbase import PluginOptions
from watchdog.sources.base import SourceBase


class FileOptions(PluginOptions):
    """Options of the ``file`` source."""

    path: Path = Field(description="A recorded rollout (JSON Lines, the scenario format); "
                       "its times are used as they are (with a replay clock).")


class FileSource(SourceBase):
    name = "file"
    Options = FileOptions

    def __init__(self, path: str | Path | None = None, scenario: Scenario | None = None) -> None:
        if scenario is None:
            if path is None:
                raise ValueError("FileSource needs a path or a scenario")
            scenario = load_scenario(path, replay=False)
        self.scenario = scenario

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        if self.scenario.members:  # a group recording: the member's own samples
            return self.scenario.members.get(module.name, SeriesStore()).between(start, end)
        return self.scenario.store.between(start, end)
