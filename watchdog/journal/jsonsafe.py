"""Strict JSON for what the journal stores: never ``NaN`` or ``Infinity``.

Python's ``json.dumps`` writes a non-finite float as ``NaN``/``Infinity``, which is not
JSON: SQLite's ``json_valid()`` is 0 for it and ``json_each``/``json_extract`` fail with
"malformed JSON" (the README's queries of the decisions' evidence). Here a NaN or an
infinity, a Python or a numpy float at any depth, is written as ``null`` (as JavaScript's
``JSON.stringify`` does): a number that cannot be told. ``allow_nan=False`` then makes any
left over an error rather than a silently invalid row.
"""

from __future__ import annotations

import json
import math
from typing import Any


def dumps(value: Any) -> str:
    """``value`` as strict JSON: non-finite floats as null, numpy scalars as numbers,
    tuples as lists, anything else unknown as its ``str``."""
    return json.dumps(_finite(value), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist"):  # a numpy scalar or array: Python numbers or lists
        plain = value.tolist()
        if plain is not value:
            return _finite(plain)
    return str(value)
