"""Render the rule reference (docs/rules-reference.md) from the rule-file models.

Every field's meaning is its ``Field(description=...)`` in watchdog/config/schema.py (and
config/planparts.py); types, defaults and bounds come from the models themselves, so the
reference cannot drift from what ``check`` accepts. tests/test_docs_gen.py compares the
committed file with this output.

    .venv/bin/python -m watchdog.docs_gen            # rewrite docs/rules-reference.md
    .venv/bin/python -m watchdog.docs_gen --check    # exit 1 when it is out of date
"""

from __future__ import annotations

import enum
import inspect
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import annotated_types as at
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from watchdog.config import planparts, schema
from watchdog.durations import parse_duration

TARGET = Path(__file__).resolve().parent.parent / "docs" / "rules-reference.md"
REGENERATE = ".venv/bin/python -m watchdog.docs_gen"

# (heading, model, intro) in the order of the page; a rule kind lists only the fields it
# adds to (or changes from) the fields every rule has
SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("File", schema.RulesFile, "A rule file is a mapping with one key."),
    ("Module", schema.Module, ""),
    ("Metric", schema.MetricSpec, ""),
    ("Scrape spec", schema.ScrapeSpec, "The `scrape:` of a metric."),
    ("Fields of every rule", schema.RuleBase,
     "Every rule has a `kind`, which selects the fields of one of the sections below."),
    ("kind: relative", schema.RelativeRule, ""),
    ("kind: absolute", schema.AbsoluteRule, ""),
    ("kind: growth", schema.GrowthRule, ""),
    ("kind: bursts", schema.BurstsRule, ""),
    ("kind: increase", schema.IncreaseRule, ""),
    ("Plan", schema.Plan, ""),
    ("Stage", schema.Stage,
     "A stage in `plan.stages` is a number (`25`, `25%`) or a mapping such as "
     "`{traffic: 25, hold: 12h}`."),
    ("Failure limits", schema.FailureLimits, "`plan.failure_limits`."),
    ("Failure policy", planparts.FailurePolicy, "`plan.on_failure`."),
    ("Gate", planparts.Gate, "An entry of `plan.gates`."),
    ("Stage check", planparts.StageCheck, "A stage's `check`."),
]
HEADINGS = {model: heading for heading, model, _ in SECTIONS}


def anchor(heading: str) -> str:
    """The anchor MkDocs gives a heading (lower case, word characters and dashes)."""
    text = "".join(c for c in heading.lower() if c.isalnum() or c in " _-")
    return "-".join(text.split())


def _validator_kind(func: Callable[..., Any]) -> str | None:
    if func is parse_duration:
        return "duration"
    name = getattr(func, "__name__", "")
    return {"_fraction": "percentage", "_traffic": "percent of traffic",
            "stage_percent": "stage (traffic %)"}.get(name)


def _bounds(metadata: list[Any], text: bool = False) -> str:
    low: tuple[str, float] | None = None
    high: tuple[str, float] | None = None
    extra = []
    for item in metadata:
        if isinstance(item, at.Gt):
            low = ("(", float(item.gt))  # type: ignore[arg-type]
        elif isinstance(item, at.Ge):
            low = ("[", float(item.ge))  # type: ignore[arg-type]
        elif isinstance(item, at.Lt):
            high = (")", float(item.lt))  # type: ignore[arg-type]
        elif isinstance(item, at.Le):
            high = ("]", float(item.le))  # type: ignore[arg-type]
        elif isinstance(item, at.MinLen) and item.min_length:
            extra.append("non-empty" if text else f"at least {item.min_length}")
    parts = []
    if low and high:
        parts.append(f"in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}")
    elif low:
        parts.append(f"{'>' if low[0] == '(' else '>='} {low[1]:g}")
    elif high:
        parts.append(f"{'<' if high[0] == ')' else '<='} {high[1]:g}")
    return ", ".join(parts + extra)


def _split(annotation: Any) -> tuple[Any, list[Any]]:
    """An annotation without Optional and Annotated, and the Annotated metadata."""
    metadata: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation, *more = typing.get_args(annotation)
            metadata += more
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation, metadata
            annotation = args[0]
        else:
            return annotation, metadata


