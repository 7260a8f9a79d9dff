"""One evaluation of one module: fetch, judge, decide, journal, act. The daemon's tick.

The backtest, the daemon and the tests all call :meth:`Engine.tick`; only the clock, the
source and the actuator differ. Safety asymmetry (see DESIGN.md):

* a decision that adds traffic is journaled first; if the journal fails it is not acted
  on and the checkpoint does not move, so the next tick decides again;
* a rollback is acted on even when the journal fails; the record is kept in memory and
  written again on later ticks until it lands. So is every state change that adds no
  traffic (alert states, failure counts, holds), so a regression still reaches its
  rollback while the journal is down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from watchdog.baseline import Baseline
from watchdog.config.loader import RuleSet
from watchdog.config.schema import Module, Plan
from watchdog.errors import JournalError, SourceError
from watchdog.journal.store import Journal
from watchdog.judge.rules import EvalContext
from watchdog.judge.series import SeriesStore
from watchdog.judge.verdict import judge
from watchdog.model import Action, Decision, Verdict
from watchdog.rollout import machine
from watchdog.rollout.state import Checkpoint
from watchdog.sources import Source

log = logging.getLogger(__name__)

Actuate = Callable[[Decision], None]
NOISE_WINDOW = 300.0
DRIFT_LOOKBACK = 1800.0


@dataclass(frozen=True)
class TickResult:
    module: str
    verdict: Verdict | None
    decisions: tuple[Decision, ...]
    checkpoint: Checkpoint


@dataclass
class Engine:
    rules: RuleSet
    journal: Journal
    source: Source
    actuate: Actuate | None = None
    plans: dict[str, Plan] = field(default_factory=dict)
    _checkpoints: dict[str, Checkpoint] = field(default_factory=dict)
    _baselines: dict[str, tuple[tuple[object, ...], dict[str, Baseline]]] = field(
        default_factory=dict)
    _unjournaled: list[tuple[Decision, Checkpoint]] = field(default_factory=list)

    def module(self, name: str) -> Module:
        return self.rules.for_module(name)

    def plan(self, name: str) -> Plan:
        return self.plans.get(name) or self.module(name).plan

    def checkpoint(self, name: str) -> Checkpoint | None:
        cp = self._checkpoints.get(name)
        if cp is None:
            cp = self.journal.checkpoint(name)
            if cp is not None:
                self._checkpoints[name] = cp
        return cp

    def start(self, name: str, now: float, actor: str = "watchdog") -> TickResult:
        cp, decision = machine.start(name, self.plan(name), now, actor)
        self._commit(name, [decision], cp, now, None, {})
        return TickResult(name, None, (decision,), self._checkpoints[name])

    def lookback(self, module: Module) -> float:
        longest = max((r.window for r in module.rules), default=60.0)
        warm = max((module.warmup_of(m) for m in module.metrics), default=0.0)
        return max(longest, NOISE_WINDOW) + DRIFT_LOOKBACK + warm

    def baselines(self, name: str, now: float) -> dict[str, Baseline]:
        key = self.journal.baseline_fingerprint(name, now)
        cached = self._baselines.get(name)
        if cached is None or cached[0] != key:
            self._baselines[name] = (key, self.journal.active_baselines(name, now))
        return self._baselines[name][1]

    def tick(self, name: str, now: float, store: SeriesStore | None = None) -> TickResult:
        self._retry_journal(now)
        cp = self.checkpoint(name)
        if cp is None:
            return self.start(name, now)
        module = self.module(name)
        if store is None:
            try:
                store = self.source.fetch(module, now - self.lookback(module), now)
            except SourceError as err:
                log.warning("module %s: source failed: %s", name, err)
                store = SeriesStore()
        ctx = EvalContext(module=module, now=now, started_at=cp.started_at, series=store,
                          baselines=self.baselines(name, now), noise_window=NOISE_WINDOW,
                          drift_lookback=DRIFT_LOOKBACK)
        verdict, states = judge(ctx, cp.alerts)
        kill = bool(self.journal.setting("kill_switch", False))
        new_cp, decisions = machine.on_verdict(replace(cp, alerts=states), verdict,
                                               self.plan(name), now, kill_switch=kill)
        summaries = {r.rule: r.summary for r in verdict.results}
        self._commit(name, decisions, new_cp, now, cp, summaries)
        return TickResult(name, verdict, tuple(decisions), self._checkpoints[name])

    def _commit(self, name: str, decisions: list[Decision], cp: Checkpoint, now: float,
                before: Checkpoint | None, summaries: dict[str, str]) -> None:
        try:
            ids = self.journal.record(decisions, cp, now, summaries,
                                      before.alerts if before is not None else {})
        except JournalError as err:
            if any(d.action in (Action.ADVANCE, Action.PROMOTE) for d in decisions):
                log.error("module %s: journal write failed, decision not acted on: %s",
                          name, err)
                raise
            # Nothing here adds traffic: keep the new state (alert states, failure counts)
            # in memory, so that a regression still reaches its rollback while the journal
            # is down, and keep the records to write once it is back.
            self._checkpoints[name] = cp
            self._unjournaled.extend((d, cp) for d in decisions)
            rollbacks = [d for d in decisions if d.action is Action.ROLLBACK]
            if not rollbacks:
                log.error("module %s: journal write failed; state kept in memory: %s",
                          name, err)
                raise
            log.error("module %s: journal write failed; rolling back anyway and keeping the "
                      "record to write later: %s", name, err)
            for d in rollbacks:
                self._act(d, None, now)
            return
        self._checkpoints[name] = cp
        for decision, decision_id in zip(decisions, ids, strict=True):
            self._act(decision, decision_id, now)

    def _act(self, decision: Decision, decision_id: int | None, now: float) -> None:
        if self.actuate is None or decision.action is Action.HOLD:
            if decision_id is not None:
                self.journal.mark_applied(decision_id, now)
            return
        self.actuate(decision)
        if decision_id is not None:
            self.journal.mark_applied(decision_id, now)

    def _retry_journal(self, now: float) -> None:
        while self._unjournaled:
            decision, cp = self._unjournaled[0]
            try:
                (decision_id,) = self.journal.record([decision], cp, now)
                self.journal.mark_applied(decision_id, now)
            except JournalError:
                return
            self._unjournaled.pop(0)

