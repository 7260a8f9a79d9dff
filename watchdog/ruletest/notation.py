"""Series in promtool's notation: ``latency_p95_ms{version="v2"}`` and ``"180+0x30 250x60"``.

Values use promtool's expanding notation, one token per blank-separated word:

    a        one sample of value a
    a+bxN    N+1 samples: a, a+b, a+2b, ... a+Nb     ('-2+4x3'  -> -2 2 6 10)
    a-bxN    N+1 samples: a, a-b, ... a-Nb           ('1-2x4'   -> 1 -1 -3 -5 -7)
    axN      N+1 samples of a (shorthand for a+0xN)  ('1x4'     -> 1 1 1 1 1)
    _        one missing sample
    _xN      N missing samples                       ('1 _x3 2' -> 1 _ _ _ 2)

Numbers are decimal, optionally signed, with an optional exponent (``4.2e8``). Values
must be finite. Errors are :class:`NotationError` naming the word (1-based) at fault.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from watchdog.model import Version

MAX_VALUES = 100_000

_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_SINGLE = re.compile(rf"^({_NUM})$")
_REPEAT = re.compile(rf"^({_NUM})x(\d+)$")
_SERIES = re.compile(rf"^({_NUM})([+-])({_NUM})x(\d+)$")
_MISSING = re.compile(r"^_(?:x(\d+))?$")
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:.]*")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*')

HELP = "expected a number, _, a+bxN, a-bxN, axN or _xN"


class NotationError(ValueError):
    """A series or its values could not be read."""


def expand(text: str) -> list[float | None]:
    """The samples written in ``text``; ``None`` is a missing sample."""
    out: list[float | None] = []
    for position, word in enumerate(text.split(), start=1):
        out.extend(_word(word, position))
        if len(out) > MAX_VALUES:
            raise NotationError(f"more than {MAX_VALUES} values (word {position}: {word!r})")
    return out


def _word(word: str, position: int) -> list[float | None]:
    where = f"word {position} ({word!r})"
    if m := _MISSING.match(word):
        return [None] * _count(m.group(1), where, plus_one=False)
    if m := _SINGLE.match(word):
        return [_finite(m.group(1), where)]
    if m := _REPEAT.match(word):
        value = _finite(m.group(1), where)
        return [value] * _count(m.group(2), where, plus_one=True)
    if m := _SERIES.match(word):
        start = _finite(m.group(1), where)
        step = _finite(m.group(3), where) * (1 if m.group(2) == "+" else -1)
        n = _count(m.group(4), where, plus_one=True)
        values = [float(f"{start + i * step:.12g}") for i in range(n)]  # 0.1+0.2 -> 0.3
        if not all(math.isfinite(v) for v in values):
            raise NotationError(f"{where}: values must be finite")
        return list(values)
    raise NotationError(f"{where}: {HELP}")


def _count(digits: str | None, where: str, plus_one: bool) -> int:
    n = 1 if digits is None else int(digits)
    if digits is not None and n > MAX_VALUES:
        raise NotationError(f"{where}: repeat count {n} is above {MAX_VALUES}")
    return n + 1 if plus_one and digits is not None else n


def _finite(text: str, where: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotationError(f"{where}: values must be finite")
    return value


@dataclass(frozen=True)
class Selector:
    """``metric{version="v1"|"v2", module="..."}``: the series one input line feeds."""

    metric: str
    version: Version
    module: str | None = None


def parse_selector(text: str) -> Selector:
    """Read ``metric{label="value", ...}``; labels ``version`` (required) and ``module``."""
    s = text.strip()
    name = _NAME.match(s)
    if name is None:
        raise NotationError(f"series {text!r}: expected metric{{version=\"v1\"}} or "
                            f"metric{{version=\"v2\"}}")
    rest = s[name.end():].strip()
    labels: dict[str, str] = {}
    if rest:
        if not (rest.startswith("{") and rest.endswith("}")):
            raise NotationError(f"series {text!r}: labels must be written "
                                f"{{name=\"value\", ...}} after the metric name")
        body = rest[1:-1]
        pos = 0
        while pos < len(body) and body[pos:].strip():
            m = _LABEL.match(body, pos)
            if m is None:
                raise NotationError(f"series {text!r}: cannot read the labels at "
                                    f"{body[pos:].strip()!r} (expected name=\"value\")")
            key, value = m.group(1), re.sub(r"\\(.)", r"\1", m.group(2))
            if key in labels:
                raise NotationError(f"series {text!r}: label {key!r} is given twice")
            labels[key] = value
            pos = m.end()
            if pos < len(body):
                if body[pos] != ",":
                    raise NotationError(f"series {text!r}: expected ',' between labels")
                pos += 1
    unknown = sorted(set(labels) - {"version", "module"})
    if unknown:
        raise NotationError(f"series {text!r}: unknown label {unknown[0]!r} "
                            f"(only version and module)")
    versions = {v.value: v for v in Version}
    if "version" not in labels:
        raise NotationError(f"series {text!r}: needs a version label, version=\"v1\" or "
                            f"version=\"v2\"")
    version = versions.get(labels["version"])
    if version is None:
        raise NotationError(f"series {text!r}: version must be \"v1\" or \"v2\", "
                            f"got {labels['version']!r}")
    return Selector(name.group(0), version, labels.get("module"))
