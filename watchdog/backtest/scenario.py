"""Recorded-rollout scenario files (JSON Lines; see the README's "Scenario format").

Reading is strict: any malformed line is a :class:`ScenarioError` naming file:line, and
nothing is returned from a file that is not wholly valid. Bounded
(:mod:`watchdog.config.limits`): a regular file of at most ``SCENARIO_BYTES``, a replay
of at most ``REPLAY_TICKS`` ticks (``end / step_seconds``), and JSON nested too deep for
the parser is a located error, not a RecursionError.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.config import limits
from watchdog.errors import ScenarioError
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Direction, Version


@dataclass(frozen=True)
class Scenario:
    name: str
    module: str
    step_seconds: float
    baseline_from: float
    baseline_to: float
    stages: tuple[float, ...]
    stage_seconds: float
    end: float
    metrics: dict[str, Direction]
    store: SeriesStore
    samples: int
    # a group recording (docs/scenario-format-groups.md): each member's samples; ``module``
    # is then the group's name and ``store`` is empty
    members: dict[str, SeriesStore] = field(default_factory=dict)


_FIELDS = frozenset({"t", "version", "metric", "value"})


def _number(value: Any) -> bool:
    """A finite number (an integer too large for a float is not one)."""
    try:
        if type(value) is float or type(value) is int:  # what JSON gives; checked first
            return math.isfinite(value)
        return isinstance(value, int | float) and not isinstance(value, bool) \
            and math.isfinite(value)
    except OverflowError:  # an int of 309 digits or more: no float holds it
        return False


def load_scenario(path: str | Path, *, replay: bool = True) -> Scenario:
    """Read a recorded rollout; ``replay``: it will be replayed tick by tick from 0 to
    ``end``, so a replay longer than REPLAY_TICKS is refused (a source that only serves
    its samples, such as the ``file`` source under the system clock, passes False)."""
    file = str(path)
    try:
        raw = limits.read_bytes(path, limits.SCENARIO_BYTES)
    except (OSError, limits.LimitValueError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise ScenarioError(file, 0, f"cannot read: {why}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ScenarioError(file, 0, f"not UTF-8 text: {err}") from err
    lines = text.split("\n")
    if not text.strip():
        raise ScenarioError(file, 1, "empty file: expected a meta line")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        # the last line has no newline: a file cut off mid-write
        try:
            json.loads(lines[-1])
        except (ValueError, RecursionError) as err:
            raise ScenarioError(file, len(lines),
                                "truncated: the last line is incomplete") from err
    meta = _meta(file, lines[0], replay)
    points: dict[tuple[Version, str], list[tuple[float, float]]] = defaultdict(list)
    members: list[str] = list(meta.get("members") or [])
    per_member: dict[str, dict[tuple[Version, str], list[tuple[float, float]]]] = {
        m: defaultdict(list) for m in members}
    fields = _FIELDS | {"module"} if members else _FIELDS
    versions = {v.value: v for v in Version}
    count = 0
    declared = meta["metrics"]
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as err:
            raise ScenarioError(file, number, f"invalid JSON: {err}") from err
        except RecursionError:
            raise ScenarioError(file, number, _TOO_DEEP) from None
        if not isinstance(item, dict):
            raise ScenarioError(file, number, "expected a JSON object")
        if item.keys() != fields:
            needed = ("t", "version", "metric", "value", *(("module",) if members else ()))
            missing = [k for k in needed if k not in item]
            if missing:
                raise ScenarioError(file, number, f"missing {', '.join(missing)}")
            extra = set(item) - fields
            raise ScenarioError(file, number, f"unknown field {sorted(extra)[0]!r}")
        if members and item["module"] not in per_member:
            raise ScenarioError(file, number, f"module {item['module']!r} is not one of "
                                              f"the meta line's members")
        t, name, metric, value = item["t"], item["version"], item["metric"], item["value"]
        version = versions.get(name) if isinstance(name, str) else None
        if version is None:
            raise ScenarioError(file, number, f"unknown version {name!r} "
                                              "(expected 'v1' or 'v2')")
        if metric not in declared:
            raise ScenarioError(file, number, f"metric {metric!r} is not declared in "
                                              "the meta line")
        if not _number(t):
            raise ScenarioError(file, number, f"t must be a number, got {t!r}")
        if not _number(value):
            raise ScenarioError(file, number, f"value must be a finite number, "
                                              f"got {value!r}")
        target = per_member[item["module"]] if members else points
        target[(version, metric)].append((float(t), float(value)))
        count += 1
    plan = meta["plan"]
    return Scenario(
        name=meta["scenario"], module=meta["module"], step_seconds=float(meta["step_seconds"]),
        baseline_from=float(meta["baseline"]["from"]), baseline_to=float(meta["baseline"]["to"]),
        stages=tuple(float(s) for s in plan["stages"]),
        stage_seconds=float(plan["stage_seconds"]), end=float(meta["end"]),
        metrics={k: Direction(v) for k, v in meta["metrics"].items()},
        store=SeriesStore({key: Series.of(p) for key, p in points.items()}), samples=count,
        members={m: SeriesStore({key: Series.of(p) for key, p in got.items()})
                 for m, got in per_member.items()})


_TOO_DEEP = "invalid JSON: nested too deep (a scenario line is one flat object)"


def too_many_ticks(end: float, step: float) -> str | None:
    """Why a replay from 0 to ``end`` every ``step`` seconds is refused, or None."""
    try:
        most = limits.REPLAY_TICKS.value()
    except limits.LimitValueError as err:
        return str(err)
    ticks = end / step
    if ticks <= most:
        return None
    return limits.REPLAY_TICKS.refusal(f"end {end:g} / step_seconds {step:g} makes "
                                       f"{ticks:.3g} ticks, more than", most)


def _meta(file: str, line: str, replay: bool = True) -> dict[str, Any]:
    try:
        meta = json.loads(line)
    except ValueError as err:
        raise ScenarioError(file, 1, f"invalid JSON in meta line: {err}") from err
    except RecursionError:
        raise ScenarioError(file, 1, _TOO_DEEP) from None
    if not isinstance(meta, dict) or meta.get("kind") != "meta":
        raise ScenarioError(file, 1, 'the first line must be the meta object ({"kind": "meta"})')

    def need(cond: bool, message: str) -> None:
        if not cond:
            raise ScenarioError(file, 1, f"meta: {message}")

    need(isinstance(meta.get("scenario"), str) and bool(meta["scenario"]),
         "scenario must be a non-empty string")
    need(isinstance(meta.get("module"), str) and bool(meta["module"]),
         "module must be a non-empty string")
    need(_number(meta.get("step_seconds")) and meta["step_seconds"] > 0,
         "step_seconds must be a positive number")
    base = meta.get("baseline")
    need(isinstance(base, dict) and _number(base.get("from")) and _number(base.get("to"))
         and base["from"] < base["to"], "baseline must be {from, to} with from < to")
    plan = meta.get("plan")
    if not isinstance(plan, dict):
        raise ScenarioError(file, 1, "meta: plan must be an object with stages and stage_seconds")
    stages = plan.get("stages")
    if not isinstance(stages, list) or not stages or not all(
            _number(s) and 0 < s <= 100 for s in stages):
        raise ScenarioError(file, 1, "meta: plan.stages must be a list of percentages in (0, 100]")
    need(all(b > a for a, b in itertools.pairwise(stages)),
         "plan.stages must increase")
    need(_number(plan.get("stage_seconds")) and plan["stage_seconds"] > 0,
         "plan.stage_seconds must be a positive number")
    need(_number(meta.get("end")) and meta["end"] > 0, "end must be a positive number")
    problem = too_many_ticks(float(meta["end"]), float(meta["step_seconds"])) if replay \
        else None
    if problem:
        raise ScenarioError(file, 1, f"meta: {problem}")
    members = meta.get("members", [])
    need(isinstance(members, list) and all(isinstance(m, str) and m for m in members)
         and len(set(members)) == len(members),
         "members must be a list of distinct module names (a group recording)")
    metrics = meta.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise ScenarioError(file, 1, "meta: metrics must map names to directions")
    directions = {d.value for d in Direction}
    for name, direction in metrics.items():
        need(direction in directions, f"metric {name!r}: direction must be one of "
                                      f"{', '.join(sorted(directions))}")
    return meta
