"""Actuators flip flags, one file each, registered under ``watchdog.actuators``.

Every actuator is idempotent (applying the same state twice has one effect) and reads back
what it wrote; :meth:`Actuator.apply` raises :class:`watchdog.errors.ActuatorError` when the
write fails or the read-back does not match.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from watchdog.model import Decision


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


class ActuatorPlugin(Actuator, Protocol):
    """The plugin contract of an actuator, checked when its entry point is loaded
    (``watchdog/daemon/build.py``; defaults in ``watchdog/actuators/base.py``, see
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