def _flat(metadata: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in metadata:
        out += _flat(item.metadata) if isinstance(item, FieldInfo) else [item]
    return out


def type_text(annotation: Any, metadata: list[Any]) -> str:
    """A field's type in words: ``duration > 0``, ``list of rules``, ``map name -> metric``."""
    annotation, more = _split(annotation)
    meta = _flat(metadata + more)
    kinds = [_validator_kind(m.func) for m in meta if isinstance(m, BeforeValidator)]
    kind = next((k for k in kinds if k), None)
    origin = typing.get_origin(annotation)
    if kind is None and origin is Literal:
        kind = ", ".join(f"`{v}`" for v in typing.get_args(annotation))
    elif kind is None and inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        kind = ", ".join(f"`{m.value}`" for m in annotation)
    elif kind is None and origin is list:
        kind = "list of " + _plural(typing.get_args(annotation)[0])
    elif kind is None and origin is dict:
        key, value = typing.get_args(annotation)
        kind = f"map {type_text(key, [])} -> {type_text(value, [])}"
    elif kind is None:
        kind = _named(annotation, meta)
    if kind.startswith("stage"):  # named by the plan's stages, which bound it
        meta = [m for m in meta if not isinstance(m, at.Gt | at.Le)]
    bounds = _bounds(meta, text=annotation is str)
    if not bounds:
        return kind
    return f"{kind}, {bounds}" if origin in (list, dict) or annotation is str else \
        f"{kind} {bounds}"


def _named(annotation: Any, meta: list[Any]) -> str:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        heading = HEADINGS.get(annotation, annotation.__name__)
        return f"[{heading.lower()}](#{anchor(heading)})"
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return "[rule](#fields-of-every-rule)"
    if annotation is str and any(getattr(m, "pattern", None) for m in meta):
        pattern = next(m.pattern for m in meta if getattr(m, "pattern", None))
        return "name, or `*`" if "\\*" in pattern else "name"
    return {bool: "bool", int: "int", float: "number", str: "string", Any: "value"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def _plural(annotation: Any) -> str:
    inner, _ = _split(annotation)
    text = type_text(annotation, [])
    if (inspect.isclass(inner) and issubclass(inner, BaseModel)) or typing.get_origin(
            inner) in (typing.Union, types.UnionType):
        return text.replace("](", "s](", 1)
    head, _, rest = text.partition(" ")
    return f"{head}s {rest}".rstrip() if head.isalpha() else text


def _seconds(value: float) -> str:
    if value == 0:
        return "0s"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if value >= size and value % size == 0:
            return f"{value / size:g}{unit}"
    return f"{value:g}s"


def _yaml(value: Any) -> str:
    if isinstance(value, BaseModel):
        data = value.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        if list(data) == ["traffic"]:
            return _yaml(data["traffic"])
        value = value.model_dump(by_alias=True, mode="json")
        if len(_yaml(value)) > 60:
            return "see below"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float | int):
        return f"{value:g}"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def default_text(info: FieldInfo, type_words: str) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if value is None:
        return "none"
    if isinstance(value, BaseModel) and _yaml(value) == "see below":
        return "its fields' defaults"
    if type_words.startswith("duration") and isinstance(value, float | int):
        return f"`{_seconds(float(value))}`"
    return f"`{_yaml(value)}`"


def own_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """The fields a rule kind adds to, or changes from, those of every rule."""
    fields = dict(model.model_fields)
    if model is not schema.RuleBase and issubclass(model, schema.RuleBase):
        base = schema.RuleBase.model_fields
        fields = {n: f for n, f in fields.items()
                  if n not in base or repr(f) != repr(base[n])}
    return fields


def undocumented() -> list[str]:
    """``Model.field`` of every field rendered without a description."""
    return [f"{model.__name__}.{name}" for _, model, _ in SECTIONS
            for name, info in own_fields(model).items() if not info.description]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    out = ["# Rule reference", "",
           "<!-- generated by watchdog/docs_gen.py from the models in "
           "watchdog/config/schema.py; do not edit: run " + REGENERATE + " -->", "",
           "Every field of a rule file, as `rollout-watchdog check` reads it. Every mapping "
           "rejects unknown fields. A *duration* is written the Prometheus way (`500ms`, "
           "`90s`, `1h30m`) or as a plain number of seconds ([Durations](rules.md#durations)); "
           "a *percentage* as `25%` or a fraction, `0.25` (see "
           "[Percentages](rules.md#percentages)). [Rules](rules.md) has the shipped defaults "
           "and examples, [How the judge works](judge.md) what the statistical fields do.",
           ""]
    for heading, model, intro in SECTIONS:
        out += [f"## {heading}", ""]
        doc = inspect.getdoc(model) if model.__doc__ else None
        for text in (intro, doc or ""):
            if text:
                for para in text.split("\n\n"):
                    out += [" ".join(para.split()).replace("``", "`"), ""]
        out += ["| field | type | default | meaning |", "|---|---|---|---|"]
        for name, info in own_fields(model).items():
            words = type_text(info.annotation, list(info.metadata))
            meaning = info.description or ""
            out.append(f"| `{info.alias or name}` | {_cell(words)} | "
                       f"{_cell(default_text(info, words))} | {_cell(meaning)} |")
        out.append("")
    return "\n".join(out).replace("\n\n\n", "\n\n")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run {REGENERATE}", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
