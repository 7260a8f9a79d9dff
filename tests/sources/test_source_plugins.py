"""Both sources are registered as entry points, like any third-party plugin."""

from __future__ import annotations

import pytest

from watchdog import plugins
from watchdog.sources.prometheus import PrometheusSource
from watchdog.sources.scrape import ScrapeSource


@pytest.mark.parametrize(("name", "cls"), [("prometheus", PrometheusSource),
                                           ("scrape", ScrapeSource)])
def test_registered_under_watchdog_sources(name: str, cls: type) -> None:
    assert name in plugins.available("watchdog.sources")
    loaded = plugins.load("watchdog.sources", name)
    assert loaded is cls and loaded.name == name
