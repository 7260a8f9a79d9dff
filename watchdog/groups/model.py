"""A module group in the rules (issue 20 item 1, plan 002): members that share one rollout
percentage and switch on in an order.

    groups:
      - name: dwcp
        plan: *weekly_10_50_100        # one plan for the group
        rollback: member               # a member's failure rolls back that member only
        members:
          - {module: dwcp.transport, joins_at: 10}
          - {module: dwcp.prediction, joins_at: 50}
          - {module: dwcp.consensus, joins_at: 100, rollback: group}   # critical to all

Each member is a module of the rule set (its own metrics, rules and flag). It joins at
the group stage ``joins_at`` (default the first); from then on its flag is on with the
group's percentage. ``rollback`` (the group's, or a member's own) says what reaching the
failure limits on that member does: ``group`` rolls the whole group back, ``member``
switches that member off alone while the others carry on.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from watchdog.config.schema import Module, Plan
from watchdog.config.stagerules import stage_percent

NamePattern = r"^[A-Za-z_][A-Za-z0-9_.:-]*$"


def _joins_at(value: object) -> object:
    parsed = stage_percent(value)
    if isinstance(parsed, int | float) and not isinstance(parsed, bool) and parsed > 100:
        raise ValueError(f"a member joins at a stage of the group's plan, at most 100%; "
                         f"got {value!r} (after 100% there is nothing to join)")
    return parsed


class Member(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    module: Annotated[str, Field(pattern=NamePattern, max_length=200)]
    joins_at: Annotated[float | None, BeforeValidator(_joins_at)] = Field(default=None, gt=0)
    rollback: Literal["group", "member"] | None = None


class Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=NamePattern, max_length=200)]
    description: str = ""
    plan: Plan = Field(default_factory=Plan)
    rollback: Literal["group", "member"] = "group"
    members: list[Member] = Field(min_length=1)

    def joins_at(self, member: Member) -> float:
        return self.plan.stages[0].traffic if member.joins_at is None else member.joins_at

    def policy(self, module: str) -> str:
        member = self.member(module)
        return member.rollback or self.rollback

    def member(self, module: str) -> Member:
        return next(m for m in self.members if m.module == module)

    @property
    def names(self) -> list[str]:
        return [m.module for m in self.members]


Problems = list[tuple[tuple[str | int, ...], str]]


def group_problems(group: Group, modules: dict[str, Module], taken: dict[str, str]
                   ) -> Problems:
    """References across the rule set: members that are not declared modules, stages the
    group's plan lacks, a member in two groups, member plans with other stages."""
    problems: Problems = []
    stages = [s.traffic for s in group.plan.stages]
    shown = ", ".join(f"{s:g}" for s in stages)
    if group.name in modules:
        problems.append((("name",), f"group {group.name!r} has the name of a module; "
                                    f"give the group its own name"))
    for i, member in enumerate(group.members):
        where: tuple[str | int, ...] = ("members", i)
        module = modules.get(member.module)
        if module is None:
            known = ", ".join(sorted(modules)[:20]) or "none"
            problems.append(((*where, "module"), f"group {group.name!r}: member "
                                                 f"{member.module!r} is not a declared "
                                                 f"module (declared: {known})"))
            continue
        if member.module in taken:
            problems.append(((*where, "module"), f"module {member.module!r} is a member "
                                                 f"of group {taken[member.module]!r} "
                                                 f"already"))
        taken[member.module] = group.name
        if member.joins_at is not None and group.plan.index_of(member.joins_at) is None:
            problems.append(((*where, "joins_at"), f"joins_at {member.joins_at:g} is not a "
                                                   f"stage of the group's plan "
                                                   f"(stages: {shown})"))
        own = [s.traffic for s in module.plan.stages]
        if own != stages and any(r.stages or r.variants for r in module.rules):
            problems.append(((*where, "module"), f"member {member.module!r} has rules by "
                                                 f"stage but its plan's stages "
                                                 f"({', '.join(f'{s:g}' for s in own)}) "
                                                 f"are not the group's ({shown}): give it "
                                                 f"the group's plan (a YAML alias)"))
    return problems


def parse_groups(data: Any) -> list[Any]:
    """The raw ``groups`` list of a rules file (validated by the loader)."""
    raw = data.get("groups") if isinstance(data, dict) else None
    return raw if isinstance(raw, list) else []
