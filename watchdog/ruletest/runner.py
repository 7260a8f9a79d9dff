"""Run rule-test files through the real engine, the way ``promtool test rules`` does.

Each test case gets its own :class:`~watchdog.engine.Engine` over a journal in memory and
a source that serves the test's input series. The engine ticks every ``interval`` from 0
(the first tick starts the rollout at the plan's first stage) to the latest ``eval_time``
of the case; each expectation is then checked against the state after the last tick at
or before its ``eval_time``.

A file is checked whole before anything runs: every problem (YAML, schema, notation,
unknown module, metric or rule, rule files that do not load) is an :class:`Issue` with
its file and line, and such a file is "malformed" (exit 2), not "failed" (exit 1).
"""

from __future__ import annotations

import bisect
import glob
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from watchdog import baseline as baselines
from watchdog.config.loader import RuleSet, load_default_rules, load_paths
from watchdog.config.schema import Module, Plan
from watchdog.config.yamlload import Located, load_yaml
from watchdog.durations import format_duration
from watchdog.engine import Engine
from watchdog.errors import ConfigError, Issue, UnknownModule, WatchdogError
from watchdog.journal.store import Journal
from watchdog.judge.alerts import AlertPhase
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Decision, Version
from watchdog.ruletest.model import (
    AlertRuleTest,
    BaselineSpec,
    DecisionTest,
    RuleTestCase,
    RuleTestFile,
)
from watchdog.ruletest.notation import NotationError, expand, parse_selector
from watchdog.sources.base import SourceBase

MAX_TICKS = 50_000
EPS = 1e-6

Loc = tuple[str | int, ...]


class StoreSource(SourceBase):
    """A :class:`~watchdog.sources.Source` serving fixed samples (the test's input series)."""

    name = "ruletest"

    def __init__(self, store: SeriesStore) -> None:
        self.store = store

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        return self.store.until(end)


@dataclass(frozen=True)
class Mismatch:
    """One expectation that did not hold."""

    file: str
    line: int
    test: str
    what: str
    expected: str
    got: str

    def __str__(self) -> str:
        return (f"{self.file}:{self.line}: test {self.test!r}: {self.what}\n"
                f"      exp: {self.expected}\n      got: {self.got}")


@dataclass(frozen=True)
class CaseResult:
    name: str
    line: int
    mismatches: tuple[Mismatch, ...]
    ticks: int


@dataclass(frozen=True)
class FileResult:
    file: str
    cases: tuple[CaseResult, ...] = ()
    issues: tuple[Issue, ...] = ()

    @property
    def status(self) -> int:
        """0 all passed, 1 an expectation failed, 2 the file is malformed."""
        if self.issues:
            return 2
        return 1 if any(c.mismatches for c in self.cases) else 0


@dataclass(frozen=True)
class Prepared:
    """A test case checked and turned into what the engine needs."""

    name: str
    line: int
    module: str
    interval: float
    store: SeriesStore
    baselines: tuple[baselines.Baseline, ...]
    plan: Plan | None
    alerts: tuple[tuple[int, AlertRuleTest], ...]
    decisions: tuple[tuple[int, DecisionTest], ...]

    @property
    def end(self) -> float:
        times = [t.eval_time for _, t in self.alerts] + [t.eval_time for _, t in self.decisions]
        return max(times)


@dataclass
class _Checker:
    """Collects the issues of one file while its cases are prepared."""

    located: Located
    issues: list[Issue] = field(default_factory=list)

    def add(self, loc: Loc, message: str, where: bool = True) -> None:
        """An issue at ``loc``'s line; ``where``: prefix the dotted path (tests[0].module)."""
        text = f"{_dotted(loc)}: {message}" if where and loc else message
        self.issues.append(Issue(self.located.file, self.located.line_of(loc), text))

    def line(self, loc: Loc) -> int:
        return self.located.line_of(loc)


