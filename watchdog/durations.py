"""Durations written the Prometheus way: ``90s``, ``10m``, ``1h30m``, ``2d``, ``500ms``."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
MAX_SECONDS = 10 * 365.25 * 86400.0  # ten years: no window, hold or timeout is longer


def parse_duration(value: object) -> float:
    """Seconds for a duration string or a plain number of seconds; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m or 1h, got a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite duration, got {value}")
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return _bounded(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, 10m or 1h, got {value!r}")
    text = value.strip()
    if text.startswith("-"):
        raise ValueError(f"duration must not be negative, got {value!r}")
    if text in ("0", ""):
        if text == "":
            raise ValueError("expected a duration such as 30s, 10m or 1h, got an empty string")
        return 0.0
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"expected a duration such as 30s, 10m or 1h30m, got {value!r}")
    return _bounded(total, value)


def _bounded(seconds: float, value: object) -> float:
    """``seconds``, refused beyond MAX_SECONDS (a judge's window of a billion weeks, a
    typo, only fails later, in the arithmetic of a tick)."""
    if not seconds <= MAX_SECONDS:
        raise ValueError(f"duration longer than ten years, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest readable form: 600 -> '10m', 5400 -> '1h30m', 0.5 -> '500ms'."""
    if seconds < 1 and seconds > 0:
        return f"{round(seconds * 1000)}ms"
    rest = round(seconds)
    if rest == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)
