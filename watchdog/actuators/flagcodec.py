"""Shared by the built-in actuators: check a :class:`FlagState` before writing it, turn it into
plain JSON-shaped data and back, and compare a read-back with what was written.

The JSON shape (used by the ``webhook`` body, the ``command`` read-back and ``read_url``)::

    {"module": "checkout", "version": "v2", "traffic_percent": 25,
     "kill_switch": false, "decision_id": "42"}

``traffic_percent`` is written as an integer when it is whole (``25``, not ``25.0``), because
the consumers we replace parse it as one (``String.to_integer(System.get_env(...))``).
"""

from __future__ import annotations

import math
from typing import Any

from watchdog.actuators import FlagState
from watchdog.errors import ActuatorError

VERSIONS = ("v1", "v2")
TRAFFIC_TOLERANCE = 1e-9


def check_state(state: FlagState, where: str) -> None:
    """Refuse to write a state no consumer could make sense of."""
    if not state.module:
        raise ActuatorError(f"{where}: empty module name")
    if state.version not in VERSIONS:
        raise ActuatorError(f"{where}: version must be v1 or v2, not {state.version!r}")
    pct = state.traffic_percent
    if isinstance(pct, bool) or not isinstance(pct, int | float) or not math.isfinite(pct) \
            or not 0 <= pct <= 100:
        raise ActuatorError(f"{where}: traffic_percent must be within 0..100, not {pct!r}")


def percent_value(pct: float) -> int | float:
    """``25.0`` -> ``25``; ``12.5`` stays ``12.5``."""
    return int(pct) if float(pct).is_integer() else float(pct)


def percent_text(pct: float) -> str:
    """``25.0`` -> ``"25"``; ``12.5`` -> ``"12.5"`` (shortest text that round-trips)."""
    return str(percent_value(pct))


def bool_text(flag: bool) -> str:
    return "1" if flag else "0"


def to_dict(state: FlagState) -> dict[str, Any]:
    return {
        "module": state.module,
        "version": state.version,
        "traffic_percent": percent_value(state.traffic_percent),
        "kill_switch": state.kill_switch,
        "decision_id": state.decision_id,
    }


def parse_version(value: object, where: str) -> str:
    if value not in VERSIONS:
        raise ActuatorError(f"{where}: version must be v1 or v2, not {value!r}")
    return str(value)


def parse_percent(value: object, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ActuatorError(f"{where}: traffic percent {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not 0 <= value <= 100:
        raise ActuatorError(f"{where}: traffic percent must be within 0..100, not {value!r}")
    return float(value)


def parse_bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ActuatorError(f"{where}: {value!r} is not a boolean")


def from_dict(data: object, module: str, where: str) -> FlagState | None:
    """The state for ``module`` in JSON-shaped ``data``; ``None`` for JSON ``null``.

    ``decision_id`` may be missing (a system that does not keep it): it reads as ``""``.
    """
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ActuatorError(f"{where}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in ("version", "traffic_percent", "kill_switch") if k not in data]
    if missing:
        raise ActuatorError(f"{where}: missing {', '.join(missing)}")
    got_module = data.get("module", module)
    if got_module != module:
        raise ActuatorError(f"{where}: state is for module {got_module!r}, not {module!r}")
    decision_id = data.get("decision_id")
    return FlagState(
        module=module,
        version=parse_version(data["version"], where),
        traffic_percent=parse_percent(data["traffic_percent"], where),
        kill_switch=parse_bool(data["kill_switch"], where),
        decision_id="" if decision_id is None else str(decision_id),
    )


def same_flags(a: FlagState, b: FlagState) -> bool:
    """Equal in everything a consumer acts on (module, version, traffic, kill switch)."""
    return (a.module == b.module and a.version == b.version and a.kill_switch == b.kill_switch
            and abs(a.traffic_percent - b.traffic_percent) <= TRAFFIC_TOLERANCE)


def describe(state: FlagState) -> str:
    kill = " kill_switch=on" if state.kill_switch else ""
    return (f"{state.module} {state.version} {percent_text(state.traffic_percent)}%{kill}"
            f" (decision {state.decision_id or '?'})")


def check_readback(expected: FlagState, got: FlagState | None, where: str) -> None:
    """Raise ActuatorError unless ``got`` says what ``expected`` says.

    The decision id is compared too whenever the read-back carries one.
    """
    if got is None:
        raise ActuatorError(f"{where}: read-back found no flags for {expected.module!r} "
                            f"after writing {describe(expected)}")
    if not same_flags(expected, got) or (got.decision_id and
                                         got.decision_id != expected.decision_id):
        raise ActuatorError(f"{where}: read-back mismatch: wrote {describe(expected)}, "
                            f"read {describe(got)}")
