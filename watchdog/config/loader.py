"""Load rule files into a validated :class:`RuleSet`, all or nothing.

Every problem in every file is collected with its file and line before anything is
returned; a set with any error raises :class:`ConfigError` and nothing is half-loaded.
Bounded by :mod:`watchdog.config.limits`: each file's size (regular files only), the YAML
nodes of all files together, the number of modules, and the problems listed per file.
Time is linear in the input: the shipped defaults are parsed once per load, not once per
``include_defaults`` module (which made 2,000 modules take 20 s).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watchdog.config import groups, limits
from watchdog.config.schema import Module, RulesFile, cross_check, merge_defaults
from watchdog.config.yamlload import Located, NodeBudget, load_yaml
from watchdog.errors import ConfigError, Issue, UnknownModule

DEFAULT_RULES = "default.yaml"
_SHOWN = 20  # module names listed when a name is unknown


@dataclass(frozen=True)
class RuleSet:
    """Validated modules by name; ``*`` is the module used for names not declared."""

    modules: dict[str, Module]
    files: tuple[str, ...] = field(default=())
    # where each module is declared (file, line), for errors found after loading
    origins: dict[str, tuple[str, int]] = field(default_factory=dict, compare=False)
    # module groups (watchdog/groups/model.py), by name
    groups: dict[str, Any] = field(default_factory=dict)

    def for_module(self, name: str) -> Module:
        if name in self.modules:
            return self.modules[name]
        if "*" in self.modules:
            return self.modules["*"].model_copy(update={"name": name})
        if name in self.groups:  # a command that takes one module was given a group
            members = ", ".join(self.groups[name].names)
            raise UnknownModule(f"{name!r} is a module group, not a module: this takes one "
                                f"of its members ({members})")
        names = sorted(self.modules)
        known = ", ".join(names[:_SHOWN]) or "none"
        more = f" and {len(names) - _SHOWN:,} more" if len(names) > _SHOWN else ""
        raise UnknownModule(f"no rules declare module {name!r} (declared: {known}{more})")


def default_rules_text() -> str:
    return (resources.files("watchdog") / "defaults" / DEFAULT_RULES).read_text("utf-8")


def load_default_rules() -> RuleSet:
    return load_texts([("<shipped default rules>", default_rules_text())])


def rule_files(paths: list[str | Path]) -> list[Path]:
    """The YAML files named, or found below the folders named (skipping tests/ folders)."""
    found: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                rel = candidate.relative_to(path)
                if "tests" in rel.parts[:-1] or candidate.suffix not in (".yaml", ".yml"):
                    continue
                if candidate.is_file():
                    found.append(candidate)
        else:
            found.append(path)
    return found


def load_paths(paths: list[str | Path]) -> RuleSet:
    files = rule_files(paths)
    issues: list[Issue] = []
    texts: list[tuple[str, str]] = []
    if not files:
        raise ConfigError([Issue(", ".join(str(p) for p in paths), 0,
                                 "no rule files (*.yaml, *.yml) found")])
    for path in files:
        try:
            texts.append((str(path), limits.read_text(path, limits.FILE_BYTES)))
        except OSError as err:
            issues.append(Issue(str(path), 0, f"cannot read: {err.strerror or err}"))
        except UnicodeDecodeError as err:
            issues.append(Issue(str(path), 0, f"cannot read: not UTF-8 text: {err}"))
        except limits.LimitValueError as err:
            issues.append(Issue(str(path), 0, str(err)))
    if issues:
        raise ConfigError(issues)
    return load_texts(texts)


def load_texts(texts: list[tuple[str, str]]) -> RuleSet:
    issues: list[Issue] = []
    modules: dict[str, Module] = {}
    origin: dict[str, Issue] = {}
    defaults = _once(_default_module)
    try:
        budget = NodeBudget.fresh()
        most_modules = limits.MODULES.value()
    except limits.LimitValueError as err:
        raise ConfigError([Issue(texts[0][0] if texts else "", 0, str(err))]) from None
    grouped: list[tuple[Any, int, Located]] = []
    for file, text in texts:
        try:
            located = load_yaml(text, file, budget)
        except ConfigError as err:
            issues.extend(err.issues)
            continue
        found: list[Issue] = []
        grouped += [(g, i, located) for g, i in groups.validate(located, found)]
        for module, line in _validate(located, found, defaults, most_modules
                                      - len(modules)):
            if module.name in modules:
                first = origin[module.name]
                found.append(Issue(file, line, f"module {module.name!r} is already declared "
                                               f"at {first.file}:{first.line}"))
                continue
            modules[module.name] = module
            origin[module.name] = Issue(file, line, "")
        issues += _capped(file, found)
    issues += groups.cross_check(grouped, modules)
    if issues:
        raise ConfigError(issues)
    return RuleSet(modules=modules, files=tuple(f for f, _ in texts),
                   origins={m: (i.file, i.line) for m, i in origin.items()},
                   groups={g.name: g for g, _, _ in grouped})


def _capped(file: str, found: list[Issue]) -> list[Issue]:
    """At most ISSUES_PER_FILE problems of one file, then how many more there are."""
    most = limits.ISSUES_PER_FILE
    if len(found) <= most:
        return found
    return [*found[:most], Issue(file, 0, f"{len(found) - most:,} more problem(s) in this "
                                          f"file not shown (the first {most} are above)")]


def _once(make: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    made: list[dict[str, Any]] = []

    def get() -> dict[str, Any]:
        if not made:
            made.append(make())
        return made[0]
    return get


def _default_module() -> dict[str, Any]:
    """The shipped defaults' ``*`` module as plain data (merge_defaults copies what it
    changes, so one parse serves every ``include_defaults`` module of a load)."""
    data = load_yaml(default_rules_text(), "<shipped default rules>").data
    return dict(data["modules"][0])


def _validate(located: Located, issues: list[Issue], defaults: Any,
              modules_left: int) -> list[tuple[Module, int]]:
    data = located.data
    file = located.file
    if not isinstance(data, dict) or "modules" not in data:
        issues.append(Issue(file, located.line_of(()),
                            "expected a mapping with a 'modules' list at the top"))
        return []
    raw_modules = data.get("modules")
    if isinstance(raw_modules, list) and len(raw_modules) > modules_left:
        issues.append(Issue(file, located.line_of(("modules", max(modules_left, 0))),
                            limits.MODULES.refusal("modules: this rule set declares more than",
                                                   limits.MODULES.value())))
        return []
    data = {k: v for k, v in data.items() if k != "groups"}  # groups.validate reads them
    if isinstance(raw_modules, list):
        prepared = []
        for raw in raw_modules:
            if isinstance(raw, dict) and raw.get("include_defaults") is True:
                raw = merge_defaults(raw, defaults())
            prepared.append(raw)
        data = {**data, "modules": prepared}
    try:
        parsed = RulesFile.model_validate(data)
    except ValidationError as err:
        for error in err.errors():
            loc = tuple(error["loc"])
            issues.append(Issue(file, located.line_of(_pinpoint(loc, error, located)),
                                _describe(loc, error)))
        return []
    result = []
    for index, module in enumerate(parsed.modules):
        for path, message in cross_check(module):
            full = ("modules", index, *path)
            issues.append(Issue(file, located.line_of(full),
                                f"{_dotted(full)}: {message}"))
        result.append((module, located.line_of(("modules", index))))
    return result


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(loc: tuple[Any, ...], error: Any) -> str:
    where = _dotted(tuple(p for p in loc if p not in _UNION_TAGS))
    kind = error.get("type", "")
    message = str(error.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return f"{where}: unknown field (check the spelling; see the rule reference)"
    if kind == "missing":
        return f"{where}: required field is missing"
    if kind == "union_tag_invalid":
        got = (error.get("ctx") or {}).get("tag")
        return (f"{where}: kind must be one of relative, absolute, growth, increase, bursts"
                + ("" if got is None else f" (got {got!r})"))
    if kind == "union_tag_not_found":
        return f"{where}: every rule needs a kind (relative, absolute, growth, increase, bursts)"
    message = message.removeprefix("Value error, ")
    got = error.get("input")
    shown = isinstance(got, dict | list) or got is None or repr(got) in message
    suffix = "" if shown else f" (got {got!r})"
    return f"{where}: {message}{suffix}"


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _pinpoint(loc: tuple[Any, ...], error: Any, located: Located) -> tuple[Any, ...]:
    """Where a check across fields points: the first field its message names.

    A model-level check ("below (10) must be less than above (5)", "action: rollback
    needs severity: critical") is reported by pydantic at the object; the line that
    needs fixing is the one of the field the message is about.
    """
    path = tuple(p for p in loc if p not in _UNION_TAGS)
    if error.get("type") == "union_tag_invalid":
        return (*path, "kind")
    if error.get("type") != "value_error" or not isinstance(error.get("input"), dict):
        return loc
    for word in _WORD.findall(str(error.get("msg", "")).removeprefix("Value error, ")):
        if word in error["input"] and (*path, word) in located.lines:
            return (*path, word)
    return loc


_UNION_TAGS = {"relative", "absolute", "growth", "increase", "bursts",
               "function-before[_stage(), Stage]", "function-after[_check(), ScrapeSpec]"}
