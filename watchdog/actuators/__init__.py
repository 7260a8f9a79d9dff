"""Actuators flip flags, one file each, registered under ``watchdog.actuators``.

Every actuator is idempotent (applying the same state twice has one effect) and reads back
what it wrote; :meth:`Actuator.apply` raises :class:`watchdog.errors.ActuatorError` when the
write fails or the read-back does not match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from watchdog.model import Decision
from watchdog.pluginbase import PluginLifecycle


@dataclass(frozen=True)
class FlagState:
    """What a module's flags should say after a decision."""

    module: str
    version: str  # "v1" or "v2": the version that serves the module's primary traffic
    traffic_percent: float  # share of traffic routed to V2 (0 = V1 everywhere)
    kill_switch: bool  # global: force V1 everywhere
    decision_id: str  # idempotency key

    @classmethod
    def of(cls, decision: Decision, decision_id: int | str) -> FlagState:
        traffic = 0.0 if decision.kill_switch else decision.traffic_percent
        return cls(decision.module, decision.version.value, traffic, decision.kill_switch,
                   str(decision_id))


class Actuator(Protocol):
    """What the daemon calls; a plugin of this kind is a :class:`ActuatorPlugin`."""

    name: str

    def apply(self, state: FlagState) -> None:
        """Write the flags, then read them back; raise ActuatorError on any mismatch."""
        ...

    def read(self, module: str) -> FlagState | None:
        """The flags as they are now (None when never written)."""
        ...


class ActuatorPlugin(Actuator, PluginLifecycle, Protocol):
    """The plugin contract of an actuator: the methods above and
    :class:`~watchdog.pluginbase.PluginLifecycle`
    (defaults in ``watchdog/actuators/base.py``)."""