def run_file(path: str | Path, name_filter: Any = None) -> FileResult:
    """Check and run one test file. ``name_filter``: a compiled regex on test names."""
    file = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return FileResult(file, issues=(Issue(file, 0, f"cannot read: {err}"),))
    try:
        located = load_yaml(text, file)
    except ConfigError as err:
        return FileResult(file, issues=tuple(err.issues))
    checker = _Checker(located)
    if not isinstance(located.data, dict):
        checker.add((), "expected a mapping with rule_files, evaluation_interval and tests")
        return FileResult(file, issues=tuple(checker.issues))
    try:
        spec = RuleTestFile.model_validate(located.data)
    except ValidationError as err:
        for error in err.errors():
            loc = tuple(error["loc"])
            checker.add(loc, _describe(loc, error), where=False)
        return FileResult(file, issues=tuple(checker.issues))
    rules = _rules(spec, Path(path), checker)
    if rules is None:
        return FileResult(file, issues=tuple(checker.issues))
    prepared = []
    for index, case in enumerate(spec.tests):
        if name_filter is not None and not name_filter.search(case.name):
            continue
        ready = _prepare(case, index, spec, rules, checker)
        if ready is not None:
            prepared.append(ready)
    if checker.issues:
        return FileResult(file, issues=tuple(checker.issues))
    return FileResult(file, cases=tuple(_run(p, rules, file) for p in prepared))


def _rules(spec: RuleTestFile, path: Path, checker: _Checker) -> RuleSet | None:
    if spec.rule_files is None:
        return load_default_rules()
    if not spec.rule_files:
        checker.add(("rule_files",), "rule_files is empty: name a rule file, or leave "
                                      "rule_files out to test the shipped default rules")
        return None
    found: list[str | Path] = []
    for i, entry in enumerate(spec.rule_files):
        target = Path(entry) if Path(entry).is_absolute() else path.parent / entry
        if any(c in entry for c in "*?["):
            matches = sorted(glob.glob(str(target)))
            if not matches:
                checker.add(("rule_files", i), f"rule file pattern {entry!r} matches nothing "
                                               f"(relative to {path.parent})")
            found.extend(matches)
        elif not target.exists():
            checker.add(("rule_files", i), f"rule file {entry!r} not found "
                                           f"(looked for {target})")
        else:
            found.append(target)
    if checker.issues:
        return None
    try:
        return load_paths(found)
    except ConfigError as err:
        checker.add(("rule_files",), f"rule files do not load ({len(err.issues)} problem(s) "
                                     "listed below)", where=False)
        checker.issues.extend(err.issues)
        return None


def _prepare(case: RuleTestCase, index: int, spec: RuleTestFile, rules: RuleSet,
             checker: _Checker) -> Prepared | None:
    at: Loc = ("tests", index)
    before = len(checker.issues)
    try:
        module = rules.for_module(case.module)
    except UnknownModule as err:
        checker.add((*at, "module"), str(err))
        return None
    interval = case.interval or spec.evaluation_interval or module.interval
    points: dict[tuple[Version, str], list[tuple[float, float]]] = {}
    for j, item in enumerate(case.input_series):
        where: Loc = (*at, "input_series", j)
        try:
            selector = parse_selector(item.series)
        except NotationError as err:
            checker.add((*where, "series"), str(err))
            continue
        if selector.module is not None and selector.module != case.module:
            checker.add((*where, "series"), f"series {item.series!r} is for module "
                                            f"{selector.module!r}, the test is for "
                                            f"{case.module!r}")
            continue
        if selector.metric not in module.metrics:
            checker.add((*where, "series"), _unknown_metric(selector.metric, module))
            continue
        key = (selector.version, selector.metric)
        if key in points:
            checker.add((*where, "series"), f"series {item.series!r} is given twice")
            continue
        try:
            values = expand(item.values)
        except NotationError as err:
            checker.add((*where, "values"), str(err))
            continue
        points[key] = [(case.series_start + k * interval, v)
                       for k, v in enumerate(values) if v is not None]
    stored = []
    for metric, b in case.baseline.items():
        made = _baseline(case, metric, b, module, interval, points, (*at, "baseline", metric),
                         checker)
        if made is not None:
            stored.append(made)
    plan = _plan(case, module, (*at, "plan"), checker)
    rule_names = [r.name for r in module.rules]
    alerts = []
    for j, a in enumerate(case.alert_rule_test):
        if a.rule not in rule_names:
            checker.add((*at, "alert_rule_test", j, "rule"), _unknown_rule(a.rule, module))
        alerts.append((checker.line((*at, "alert_rule_test", j)), a))
    decisions = []
    for j, d in enumerate(case.decision_test):
        if d.exp_rule is not None and d.exp_rule not in rule_names:
            checker.add((*at, "decision_test", j, "exp_rule"), _unknown_rule(d.exp_rule, module))
        decisions.append((checker.line((*at, "decision_test", j)), d))
    if len(checker.issues) > before:
        return None
    ready = Prepared(case.name or f"#{index + 1}", checker.line(at), case.module, interval,
                     SeriesStore({k: Series.of(p) for k, p in points.items()}), tuple(stored),
                     plan, tuple(alerts), tuple(decisions))
    ticks = math.floor(ready.end / interval + EPS) + 1
    if ticks > MAX_TICKS:
        checker.add(at, f"evaluating up to {format_duration(ready.end)} every "
                        f"{format_duration(interval)} takes {ticks} ticks; at most {MAX_TICKS}")
        return None
    return ready


