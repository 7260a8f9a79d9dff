"""``GET /api/modules/{module}/live``'s body: each rule's observed value against its limit at
the last evaluation, and per metric V1 against V2 over the current stage (the web view's
table and charts).

From the daemon's :class:`~watchdog.api.history.TickHistory` when the API runs inside
the daemon; completed (before its first tick there, or without it) from the evidence of
the decisions journaled in the current stage, which holds the same numbers for the ticks
that decided something.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from watchdog.api.history import Point, RuleNow, Ticks, comparison, finite
from watchdog.journal.store import Journal
from watchdog.model import RuleResult, unsettled_state
from watchdog.telemetry.hooks import rule_numbers

Origin = Literal["daemon", "journal", "none"]


class RuleRow(BaseModel):
    rule: str
    metric: str
    state: str = Field(description="ok, inconclusive, pending or firing (from the daemon); "
                                   "ok, inconclusive or breached (from the journal)")
    observed: float | None = Field(description="What the rule compared: V2's aggregate, "
                                               "growth per hour, or counter increase")
    limit: float | None = Field(description="The limit it compared that value with")
    summary: str


class SeriesPoint(BaseModel):
    t: float = Field(description="Time of the evaluation (unix seconds; replay seconds "
                                 "under a replay clock)")
    v1: float = Field(description="V1's value the rule compared with (see reference)")
    v2: float = Field(description="V2's aggregate over the rule's window")
    limit: float | None


class MetricSeries(BaseModel):
    metric: str
    rule: str = Field(description="The rule whose numbers are charted (the metric's first "
                                  "rule that compares V2 with V1)")
    reference: str = Field(description="What v1 is: 'live V1' (its aggregate over the "
                                       "same window) or 'V1 baseline' (the stored level)")
    points: list[SeriesPoint] = Field(description="Oldest first, over the current stage")


class ModuleLive(BaseModel):
    """The numbers behind a module's verdict: rules at the last evaluation, and V1 against
    V2 per metric over the current stage."""

    module: str
    stage: int | None = Field(description="Current stage, 1-based")
    stage_started_at: float | None
    evaluated_at: float | None = Field(description="When the rules below were evaluated")
    origin: Origin = Field(description="daemon: every tick since the stage began (or the "
                                       "daemon started); journal: only ticks that "
                                       "journaled a decision; none: nothing yet")
    rules: list[RuleRow]
    metrics: list[MetricSeries]


def _journal_points(journal: Journal, module: str, since: float
                    ) -> list[tuple[float, list[dict[str, Any]]]]:
    """(time, evidence) of each decision with evidence in the stage, oldest first."""
    found = []
    for jd in journal.decisions(module=module, since=since, limit=1000):
        evidence = [dict(e) for e in jd.decision.evidence if isinstance(e, dict)]
        if evidence:
            found.append((jd.decision.at, evidence))
    return found


def _journal_rule(e: dict[str, Any]) -> RuleNow:
    breached = e.get("breached")
    result = RuleResult(str(e.get("rule", "?")), str(e.get("metric", "?")),
                        breached if isinstance(breached, bool) else None,
                        str(e.get("summary", "")), e)
    observed, limit = rule_numbers(result)
    state = unsettled_state(e.get("outcome")) if result.breached is None else \
        "breached" if result.breached else "ok"
    return RuleNow(result.rule, result.metric, state, finite(observed), finite(limit),
                   result.summary)


def module_live(journal: Journal, module: str, ticks: Ticks | None) -> ModuleLive:
    cp = journal.checkpoint(module)
    if cp is None:
        return ModuleLive(module=module, stage=None, stage_started_at=None,
                          evaluated_at=None, origin="none", rules=[], metrics=[])
    if ticks is not None and (ticks.stage, ticks.stage_started_at) != (
            cp.stage, cp.stage_started_at):
        ticks = None  # from another stage: the journal has moved on (a manual action)
    decided = _journal_points(journal, module, cp.stage_started_at)
    first_tick = min((p[2][0].t for p in (ticks.metrics.values() if ticks else ())
                      if p[2]), default=float("inf"))
    series: dict[str, tuple[str, str, list[Point]]] = {}
    for at, evidence in decided:
        if at >= first_tick:
            continue
        for e in evidence:
            found = comparison(e)
            metric = str(e.get("metric", "?"))
            if found is None or (metric in series and series[metric][2][-1].t == at):
                continue
            v1, v2, limit, what = found
            series.setdefault(metric, (str(e.get("rule", "?")), what, []))[2].append(
                Point(at, v1, v2, limit))
    for metric, (rule, what, points) in (ticks.metrics.items() if ticks else ()):
        series.setdefault(metric, (rule, what, []))[2].extend(points)
    if ticks is not None:
        origin: Origin = "daemon"
        rules, evaluated = list(ticks.rules), ticks.evaluated_at
    elif decided:
        origin = "journal"
        rules, evaluated = [_journal_rule(e) for e in decided[-1][1]], decided[-1][0]
    else:
        origin, rules, evaluated = "none", [], None
    return ModuleLive(
        module=module, stage=cp.stage + 1, stage_started_at=cp.stage_started_at,
        evaluated_at=evaluated, origin=origin,
        rules=[RuleRow(rule=r.rule, metric=r.metric, state=r.state, observed=r.observed,
                       limit=r.limit, summary=r.summary) for r in rules],
        metrics=[MetricSeries(metric=m, rule=rule, reference=what,
                              points=[SeriesPoint(t=p.t, v1=p.v1, v2=p.v2, limit=p.limit)
                                      for p in points])
                 for m, (rule, what, points) in sorted(series.items())])
