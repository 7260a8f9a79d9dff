"""Safe YAML loading that remembers the line of every key and item.

Only plain data is built (``yaml.SafeLoader`` resolution of scalars; no tags that
construct objects, on scalars, sequences or mappings alike). Duplicate keys are an error,
as in ``promtool``; so are non-finite numbers (``.nan``, ``.inf``), which no rule field
can mean and which would make a threshold silently never match.

Bounded (:mod:`watchdog.config.limits`): characters YAML does not allow (NUL, control
characters) are located before parsing; the parsed graph is measured before anything is
built, so an alias that contains itself, nesting deeper than ``YAML_DEPTH`` and a
document that expands (aliases counted at every use) to more than ``YAML_NODES`` nodes
are refused at their line in time linear in the file, not in the expansion. libyaml
parses when it is installed (PyYAML's C loader, ~20x faster than the pure-Python one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from watchdog.config import limits
from watchdog.errors import ConfigError, Issue

Path = tuple[str | int, ...]
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NOT_YAML = yaml.reader.Reader.NON_PRINTABLE

_STD = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_STD + t for t in ("null", "bool", "int", "float", "str", "timestamp"))
_MAP_TAG = _STD + "map"
_SEQ_TAG = _STD + "seq"


@dataclass
class Located:
    """Parsed YAML data with the 1-based line of each path inside it."""

    file: str
    data: Any
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int:
        """Line of the deepest part of ``path`` that exists in the document."""
        best = self.lines.get((), 1)
        prefix: Path = ()
        for part in path:
            candidate = (*prefix, part)
            if candidate in self.lines:
                prefix = candidate
                best = self.lines[candidate]
            # parts that are not in the document (pydantic union tags) are skipped
        return best


@dataclass
class NodeBudget:
    """YAML nodes one load may still build (several files share one: a rule set)."""

    left: int
    used: int = 0

    @classmethod
    def fresh(cls) -> NodeBudget:
        return cls(limits.YAML_NODES.value())

    def spend(self, count: int) -> None:
        self.left -= count
        self.used += count


def load_yaml(text: str, file: str, budget: NodeBudget | None = None) -> Located:
    """Parse one YAML document; raise ConfigError(file:line) on any syntax problem or
    on input beyond the limits (``budget``: nodes left for this load, else a fresh one)."""
    try:
        budget = budget or NodeBudget.fresh()
    except limits.LimitValueError as err:
        raise ConfigError([Issue(file, 0, str(err))]) from None
    bad = _NOT_YAML.search(text)
    if bad is not None:
        raise ConfigError([Issue(file, text.count("\n", 0, bad.start()) + 1,
                                 f"invalid YAML: character U+{ord(bad.group()):04X} is not "
                                 "allowed in YAML (NUL and control characters)")])
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        problem = str(err.problem or err).replace("did not find expected", "expected")
        if "maximum nesting depth" in problem:  # libyaml's own bound (1,000)
            problem = limits.YAML_DEPTH.refusal("nested deeper than")
        raise ConfigError([Issue(file, line, f"invalid YAML: {problem}")]) from err
    except yaml.YAMLError as err:
        raise ConfigError([Issue(file, 0, f"invalid YAML: {err}")]) from err
    except RecursionError:  # the pure-Python composer recurses per level
        raise ConfigError([Issue(file, _line_reached(loader), "invalid YAML: "
                                 + limits.YAML_DEPTH.refusal("nested deeper than"))]) from None
    finally:
        loader.dispose()
    located = Located(file=file, data=None)
    if node is None:
        return located
    budget.spend(_measure(node, file, budget))
    issues: list[Issue] = []
    located.data = _build(node, (), located, loader, issues)
    if issues:
        raise ConfigError(issues)
    return located


def _line_reached(loader: yaml.SafeLoader) -> int:
    get_mark = getattr(loader, "get_mark", None)  # the pure-Python reader's position
    return int(get_mark().line) + 1 if callable(get_mark) else 0


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(root: yaml.Node, file: str, budget: NodeBudget) -> int:
    """Nodes the document expands to; ConfigError on a cycle or beyond the limits.

    Each distinct node is visited once (iteratively: no recursion on deep input) and its
    expanded size and height are memoised, so a 400-byte alias bomb costs microseconds.
    """
    most_deep = limits.YAML_DEPTH.value()
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        key = id(node)
        if closing:
            open_.discard(key)
            total, tallest = 1, 0
            for kid in _children(node):
                kid_key = id(kid)
                total += size.get(kid_key, 1)  # scalars are not in the tables: 1 and 1
                tallest = max(tallest, height.get(kid_key, 1))
            size[key] = total
            height[key] = tallest + 1
            if tallest + 1 > most_deep:
                raise ConfigError([Issue(file, node.start_mark.line + 1, "invalid YAML: "
                                         + limits.YAML_DEPTH.refusal("nested deeper than"))])
            if total > budget.left:
                before = (f" with the {budget.used:,} nodes of the files read before it"
                          if budget.used else "")
                raise ConfigError([Issue(file, node.start_mark.line + 1, limits.YAML_NODES
                                         .refusal("this node expands (aliases counted at every"
                                                  f" use){before} to more than",
                                                  budget.left + budget.used))])
            continue
        if key in size or isinstance(node, yaml.ScalarNode):
            continue
        if key in open_:
            raise ConfigError([Issue(file, node.start_mark.line + 1,
                                     "invalid YAML: an alias contains itself (the node "
                                     "anchored here holds an alias to itself)")])
        open_.add(key)
        stack.append((node, True))
        stack.extend((kid, False) for kid in _children(node)
                     if not isinstance(kid, yaml.ScalarNode))
    if budget.left < 1 and isinstance(root, yaml.ScalarNode):
        raise ConfigError([Issue(file, root.start_mark.line + 1, limits.YAML_NODES.refusal(
            "more than", budget.left + budget.used))])
    return size.get(id(root), 1)


def _build(node: yaml.Node, path: Path, out: Located, loader: yaml.SafeLoader,
           issues: list[Issue]) -> Any:
    out.lines[path] = node.start_mark.line + 1
    if not _plain_tag(node):
        issues.append(Issue(out.file, node.start_mark.line + 1, _tag_message(node.tag)))
        return None
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                issues.append(Issue(out.file, key_node.start_mark.line + 1,
                                    "mapping keys must be plain scalars"))
                continue
            if key_node.tag == "tag:yaml.org,2002:merge":
                issues.append(Issue(out.file, key_node.start_mark.line + 1,
                                    "YAML merge keys (<<) are not supported"))
                continue
            if key_node.tag not in _SCALAR_TAGS:
                issues.append(Issue(out.file, key_node.start_mark.line + 1,
                                    _tag_message(key_node.tag)))
                continue
            key = str(loader.construct_scalar(key_node))
            if key in result:
                issues.append(Issue(out.file, key_node.start_mark.line + 1,
                                    f"duplicate key {key!r}"))
                continue
            child = (*path, key)
            result[key] = _build(value_node, child, out, loader, issues)
            out.lines[child] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), out, loader, issues) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.ScalarNode):
        try:
            value = loader.construct_object(node, deep=True)
        except Exception as err:  # constructors raise ValueError, AttributeError, ...
            if isinstance(err, yaml.MarkedYAMLError):
                detail = f": {err.problem}"
            else:
                detail = f": {err}" if isinstance(err, ValueError) else ""
            issues.append(Issue(out.file, node.start_mark.line + 1,
                                f"invalid {_short(node.tag)} value {node.value!r}{detail}"))
            return None
        if isinstance(value, float) and not math.isfinite(value):
            issues.append(Issue(out.file, node.start_mark.line + 1,
                                f"expected a finite number, got {node.value!r}"))
            return None
        return value
    issues.append(Issue(out.file, node.start_mark.line + 1, "unsupported YAML node"))
    return None


def _plain_tag(node: yaml.Node) -> bool:
    if isinstance(node, yaml.MappingNode):
        return bool(node.tag == _MAP_TAG)
    if isinstance(node, yaml.SequenceNode):
        return bool(node.tag == _SEQ_TAG)
    return node.tag in _SCALAR_TAGS


def _short(tag: str) -> str:
    return "!!" + tag[len(_STD):] if tag.startswith(_STD) else tag


def _tag_message(tag: str) -> str:
    return (f"unsupported YAML tag {_short(tag)!r}: only plain data (strings, numbers, "
            "booleans, lists, mappings) is allowed; tags that build objects are refused")