def _baseline(case: RuleTestCase, metric: str, spec: BaselineSpec, module: Module,
              interval: float, points: dict[tuple[Version, str], list[tuple[float, float]]],
              loc: Loc, checker: _Checker) -> baselines.Baseline | None:
    if metric not in module.metrics:
        checker.add(loc, _unknown_metric(metric, module))
        return None
    source = f"ruletest:{checker.located.file}"
    if spec.values is not None:
        try:
            values = [v for v in expand(spec.values) if v is not None]
        except NotationError as err:
            checker.add((*loc, "values"), str(err))
            return None
        if not values:
            checker.add((*loc, "values"), "no values (only missing samples)")
            return None
        n = len(values)
        samples = [(-(n - k) * interval, v) for k, v in enumerate(values)]
        return baselines.capture(case.module, metric, samples, -n * interval, 0.0, source,
                                 captured_at=0.0)
    if spec.capture is not None:
        window = spec.capture
        try:
            return baselines.capture(case.module, metric, points.get((Version.V1, metric), []),
                                     window.from_, window.to, source, captured_at=window.to)
        except baselines.EmptyBaseline:
            checker.add((*loc, "capture"), f"no v1 samples of {metric} in "
                                           f"[{window.from_:g}s, {window.to:g}s): give a "
                                           f"{metric}{{version=\"v1\"}} input series that "
                                           f"covers the window")
            return None
    assert spec.count is not None and spec.mean is not None
    mean = spec.mean

    def pick(value: float | None) -> float:
        return mean if value is None else value

    return baselines.Baseline(
        module=case.module, metric=metric, window_from=-spec.count * interval, window_to=0.0,
        source=source, captured_at=0.0, count=spec.count, mean=mean,
        stddev=spec.stddev or 0.0, p50=pick(spec.p50), p90=pick(spec.p90), p95=pick(spec.p95),
        p99=pick(spec.p99), min=pick(spec.min), max=pick(spec.max))


def _plan(case: RuleTestCase, module: Module, loc: Loc, checker: _Checker) -> Plan | None:
    if case.plan is None:
        return None
    merged = {**module.plan.model_dump(by_alias=True), **case.plan}
    try:
        return Plan.model_validate(merged)
    except ValidationError as err:
        for error in err.errors():
            full = (*loc, *error["loc"])
            checker.add(full, _describe(full, error), where=False)
        return None


@dataclass(frozen=True)
class _Tick:
    at: float
    alerts: dict[str, tuple[AlertPhase, str]]


