"""One evaluation of one module: fetch, judge, decide, journal, act. The daemon's tick.

The backtest, the daemon and the tests all call :meth:`Engine.tick`; only the clock, the
source and the actuation differ. Safety asymmetry (see DESIGN.md):

* a decision that adds traffic is journaled first; if the journal fails it is not acted
  on and the checkpoint does not move, so the next tick decides again;
* a rollback is acted on even when the journal fails; the record is kept in memory and
  written again on later ticks until it lands. So is every state change that adds no
  traffic (alert states, failure counts, holds), so a regression still reaches its
  rollback while the journal is down.

State is read from the journal at every tick: an operator's action taken from another
process (the CLI) is seen by the next tick. A tick writes its result only if the
checkpoint is still the one it started from (compare-and-swap under the state lock of
:mod:`watchdog.daemon.statelock`); otherwise its decisions are dropped and the next tick
decides again, except a rollback, which is re-derived from the new checkpoint when that
one still allows it.

Acting: with an ``outbox`` (the daemon) the tick only journals and wakes the outbox
(:meth:`Applier.wake`): evaluation never waits on an actuator, the outbox's own threads
apply, read back and mark applied. A rollback the journal could not take is handed over
with :meth:`Applier.apply_unjournaled`. With a bare ``actuate`` callable (backtests,
tests) each decision is passed to it in the tick.

Leases (:mod:`watchdog.daemon.leases`): with ``fence`` set, every write carries the
module's lease and fails with FencingError once another instance took it over. The tick's
decisions are then dropped, except a rollback: applied anyway (the safe direction) and
handed to the new guard as a claim (:mod:`watchdog.daemon.claims`).

The journal's lock: the daemon opens each module's journal with a busy timeout of
:func:`journal_wait` of its interval, so a write blocked by another process fails in time
for the rollback to be handed over within the interval.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from watchdog.baseline import Baseline
from watchdog.checks import CheckRunner
from watchdog.config.loader import RuleSet
from watchdog.config.planparts import Gate
from watchdog.config.schema import GrowthRule, Module, Plan
from watchdog.enginecommit import Journaling
from watchdog.errors import FencingError, IllegalTransition, JournalError, SourceError
from watchdog.journal.base import Journal
from watchdog.journal.records import Lease
from watchdog.judge import gates, growthpersist
from watchdog.judge.rules import EvalContext
from watchdog.judge.series import SeriesStore
from watchdog.judge.verdict import judge
from watchdog.model import Decision, Verdict
from watchdog.rollout import machine
from watchdog.rollout.promotion import CheckResult
from watchdog.rollout.state import ACTIVE, Checkpoint
from watchdog.sources import Source

log = logging.getLogger(__name__)

Actuate = Callable[[Decision], None]
NOISE_WINDOW = 300.0
DRIFT_LOOKBACK = 1800.0


def tick_window(module: Module) -> float:
    """Seconds of samples a tick of ``module`` reads (before its pending gates' windows):
    the longest rule window and the noise window, plus how far back V1's last live level
    is looked for, or a growth rule's persistence horizon if longer; plus the warm-up."""
    longest = max((r.window for r in module.rules), default=60.0)
    warm = max((module.warmup_of(m) for m in module.metrics), default=0.0)
    # a growth rule's envelope test looks back over its persistence horizon
    horizon = max((growthpersist.horizon(r) for r in module.rules
                   if isinstance(r, GrowthRule)), default=0.0)
    return max(max(longest, NOISE_WINDOW) + DRIFT_LOOKBACK, horizon) + warm


def tick_windows(modules: Iterable[Module]) -> dict[str, float]:
    """:func:`tick_window` of each module, by name (what the prometheus source's batching
    report and start-up warning compare with its ``batch_window``)."""
    return {m.name: tick_window(m) for m in modules}


JOURNAL_WAIT_FRACTION = 0.1
JOURNAL_WAIT_CAP = 1.0


def journal_wait(interval: float) -> float:
    """Seconds a tick's journal write may wait for another writer's lock, then fail.

    A tick may wait twice (writing records held in memory, then its own) besides its
    source's deadline (half the interval by default), so 10 % of the interval each keeps
    a tick within its interval while another process holds the journal (at 20 %, ticks
    overran it and the next one, a rollback's, was skipped: bench/rollback_under_faults.py
    journal-locked, +2.4 s over the no-fault median at a 2-s interval); capped at 1 s (a
    healthy writer, the CLI or the API, holds the lock for milliseconds), at least 50 ms.
    """
    return min(JOURNAL_WAIT_CAP, max(0.05, JOURNAL_WAIT_FRACTION * interval))


class Applier(Protocol):
    """Applies journaled decisions in its own threads (the daemon's outbox)."""

    def wake(self) -> None:
        """Decisions were journaled: apply them soon; never blocks."""
        ...

    def apply_unjournaled(self, decision: Decision) -> None:
        """Apply a rollback the journal could not take (held in memory); never blocks."""
        ...

    def journaled(self, module: str) -> None:
        """The records of ``module``'s unjournaled rollback are in the journal now."""
        ...


@dataclass(frozen=True)
class TickResult:
    module: str
    verdict: Verdict | None
    decisions: tuple[Decision, ...]
    checkpoint: Checkpoint


@dataclass
class Engine(Journaling):
    rules: RuleSet
    journal: Journal
    source: Source
    actuate: Actuate | None = None
    plans: dict[str, Plan] = field(default_factory=dict)
    outbox: Applier | None = None
    on_source_error: Callable[[SourceError], None] | None = None
    # the lease a write of this module must carry (None: unfenced), and who to tell when
    # a write was refused because the lease moved (watchdog.daemon.leases)
    fence: Callable[[str], Lease | None] | None = None
    on_fenced: Callable[[str, FencingError], None] | None = None
    # stage checks (issue 20): run in their own threads; a backtest runs them inline
    checks: CheckRunner = field(default_factory=CheckRunner)
    # a backtest's --approve: every step that needs a person's approval has it
    pre_approved: bool = False
    # checkpoints of rollbacks the journal has not taken yet (it was failing)
    _memory: dict[str, Checkpoint] = field(default_factory=dict)
    _baselines: dict[str, tuple[tuple[object, ...], dict[str, Baseline]]] = field(
        default_factory=dict)
    # per module, what the judge keeps across ticks (context.carried: keyed by the data)
    _carry: dict[str, dict[tuple[object, ...], object]] = field(default_factory=dict)
    # (decision, checkpoint, applied) per rollback acted on without a journal record
    _unjournaled: list[tuple[Decision, Checkpoint, bool]] = field(default_factory=list)
    # per module, the rule set it was looked up in and its rules there (a module known
    # only through "*" is a copy made per lookup: once per rule set, not once per tick)
    _modules: dict[str, tuple[RuleSet, Module]] = field(default_factory=dict)
    # per module, the module object and its tick_window (rules are immutable)
    _lookbacks: dict[str, tuple[Module, float]] = field(default_factory=dict)

    def module(self, name: str) -> Module:
        found = self._modules.get(name)
        if found is None or found[0] is not self.rules:
            found = self._modules[name] = (self.rules, self.rules.for_module(name))
        return found[1]

    def plan(self, name: str) -> Plan:
        return self.plans.get(name) or self.module(name).plan

    def journal_refused(self, name: str) -> bool:
        """The journal refused this module's last write (locked, full): its state is held
        in memory until the journal takes writes again."""
        return name in self._memory

    def checkpoint(self, name: str) -> Checkpoint | None:
        """The module's checkpoint as the journal has it now (or the one held in memory
        while the journal cannot take a rollback)."""
        if name in self._memory:
            return self._memory[name]
        return self._read(name)

    def kill_switch(self) -> bool:
        try:
            return bool(self.journal.setting("kill_switch", False))
        except sqlite3.Error as err:
            raise JournalError(f"journal {self.journal.path}: cannot read the kill switch: "
                               f"{err}") from err

    def start(self, name: str, now: float, actor: str = "watchdog") -> TickResult:
        if self.kill_switch():
            raise IllegalTransition(f"cannot start module {name!r}: the kill switch is on")
        cp, decision = machine.start(name, self.plan(name), now, actor)
        done, cp = self._commit(name, [decision], cp, now, None, {})
        return TickResult(name, None, tuple(done), cp)

    def lookback(self, module: Module) -> float:
        found = self._lookbacks.get(module.name)
        if found is None or found[0] is not module:  # once per module object, not per tick
            found = self._lookbacks[module.name] = (module, tick_window(module))
        return found[1]

    def baselines(self, name: str, now: float) -> dict[str, Baseline]:
        key = self.journal.baseline_fingerprint(name, now)
        cached = self._baselines.get(name)
        if cached is None or cached[0] != key:
            self._baselines[name] = (key, self.journal.active_baselines(name, now))
        return self._baselines[name][1]

    def carry(self, name: str) -> dict[tuple[object, ...], object]:
        """What the judge keeps across ``name``'s ticks (context.carried)."""
        return self._carry.setdefault(name, {})

    def tick(self, name: str, now: float, store: SeriesStore | None = None) -> TickResult:
        self._retry_journal(now)
        cp = self.checkpoint(name)
        if cp is None:
            return self.start(name, now)
        module = self.module(name)
        plan = self.plan(name)
        pending_gates = self._pending_gates(cp, plan)
        if store is None:
            store = self.fetch(name, now, cp)
        ctx = EvalContext(module=module, now=now, started_at=cp.started_at, series=store,
                          baselines=self.baselines(name, now), noise_window=NOISE_WINDOW,
                          drift_lookback=DRIFT_LOOKBACK, traffic_percent=cp.traffic_percent,
                          stage_started_at=cp.stage_started_at, rollout_plan=plan,
                          carry=self.carry(name))
        verdict, states = judge(ctx, cp.alerts)
        directions = {m: spec.direction for m, spec in module.metrics.items()}
        gate_results = gates.evaluate_all(pending_gates, directions, store, now,
                                          module.interval)
        new_cp, decisions = machine.on_verdict(replace(cp, alerts=states), verdict,
                                               plan, now, kill_switch=self.kill_switch(),
                                               max_gap=machine.gap_limit(module.interval),
                                               gates=gate_results,
                                               check=self._check(cp, plan, now),
                                               pre_approved=self.pre_approved)
        summaries = {r.rule: r.summary for r in verdict.results}
        done, new_cp = self._commit(name, decisions, new_cp, now, cp, summaries)
        return TickResult(name, verdict, tuple(done), new_cp)

    @staticmethod
    def _pending_gates(cp: Checkpoint, plan: Plan) -> list[Gate]:
        """Promotion gates before the next stage (issue 20): judged on their own windows."""
        return plan.gates_before(cp.stage + 1) if cp.phase in ACTIVE else []

    def fetch(self, name: str, now: float, cp: Checkpoint) -> SeriesStore:
        """What a tick of ``name`` at ``now`` judges: the source's samples over the rules'
        lookback (and the pending gates' windows); empty when the source failed. The I/O
        part of a tick: the daemon runs it before taking a judging slot."""
        module = self.module(name)
        back = max([self.lookback(module),
                    *(g.window for g in self._pending_gates(cp, self.plan(name)))])
        try:
            return self.source.fetch(module, now - back, now)
        except SourceError as err:
            log.warning("module %s: source failed: %s", name, err)
            if self.on_source_error is not None:
                self.on_source_error(err)
            return SeriesStore()

    def _check(self, cp: Checkpoint, plan: Plan, now: float) -> CheckResult | None:
        """The next stage's check, once the rollout is ready for it (healthy for the
        hold): started then, read at later ticks."""
        nxt = cp.stage + 1
        if cp.phase not in ACTIVE or nxt >= len(plan.stages) or cp.healthy_since is None:
            return None
        spec = plan.stages[nxt].check
        if spec is None or cp.healthy_banked + now - cp.healthy_since < plan.hold_of(cp.stage):
            return None
        return self.checks.result(cp.module, nxt, plan.stages[nxt].traffic,
                                  cp.stage_started_at, spec, now)

    # journal, then act: watchdog/enginecommit.py (the Journaling mixin) -----------------
