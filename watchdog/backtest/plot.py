"""Drawing a backtest (placeholder until the plot lands; see issue 3)."""

from __future__ import annotations

from watchdog.backtest.replay import BacktestResult
from watchdog.config.loader import RuleSet


def draw(result: BacktestResult, rules: RuleSet, path: str) -> None:
    raise NotImplementedError("--plot is not implemented yet")
