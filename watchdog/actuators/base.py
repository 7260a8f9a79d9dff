"""The base of an actuator plugin: the contract's defaults (:mod:`watchdog.pluginbase`)
and what the loader checks (:data:`CONTRACT`). A third-party actuator may subclass
:class:`ActuatorBase` or just have ``name``, ``apply`` and ``read``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from watchdog.pluginbase import Contract, PluginBase

if TYPE_CHECKING:
    from watchdog.actuators import FlagState

CONTRACT = Contract("Actuator", ("apply", "read"),
                    "a name, apply(FlagState) and read(module) -> FlagState | None",
                    "watchdog/actuators/base.py")


class ActuatorBase(PluginBase):
    def apply(self, state: FlagState) -> None:
        """Write the flags, then read them back; raise ActuatorError on any mismatch."""
        raise NotImplementedError

    def read(self, module: str) -> FlagState | None:
        """The flags as they are now (None when never written)."""
        raise NotImplementedError
