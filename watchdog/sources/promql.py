"""Batching a per-module PromQL template: one query for many modules and both versions.

A metric's ``query`` is written for one module and version: ``{module}``/``{version}``
are replaced in its label matchers. :func:`batch` rewrites such a template once so that a
single query answers for a set of modules and versions, one series per (module, version),
equal to what the per-module queries return:

* every ``module="{module}"`` / ``version="{version}"`` matcher becomes a regex matcher
  over the modules (``module=~"a|b\\\\.c"``) and versions (``version=~"v1|v2"``);
* every aggregation groups by ``module`` and ``version`` as well (``sum by (le)`` becomes
  ``sum by (le, module, version)``, ``max(x)`` becomes ``max by (module, version) (x)``),
  and vector matching ``on (...)`` matches on them too.

Within one per-module query every series carries the same ``module`` and ``version``
(each selector has both equality matchers), so adding them to every grouping and match
splits the batched result into exactly the per-module results. A template whose shape
does not guarantee that is not batched (:class:`NotBatchable` says why) and runs one
query per module as before: a selector without both matchers (``up``, or one that sums
over all modules), ``{module}`` anywhere but such a matcher, ``without``/``ignoring``
naming them, a function or aggregation outside the known label-preserving ones
(``label_replace``, ``scalar``, ``vector``, ``absent``, ``topk``...), or ``@``
(its ``start()``/``end()`` depend on the query's range). Pure: no I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from watchdog.config.schema import Module

GROUPING = ("module", "version")
_AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar",
                           "count", "quantile"})
_FUNCTIONS = frozenset({
    "abs", "ceil", "floor", "round", "exp", "ln", "log2", "log10", "sqrt", "sgn", "clamp",
    "clamp_min", "clamp_max", "rate", "irate", "increase", "delta", "idelta", "deriv",
    "predict_linear", "resets", "changes", "timestamp", "histogram_quantile",
    "histogram_count", "histogram_sum", "histogram_fraction", "avg_over_time",
    "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time", "holt_winters", "sort", "sort_desc", "acos", "acosh", "asin",
    "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad",
    "time", "pi", "minute", "hour", "day_of_week", "day_of_month", "day_of_year",
    "days_in_month", "month", "year"})
_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right",
                       "bool", "offset", "and", "or", "unless", "atan2"})
_TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:[smhdwy]|ms)?
                (?:\d+(?:[smhdwy]|ms))*|[Ii]nf\b|NaN\b)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|<=|>=|=~|!~|[-+*/%^=<>(){}\[\],:@])
""", re.VERBOSE)


class NotBatchable(ValueError):
    """The template's shape does not allow one query for many modules; the message
    says why."""


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Batched:
    """A template rewritten for many modules: ``pieces`` alternate text and the name of
    what goes between (``module``/``version``)."""

    template: str
    pieces: tuple[str, ...]

    def render(self, modules: Iterable[str], versions: Iterable[str]) -> str:
        values = {"module": matcher("module", modules),
                  "version": matcher("version", versions)}
        return "".join(values[p] if i % 2 else p for i, p in enumerate(self.pieces))


