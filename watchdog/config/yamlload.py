"""Safe YAML loading that remembers the line of every key and item.

Only plain data is built (``yaml.SafeLoader`` resolution of scalars; no tags that
construct objects). Duplicate keys are an error, as in ``promtool``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from watchdog.errors import ConfigError, Issue

Path = tuple[str | int, ...]


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
        if node.tag.startswith("tag:yaml.org,2002:") or node.tag == "!":
            try:
                return loader.construct_object(node, deep=True)
            except yaml.YAMLError as err:
                issues.append(Issue(out.file, node.start_mark.line + 1, f"invalid value: {err}"))
                return None
        issues.append(Issue(out.file, node.start_mark.line + 1,
                            f"unsupported YAML tag {node.tag!r}"))
        return None
    issues.append(Issue(out.file, node.start_mark.line + 1, "unsupported YAML node"))
    return None
