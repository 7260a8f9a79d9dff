"""Loading the ``groups`` of rule files (watchdog/groups/model.py), located by file:line:
each group validated on its own (:func:`validate`), then across the whole rule set once
every file is read (:func:`cross_check`: members are modules declared in any file)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from watchdog.config.yamlload import Located
from watchdog.errors import Issue


def validate(located: Located, issues: list[Issue]) -> list[tuple[Any, int]]:
    from watchdog.groups.model import Group

    data = located.data
    raw = data.get("groups") if isinstance(data, dict) else None
    if raw is None:
        return []
    if not isinstance(raw, list):
        issues.append(Issue(located.file, located.line_of(("groups",)),
                            "groups: expected a list of groups"))
        return []
    out = []
    for i, item in enumerate(raw):
        try:
            out.append((Group.model_validate(item), i))
        except ValidationError as err:
            for error in err.errors():
                loc = ("groups", i, *error["loc"])
                where = _near(located, loc)
                message = str(error["msg"]).removeprefix("Value error, ")
                got = error.get("input")
                shown = isinstance(got, dict | list) or got is None or repr(got) in message
                suffix = "" if shown else f" (got {got!r})"
                if error.get("type") == "extra_forbidden":
                    message, suffix = "unknown field (check the spelling)", ""
                issues.append(Issue(located.file, where,
                                    f"{_dotted(loc)}: {message}{suffix}"))
    return out


def cross_check(grouped: list[tuple[Any, int, Located]], modules: dict[str, Any]
                ) -> list[Issue]:
    from watchdog.groups.model import group_problems

    issues: list[Issue] = []
    taken: dict[str, str] = {}
    names: set[str] = set()
    for group, i, located in grouped:
        if group.name in names:
            issues.append(Issue(located.file, located.line_of(("groups", i, "name")),
                                f"groups[{i}].name: duplicate group name {group.name!r}"))
        names.add(group.name)
        for path, message in group_problems(group, modules, taken):
            loc = ("groups", i, *path)
            issues.append(Issue(located.file, _near(located, loc),
                                f"{_dotted(loc)}: {message}"))
    return issues


def _near(located: Located, loc: tuple[Any, ...]) -> int:
    """The line of ``loc``, or of the nearest enclosing node that has one."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in located.lines:
            return located.line_of(loc[:end])
    return located.line_of(())


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
