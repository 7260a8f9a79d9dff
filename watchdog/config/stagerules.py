"""Rules by stage: a rule limited to some stages, or with its limits overridden per stage.

    - name: error_rate_above_1pct
      stages: [10]                 # judged only while V2 has 10 % of the traffic
    - name: throughput_degradation
      per_stage:
        50: {max_decrease: 20%}    # at 50 % the limit is 20 %; elsewhere the rule's own

A stage is named by its traffic percentage (``10``, ``"10%"``), as the plan lists it;
``cross_check`` refuses a percentage that is not a stage of the module's plan. Each
override is validated at load as the whole rule it makes (the rule's own fields with the
override's on top), so a bad override is a file:line error like any bad rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

# fields an override may not change: they say which rule it is, or which stages it has
FIXED = frozenset({"name", "metric", "kind", "stages", "per_stage"})
TOLERANCE = 1e-6


class _Staged(Protocol):
    name: str
    stages: list[float] | None

    @property
    def variants(self) -> Mapping[float, Any]: ...


def stage_percent(value: object) -> object:
    """``10`` or ``"10%"`` -> 10.0 (a stage's traffic percentage, as the plan says it)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1])
        except ValueError:
            return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def build_variants(cls: Any, raw: Mapping[str, Any]) -> dict[float, Any]:
    """The rule of each ``per_stage`` entry, validated whole; ValueError names the stage."""
    overrides = raw.get("per_stage") or {}
    if not isinstance(overrides, Mapping):
        return {}
    base = {k: v for k, v in raw.items() if k not in ("per_stage", "stages")}
    variants: dict[float, Any] = {}
    for key, override in overrides.items():
        stage = stage_percent(key)
        if isinstance(stage, int) and not isinstance(stage, bool):
            stage = float(stage)
        if not isinstance(stage, float):
            raise ValueError(f"per_stage: {key!r} is not a stage percentage such as 50")
        if stage in variants:  # 25, 25% and 25.0 are one stage: one override would be lost
            raise ValueError(f"per_stage.{stage:g}: that stage is overridden twice (as "
                             f"{key!r} and before it); merge the two")
        if not isinstance(override, Mapping):
            raise ValueError(f"per_stage.{key:g}: expected a mapping of the fields to "
                             f"override, e.g. {{max_decrease: 20%}}"
                             if isinstance(key, int | float) else
                             f"per_stage.{key}: expected a mapping of the fields to override")
        fixed = sorted(FIXED & set(override))
        if fixed:
            raise ValueError(f"per_stage.{stage:g}: {', '.join(fixed)} cannot be overridden "
                             f"per stage (a different rule needs its own name)")
        try:
            variants[stage] = cls.model_validate({**base, **override})
        except ValidationError as err:
            first = err.errors()[0]
            where = "".join(f".{p}" for p in first["loc"])
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"per_stage.{stage:g}{where}: {message}") from None
    return variants


def _at(stages: Iterable[float], traffic: float) -> bool:
    return any(abs(s - traffic) <= TOLERANCE for s in stages)


def rule_at(rule: Any, traffic: float | None) -> Any | None:
    """The rule as it applies at ``traffic`` (None: the caller does not know the stage,
    the rule as written); None when the rule is not judged at that stage."""
    if traffic is None:
        return rule
    if rule.stages is not None and not _at(rule.stages, traffic):
        return None
    for stage, variant in rule.variants.items():
        if abs(stage - traffic) <= TOLERANCE:
            return variant
    return rule


def rules_at(rules: Sequence[Any], traffic: float | None) -> list[Any]:
    """The module's rules judged at ``traffic``, each with its overrides for that stage."""
    found = (rule_at(r, traffic) for r in rules)
    return [r for r in found if r is not None]


def stage_problems(rules: Sequence[Any], stages: Sequence[float]
                   ) -> list[tuple[tuple[str | int, ...], str]]:
    """Stage references that name no stage of the plan (``cross_check``)."""
    known = ", ".join(f"{s:g}" for s in stages)
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for i, rule in enumerate(rules):
        for j, stage in enumerate(rule.stages or ()):
            if not _at(stages, stage):
                problems.append((("rules", i, "stages", j),
                                 f"stage {stage:g} is not a stage of the plan "
                                 f"(stages: {known})"))
        for stage in rule.variants:
            if not _at(stages, stage):
                problems.append((("rules", i, "per_stage"),
                                 f"per_stage {stage:g} is not a stage of the plan "
                                 f"(stages: {known})"))
            elif rule.stages is not None and not _at(rule.stages, stage):
                problems.append((("rules", i, "per_stage"),
                                 f"per_stage {stage:g} is outside the rule's stages "
                                 f"({', '.join(f'{s:g}' for s in rule.stages)})"))
    return problems
