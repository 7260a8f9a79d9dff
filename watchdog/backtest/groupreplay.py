"""Replaying a group recording (docs/scenario-format-groups.md): the group of the meta
line's ``module`` (a group of the rules), each member judged on its own samples, through
the same :class:`GroupEngine` the daemon would run, on a simulated clock.

``kill_at`` (seconds after the start, optional) turns the group's kill switch on at that
time, as an operator would (the demo's ``--plan group`` shows it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from watchdog import baseline as baselines
from watchdog.backtest.replay import BacktestResult, require_approvals, scenario_plan
from watchdog.backtest.scenario import Scenario, too_many_ticks
from watchdog.checks import CheckRunner
from watchdog.config.loader import RuleSet
from watchdog.config.schema import Module
from watchdog.engine import Engine, TickResult
from watchdog.errors import ScenarioError, UnknownModule
from watchdog.groups.engine import GroupEngine
from watchdog.journal.store import Journal
from watchdog.judge.series import SeriesStore
from watchdog.model import Action, Version
from watchdog.rollout.state import Phase


class MemberSource:
    """Each member's samples of a group recording."""

    name = "group-recording"

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        return self.scenario.members.get(module.name, SeriesStore()).between(start, end)


def run_group(scenario: Scenario, rules: RuleSet, journal_path: str | Path = ":memory:",
              approve: bool = False, kill_at: float | None = None,
              on_tick: Callable[[TickResult], None] | None = None) -> BacktestResult:
    problem = too_many_ticks(scenario.end, scenario.step_seconds)
    if problem:
        raise ScenarioError(scenario.name, 0, problem)
    group = rules.groups.get(scenario.module)
    if group is None:
        known = ", ".join(sorted(rules.groups)) or "none"
        raise UnknownModule(f"the recording is of group {scenario.module!r}, which the "
                            f"rules do not declare (groups: {known})")
    missing = [m for m in group.names if m not in scenario.members]
    if missing:
        raise ScenarioError(scenario.name, 1, f"meta: members lacks {', '.join(missing)} "
                                              f"of group {group.name}")
    plan = scenario_plan(scenario, group.plan)
    require_approvals(plan, rules, group.name, approve)
    group = group.model_copy(update={"plan": plan})
    modules = dict(rules.modules)
    for name in group.names:
        module = rules.for_module(name)
        if scenario.step_seconds > module.interval:
            modules[name] = module.model_copy(update={"interval": scenario.step_seconds})
    rules = RuleSet(modules=modules, files=rules.files, origins=rules.origins,
                    groups=rules.groups)
    journal = Journal(journal_path)
    try:
        _baselines(journal, scenario, rules, group.names)
        engine = Engine(rules, journal, MemberSource(scenario), plans={group.name: plan},
                        checks=CheckRunner(background=False), pre_approved=approve)
        runner = GroupEngine(engine, group)
        step = scenario.step_seconds
        k = 0
        while k * step <= scenario.end - step + 1e-9:
            now = k * step
            if kill_at is not None and now >= kill_at and not runner.kill_switch():
                from watchdog.control import Control

                Control(journal, rules).set_group_kill_switch(
                    group.name, True, now, "demo", "kill switch for the group")
            cp = engine.checkpoint(group.name)
            if cp is not None and cp.phase in (Phase.ROLLED_BACK, Phase.PROMOTED,
                                               Phase.ABORTED):
                break
            result, _ = runner.tick(now)
            if on_tick is not None:
                on_tick(result)
            k += 1
        decisions = tuple(journal.decisions())
    finally:
        journal.close()
    ours = [d for d in decisions if d.decision.module == group.name]
    rollback = next((d for d in ours if d.decision.action is Action.ROLLBACK), None)
    last = ours[-1].decision.action if ours else None
    outcome = "rolled_back" if rollback is not None else (
        "promoted" if last is Action.PROMOTE else "in_progress")
    return BacktestResult(scenario, outcome,
                          None if rollback is None else rollback.decision.at,
                          decisions, True)


def _baselines(journal: Journal, scenario: Scenario, rules: RuleSet,
               names: list[str]) -> None:
    for name in names:
        store = scenario.members[name]
        for metric in rules.for_module(name).metrics:
            series = store.get(Version.V1, metric)
            points = zip(series.t.tolist(), series.v.tolist(), strict=True)
            try:
                b = baselines.capture(name, metric, points, scenario.baseline_from,
                                      scenario.baseline_to, f"scenario:{scenario.name}",
                                      captured_at=scenario.baseline_to)
            except baselines.EmptyBaseline:
                continue
            journal.save_baseline(b)