def matcher(label: str, values: Iterable[str]) -> str:
    """``label=~"a|b"`` matching exactly these values (regex characters escaped)."""
    alternatives = sorted({re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", v) for v in values})
    body = "|".join(alternatives).replace("\\", "\\\\").replace('"', '\\"')
    return f'{label}=~"{body}"'


def tokens(text: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None:
            raise NotBatchable(f"cannot read the query at {text[pos:pos + 20]!r}")
        kind = found.lastgroup or ""
        if kind != "space":
            out.append(Tok(kind, found.group(), pos))
        pos = found.end()
    return out


def batch(template: str) -> Batched:
    """The template rewritten for many modules, or :class:`NotBatchable`."""
    return _Rewriter(template).run()


def why_not(template: str) -> str | None:
    """None when the template batches, else the reason."""
    try:
        batch(template)
    except NotBatchable as err:
        return str(err)
    return None


class _Rewriter:
    def __init__(self, template: str) -> None:
        self.text = template
        self.toks = tokens(template)
        self.i = 0
        # edits: (start, end, text): an insertion (start == end), or a matcher replaced
        # by the slot named ``text`` (module or version)
        self.edits: list[tuple[int, int, str]] = []
        self.slots = 0

    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def run(self) -> Batched:
        for placeholder in ("{module}", "{version}"):
            if placeholder not in self.text:
                raise NotBatchable(f"it has no {placeholder} matcher")
        stack: list[tuple[str, int]] = []  # per open paren: aggregation inserted-at, or -1
        while self.i < len(self.toks):
            tok = self.toks[self.i]
            if tok.text == "@":
                raise NotBatchable("it uses @ (its start()/end() follow the query range)")
            if tok.kind == "ident":
                self._ident(tok, stack)
                continue
            if tok.text == "{":
                self._selector(None)
                continue
            if tok.text == "[":  # a range or subquery: durations only
                while self.peek() is not None and self.peek().text != "]":  # type: ignore[union-attr]
                    self.i += 1
                self.i += 1
                continue
            if tok.text == "(":
                stack.append(("", -1))
            elif tok.text == ")":
                if not stack:
                    raise NotBatchable("unbalanced parentheses")
                kind, at = stack.pop()
                if kind == "agg":
                    self.i += 1
                    self._after_aggregation(at)
                    continue
            self.i += 1
        if stack:
            raise NotBatchable("unbalanced parentheses")
        wanted = {"module": self.text.count("{module}"), "version": self.text.count("{version}")}
        if self.slots != sum(wanted.values()):
            raise NotBatchable("{module} or {version} appears outside a "
                               'module="{module}" / version="{version}" matcher')
        pieces: list[str] = [""]
        pos = 0
        for start, end, what in sorted(self.edits, key=lambda e: (e[0], e[1])):
            pieces[-1] += self.text[pos:start]
            if end > start:  # a matcher: its slot
                pieces += [what, ""]
            else:
                pieces[-1] += what
            pos = end
        pieces[-1] += self.text[pos:]
        return Batched(self.text, tuple(pieces))

    def _ident(self, tok: Tok, stack: list[tuple[str, int]]) -> None:
        nxt = self.peek(1)
        name = tok.text
        if name in _AGGREGATIONS or name in ("count_values", "topk", "bottomk", "limitk",
                                             "limit_ratio"):
            if name not in _AGGREGATIONS:
                raise NotBatchable(f"{name}() does not split by module")
            self.i += 1
            clause = self.peek()
            grouped = False
            if clause is not None and clause.text in ("by", "without"):
                self.i += 1
                self._grouping(clause.text)
                grouped = True
            if self.peek() is None or self.peek().text != "(":  # type: ignore[union-attr]
                raise NotBatchable(f"cannot read the aggregation {name}")
            stack.append(("agg", -2 if grouped else tok.pos + len(tok.text)))
            self.i += 1
            return
        if name in ("on", "ignoring"):
            self.i += 1
            self._grouping(name)
            return
        if name in ("group_left", "group_right"):
            self.i += 1
            if self.peek() is not None and self.peek().text == "(":  # type: ignore[union-attr]
                self._labels()
            return
        if name in _KEYWORDS:
            self.i += 1
            return
        if nxt is not None and nxt.text == "(":
            if name not in _FUNCTIONS:
                raise NotBatchable(f"{name}() is not known to keep the module and version "
                                   "labels")
            self.i += 1
            return
        self.i += 1
        if nxt is not None and nxt.text == "{":
            self._selector(name)
            return
        raise NotBatchable(f"the selector {name} has no module/version matchers")

    def _selector(self, name: str | None) -> None:
        """At ``{``: the matchers; both placeholders must be there as equality matchers."""
        self.i += 1
        seen: set[str] = set()
        while True:
            tok = self.peek()
            if tok is None:
                raise NotBatchable("unclosed {")
            if tok.text == "}":
                self.i += 1
                break
            if tok.text == ",":
                self.i += 1
                continue
            op, value = self.peek(1), self.peek(2)
            if tok.kind not in ("ident", "string") or op is None or value is None \
                    or value.kind != "string":
                raise NotBatchable(f"cannot read the matchers of {name or 'a selector'}")
            if value.text[1:-1] in ("{module}", "{version}"):
                label = value.text[2:-2]
                if tok.text != label or op.text != "=" or label in seen:
                    raise NotBatchable(f"{value.text[1:-1]} must be matched as "
                                       f'{label}="{{{label}}}"')
                seen.add(label)
                self.edits.append((tok.pos, value.pos + len(value.text), label))
                self.slots += 1
            self.i += 3
        if seen != set(GROUPING):
            missing = " and ".join(sorted(set(GROUPING) - seen))
            raise NotBatchable(f"the selector {name or '{...}'} has no {missing} matcher")

    def _labels(self) -> tuple[list[str], Tok]:
        """At ``(``: a label list; returns the labels and the closing token."""
        self.i += 1
        labels: list[str] = []
        while True:
            tok = self.peek()
            if tok is None:
                raise NotBatchable("unclosed label list")
            self.i += 1
            if tok.text == ")":
                return labels, tok
            if tok.text != ",":
                labels.append(tok.text.strip("\"'"))

    def _grouping(self, clause: str) -> None:
        if self.peek() is None or self.peek().text != "(":  # type: ignore[union-attr]
            raise NotBatchable(f"cannot read the {clause} clause")
        labels, close = self._labels()
        if clause in ("without", "ignoring"):
            if set(labels) & set(GROUPING):
                raise NotBatchable(f"{clause} ({', '.join(labels)}) drops the module or "
                                   "version label")
            return
        extra = [g for g in GROUPING if g not in labels]
        if extra:
            self.edits.append((close.pos, close.pos, (", " if labels else "")
                               + ", ".join(extra)))

    def _after_aggregation(self, at: int) -> None:
        clause = self.peek()
        if clause is not None and clause.text in ("by", "without"):
            self.i += 1
            self._grouping(clause.text)
            return
        if at >= 0:
            self.edits.append((at, at, " by (" + ", ".join(GROUPING) + ") "))



def batchable(module: Module) -> list[tuple[str, Batched]]:
    """The module's metrics whose templates batch, with the rewritten templates."""
    return [(name, b) for name, spec in module.metrics.items()
            if spec.query is not None and (b := _batched(spec.query)) is not None]


def batch_report(module: Module) -> dict[str, str | None]:
    """Per metric with a query: None when its template batches, else why not."""
    return {name: why_not(spec.query) for name, spec in module.metrics.items()
            if spec.query is not None}


def summary(modules: Iterable[Module]) -> list[str]:
    """One line for the templates that batch, one per template that does not."""
    ok: set[str] = set()
    refused: dict[tuple[str, str], list[str]] = {}
    for module in modules:
        for metric, reason in batch_report(module).items():
            if reason is None:
                ok.add(module.metrics[metric].query or "")
            else:
                refused.setdefault((metric, reason), []).append(module.name)
    lines = [f"prometheus: {len(ok)} query template(s) batch: one range query per interval "
             "for all their modules and both versions"]
    for (metric, reason), names in sorted(refused.items()):
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        lines.append(f"prometheus: {metric} of {shown}: queried per module ({reason})")
    return lines


@functools.lru_cache(maxsize=256)
def _batched(template: str) -> Batched | None:
    try:
        return batch(template)
    except NotBatchable:
        return None
