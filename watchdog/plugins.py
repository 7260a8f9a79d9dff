"""Plugins through entry points. Built-ins are registered exactly like third-party ones
(in pyproject.toml), so ``pip install some-watchdog-plugin`` adds a backend with no change
here. Unknown names fail at start-up with the list of what is installed."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from watchdog.errors import PluginError

GROUPS = ("watchdog.sources", "watchdog.actuators", "watchdog.notifiers")


def available(group: str) -> list[str]:
    return sorted(ep.name for ep in entry_points(group=group))


def load(group: str, name: str) -> Any:
    """The class (or factory) registered as ``name`` in ``group``."""
    if group not in GROUPS:
        raise PluginError(f"unknown plugin group {group!r}")
    found = [ep for ep in entry_points(group=group) if ep.name == name]
    if not found:
        names = ", ".join(available(group)) or "none installed"
        kind = group.split(".")[-1][:-1]
        raise PluginError(f"unknown {kind} {name!r} (available: {names})")
    try:
        return found[0].load()
    except Exception as err:  # a broken third-party plugin must not crash with a traceback
        raise PluginError(f"{group} plugin {name!r} failed to load: {err}") from err
