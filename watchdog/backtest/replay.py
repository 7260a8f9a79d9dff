"""Replay a recorded rollout through the engine on a simulated clock.

Same code path as the daemon: the baseline is captured into a journal from the scenario's
baseline window, then :meth:`Engine.tick` runs every ``step_seconds`` from the rollout
start. A journal that already holds a checkpoint resumes after its last tick.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchdog import baseline as baselines
from watchdog.backtest.scenario import Scenario, too_many_ticks
from watchdog.checks import CheckRunner
from watchdog.config.loader import RuleSet
from watchdog.config.schema import Plan, Stage
from watchdog.engine import Engine, TickResult
from watchdog.errors import ConfigError, Issue, ScenarioError
from watchdog.journal.store import Journal, JournaledDecision
from watchdog.model import Action, Version
from watchdog.rollout.state import Phase
from watchdog.sources.file import FileSource


@dataclass(frozen=True)
class BacktestResult:
    scenario: Scenario
    outcome: str
    rollback_at: float | None
    decisions: tuple[JournaledDecision, ...]
    finished: bool
    not_judged: tuple[str, ...] = ()  # rules on a metric the recording does not have

    def to_json(self) -> dict[str, Any]:
        out = []
        for jd in self.decisions:
            d = jd.decision
            item: dict[str, Any] = {"t": _num(d.at), "action": d.action.value,
                                    "traffic_percent": _num(d.traffic_percent),
                                    "reasons": list(d.reasons)}
            if d.action is Action.ROLLBACK:
                item["evidence"] = [e for e in d.evidence if e.get("breached")]
            if self.scenario.members:  # a group recording: the group's or a member's
                item["module"] = d.module
            out.append(item)
        found: dict[str, Any] = {
            "scenario": self.scenario.name, "outcome": self.outcome,
            "rollback_at": None if self.rollback_at is None else _num(self.rollback_at),
            "decisions": out}
        if self.not_judged:
            found["not_judged"] = list(self.not_judged)
        return found


def scenario_plan(scenario: Scenario, template: Plan) -> Plan:
    """The scenario's stages and hold, with the approvals and checks the rules' plan puts
    on a stage of the same percentage (issue 20)."""
    def stage(traffic: float) -> Stage:
        index = template.index_of(traffic)
        if index is None:
            # a recording's stages are percentages in (0, 100] (0.5 is 0.5 %), where a
            # rule file's plain number below 1 is refused as a likely fraction
            return Stage(traffic=f"{traffic!r}%")
        return template.stages[index].model_copy(update={"hold": None})
    return template.model_copy(update={
        "stages": [stage(s) for s in scenario.stages],
        "hold": scenario.stage_seconds,
    })


def require_approvals(plan: Plan, rules: RuleSet, module: str, approve: bool) -> None:
    """A replay has no person to approve a step: ``--approve`` says to approve each as
    soon as it is ready; without it a plan with an approval stage is bad input."""
    asking = [s for s in plan.stages if s.approval]
    if not asking or approve:
        return
    file, line = rules.origins.get(module) or (
        rules.origins.get("*") or (", ".join(rules.files) or "<rules>", 0))
    stages = ", ".join(f"{s.traffic:g}%" for s in asking)
    raise ConfigError([Issue(file, line, f"module {module!r}: the plan's stage(s) {stages} "
                                         f"need a person's approval, and a backtest has no "
                                         f"one to ask: replay with --approve (each such "
                                         f"step approved as soon as it is ready)")])


def rules_at_step(rules: RuleSet, scenario: Scenario) -> RuleSet:
    """The rules as the scenario can be judged by them: its module evaluated every
    ``step_seconds`` where its samples are sparser than the module's interval (a
    recording scraped every 30 s is judged every 30 s, and its windows hold
    ``min_samples`` of its samples), and without the rules on metrics the recording
    does not declare (not collected is not missing data: they would hold it forever).
    The rules as given where neither applies."""
    module = rules.for_module(scenario.module)
    skipped = not_judged(rules, scenario)
    kept = [r for r in module.rules if r.name not in skipped]
    update: dict[str, Any] = {}
    if scenario.step_seconds > module.interval:
        update["interval"] = scenario.step_seconds
    if len(kept) < len(module.rules):
        update["rules"] = kept
    if not update:
        return rules
    modules = dict(rules.modules)
    modules[scenario.module] = module.model_copy(update=update)
    return RuleSet(modules=modules, files=rules.files)


def not_judged(rules: RuleSet, scenario: Scenario) -> tuple[str, ...]:
    """The module's rules on a metric the recording does not declare."""
    return tuple(r.name for r in rules.for_module(scenario.module).rules
                 if r.metric not in scenario.metrics)


def capture_baselines(journal: Journal, scenario: Scenario, metrics: list[str]) -> None:
    for metric in metrics:
        series = scenario.store.get(Version.V1, metric)
        points = zip(series.t.tolist(), series.v.tolist(), strict=True)
        try:
            b = baselines.capture(scenario.module, metric, points, scenario.baseline_from,
                                  scenario.baseline_to, f"scenario:{scenario.name}",
                                  captured_at=scenario.baseline_to)
        except baselines.EmptyBaseline:
            continue
        journal.save_baseline(b)


def run(scenario: Scenario, rules: RuleSet, journal_path: str | Path = ":memory:",
        stop_after: float | None = None,
        on_tick: Callable[[TickResult], None] | None = None,
        approve: bool = False) -> BacktestResult:
    problem = too_many_ticks(scenario.end, scenario.step_seconds)
    if problem:  # load_scenario refuses this at file:1; a Scenario built in code too
        raise ScenarioError(scenario.name, 0, problem)
    skipped = not_judged(rules, scenario)
    rules = rules_at_step(rules, scenario)
    module = rules.for_module(scenario.module)
    plan = scenario_plan(scenario, module.plan)
    require_approvals(plan, rules, scenario.module, approve)
    journal = Journal(journal_path)
    try:
        if not journal.baselines(module=scenario.module):
            capture_baselines(journal, scenario,
                              [m for m in module.metrics if m in scenario.metrics])
        engine = Engine(rules, journal, FileSource(scenario=scenario),
                        plans={scenario.module: plan},
                        checks=CheckRunner(background=False), pre_approved=approve)
        cp = engine.checkpoint(scenario.module)
        step = scenario.step_seconds
        k = 0 if cp is None or cp.last_tick_at is None else round(cp.last_tick_at / step) + 1
        finished = True
        while k * step <= scenario.end - step + 1e-9:
            now = k * step
            if stop_after is not None and now > stop_after:
                finished = False
                break
            if cp is not None and cp.phase in (Phase.ROLLED_BACK, Phase.PROMOTED,
                                               Phase.ABORTED):
                break
            result = engine.tick(scenario.module, now)
            cp = result.checkpoint  # as journaled (nothing else writes during a replay)
            if on_tick is not None:
                on_tick(result)
            k += 1
        decisions = tuple(journal.decisions(module=scenario.module))
    finally:
        journal.close()
    rollback = next((d for d in decisions if d.decision.action is Action.ROLLBACK), None)
    cp_phase = decisions[-1].decision.action if decisions else None
    if rollback is not None:
        outcome = "rolled_back"
    elif cp_phase is Action.PROMOTE:
        outcome = "promoted"
    else:
        outcome = "in_progress"
    return BacktestResult(scenario, outcome,
                          None if rollback is None else rollback.decision.at,
                          decisions, finished, skipped)


def _num(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x