def _run(case: Prepared, rules: RuleSet, file: str) -> CaseResult:
    journal = Journal(":memory:")
    ticks: list[_Tick] = []
    try:
        for b in case.baselines:
            journal.save_baseline(b)
        engine = Engine(rules, journal, StoreSource(case.store),
                        plans={} if case.plan is None else {case.module: case.plan})
        k = 0
        while k * case.interval <= case.end + EPS:
            now = k * case.interval
            result = engine.tick(case.module, now)
            summaries = ({r.rule: r.summary for r in result.verdict.results}
                         if result.verdict is not None else {})
            ticks.append(_Tick(now, {name: (state.phase, summaries.get(name, ""))
                                     for name, state in result.checkpoint.alerts.items()}))
            k += 1
        decisions = [jd.decision for jd in journal.decisions(module=case.module)]
    except WatchdogError as err:
        failed = Mismatch(file, case.line, case.name, "running the engine",
                          "every tick to complete", f"error: {err}")
        return CaseResult(case.name, case.line, (failed,), len(ticks))
    finally:
        journal.close()
    mismatches = []
    times = [t.at for t in ticks]
    for line, a in case.alerts:
        tick = ticks[bisect.bisect_right(times, a.eval_time + EPS) - 1]
        phase, summary = tick.alerts.get(a.rule, (AlertPhase.INACTIVE, ""))
        if phase.value != a.exp_state:
            got = phase.value + (f" ({summary})" if summary else "")
            if abs(tick.at - a.eval_time) > EPS:
                got += f" [state after the tick at {format_duration(tick.at)}]"
            mismatches.append(Mismatch(file, line, case.name,
                                       f"alert {a.rule} at {format_duration(a.eval_time)}",
                                       a.exp_state, got))
    for line, d in case.decisions:
        upto = [x for x in decisions if x.at <= d.eval_time + EPS]
        if not _decision_matches(d, upto):
            mismatches.append(Mismatch(file, line, case.name,
                                       f"decision at {format_duration(d.eval_time)}",
                                       _expected(d), _got(upto)))
    return CaseResult(case.name, case.line, tuple(mismatches), len(ticks))


def _decision_matches(d: DecisionTest, upto: Sequence[Decision]) -> bool:
    if d.exp_action == "none":
        return len(upto) <= 1  # the first decision is always the rollout's start
    if not upto:
        return False
    last = upto[-1]
    if last.action.value != d.exp_action:
        return False
    if d.exp_traffic_percent is not None and abs(last.traffic_percent
                                                 - d.exp_traffic_percent) > EPS:
        return False
    return d.exp_rule is None or any(r.startswith(f"{d.exp_rule}:") for r in last.reasons)


def _expected(d: DecisionTest) -> str:
    if d.exp_action == "none":
        return "no decision after the rollout start"
    text: str = d.exp_action
    if d.exp_traffic_percent is not None:
        text += f" {d.exp_traffic_percent:g}%"
    if d.exp_rule is not None:
        text += f" because {d.exp_rule} fired"
    return text


def _got(upto: Sequence[Decision]) -> str:
    if not upto:
        return "no decision"
    last = upto[-1]
    reasons = "; ".join(last.reasons)
    if len(reasons) > 240:
        reasons = reasons[:237] + "..."
    text = (f"{last.action.value} {last.traffic_percent:g}% at {format_duration(last.at)}"
            f" ({reasons})")
    if len(upto) == 1:
        text += " [the rollout start]"
    return text


def _unknown_metric(metric: str, module: Module) -> str:
    known = ", ".join(sorted(module.metrics)) or "none"
    return f"metric {metric!r} is not declared for module {module.name!r} (declared: {known})"


def _unknown_rule(rule: str, module: Module) -> str:
    known = ", ".join(r.name for r in module.rules) or "none"
    return f"no rule {rule!r} in module {module.name!r} (rules: {known})"


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(loc: Sequence[Any], error: Any) -> str:
    where = _dotted([p for p in loc if not (isinstance(p, str) and "[" in p)]) or "file"
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"{where}: unknown field (check the spelling; see docs/rule-tests.md)"
    if kind == "missing":
        return f"{where}: required field is missing"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    got = error.get("input")
    suffix = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
    return f"{where}: {message}{suffix}"
