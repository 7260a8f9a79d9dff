"""Checks of a plan's parts (issue 20): stage references of gates, approvals and checks
(:func:`plan_parts_check`, raised inside the plan's validation, so pydantic locates them),
and what spans the module (:func:`plan_problems`: a gate on a metric no rule declares)."""

from __future__ import annotations

from typing import Any

Problems = list[tuple[tuple[str | int, ...], str]]


def _stages(plan: Any) -> str:
    return ", ".join(f"{s.traffic:g}" for s in plan.stages)


def plan_parts_check(plan: Any) -> None:
    """ValueError naming the field: a gate before a stage the plan lacks, or before the
    first stage (nothing comes before it), or two gates with one name."""
    names: set[str] = set()
    for i, gate in enumerate(plan.gates):
        index = plan.index_of(gate.before)
        if index is None:
            raise ValueError(f"gates[{i}].before: {gate.before:g} is not a stage of the "
                             f"plan (stages: {_stages(plan)})")
        if index == 0:
            raise ValueError(f"gates[{i}].before: {gate.before:g} is the first stage; a "
                             f"gate stands before a later one")
        if gate.name in names:
            raise ValueError(f"gates[{i}].name: duplicate gate name {gate.name!r}")
        names.add(gate.name)
    first = plan.stages[0]
    if first.approval or first.check is not None:
        raise ValueError("stages[0]: the first stage cannot require an approval or a check "
                         "(starting the rollout is the step; put them on a later stage)")


def plan_problems(module: Any) -> Problems:
    problems: Problems = []
    judged = {r.metric for r in module.rules}
    for i, gate in enumerate(module.plan.gates):
        where = ("plan", "gates", i, "metric")
        if gate.metric not in judged:
            known = ", ".join(sorted(judged)) or "none"
            problems.append((where, f"gate {gate.name!r} is on metric {gate.metric!r}, "
                                    f"which no rule of the module declares (rules judge: "
                                    f"{known})"))
            continue
    return problems
