"""Safe YAML loading that remembers the line of every key and item.

Only plain data is built (``yaml.SafeLoader`` resolution of scalars; no tags that
construct objects, on scalars, sequences or mappings alike). Duplicate keys are an error,
as in ``promtool``; so are non-finite numbers (``.nan``, ``.inf``), which no rule field
can mean and which would make a threshold silently never match.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from watchdog.errors import ConfigError, Issue

Path = tuple[str | int, ...]

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


def load_yaml(text: str, file: str) -> Located:
    """Parse one YAML document; raise ConfigError(file:line) on any syntax problem."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else 0
        raise ConfigError([Issue(file, line, f"invalid YAML: {err.problem or err}")]) from err
    except yaml.YAMLError as err:
        raise ConfigError([Issue(file, 0, f"invalid YAML: {err}")]) from err
    finally:
        loader.dispose()
    located = Located(file=file, data=None)
    if node is None:
        return located
    issues: list[Issue] = []
    located.data = _build(node, (), located, loader, issues)
    if issues:
        raise ConfigError(issues)
    return located


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
