"""What a rule sees when it is evaluated, and the shared ways of saying "can't tell yet"."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from watchdog.baseline import Baseline
from watchdog.config.schema import GrowthRule, Module, Plan, Rule
from watchdog.judge.series import SeriesStore
from watchdog.judge.tuning import tuning
from watchdog.model import RuleOutcome, RuleResult, Version

# Seconds: boundaries are widened by this much so a sample exactly on one counts. It must
# exceed the float spacing of Unix times (2.4e-7 s around 2026): 1e-9 vanished there, so
# the daemon (epoch times) dropped boundary samples a backtest (times from 0) kept.
EPS = 1e-6


@dataclass(frozen=True)
class EvalContext:
    module: Module
    now: float
    started_at: float  # when V2 started serving (the rollout start)
    series: SeriesStore
    baselines: Mapping[str, Baseline]
    noise_window: float = 300.0
    drift_lookback: float = 1800.0
    traffic_percent: float | None = None  # V2's share now, when the caller knows it
    stage_started_at: float | None = None  # when V2's current share began (caller knows)
    # the plan the rollout follows, where it is not the module's own (a backtest replays
    # the recording's stages and holds; a rule test its case's plan)
    rollout_plan: Plan | None = None
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, compare=False, repr=False)
    # kept by the caller across ticks (the engine: one per module), for what depends only on
    # data it is keyed by (see carried); None: nothing outlives the tick
    carry: dict[tuple[Any, ...], Any] | None = field(default=None, compare=False, repr=False)


    @property
    def plan(self) -> Plan:
        """The plan the rollout follows: its stages split the always-valid test's alpha and
        their holds place its start points."""
        return self.rollout_plan if self.rollout_plan is not None else self.module.plan


def carried(ctx: EvalContext, slot: tuple[Any, ...], key: tuple[Any, ...],
            compute: Callable[[], Any]) -> Any:
    """``compute()``, or the value the caller's carry (``ctx.carry``, kept across ticks)
    holds in ``slot`` if it was computed for the same ``key``; without a carry, computed.

    ``key`` must identify everything the value depends on (the data itself, not a time):
    a value is then the same computed or carried, and a restart, which empties the
    carry, changes nothing but the time it takes. A slot holds its last value only (one
    entry per slot: a carry stays as small as the module's metrics)."""
    if ctx.carry is None:
        return compute()
    found = ctx.carry.get(slot)
    if found is not None and found[0] == key:
        return found[1]
    value = compute()
    ctx.carry[slot] = (key, value)
    return value


def step_end(ctx: EvalContext) -> float:
    """The last whole ``v1_step`` (tuning.py) at or before now: what V1's slow properties
    are read as of."""
    step = tuning().v1_step
    return math.floor(ctx.now / step) * step if step > 0 else ctx.now


def fingerprint(*arrays: np.ndarray) -> tuple[int, ...]:
    """A key for the exact contents of ``arrays`` (their lengths and bytes)."""
    return tuple(x for a in arrays for x in (len(a), hash(np.ascontiguousarray(a).tobytes())))


def warm_from(rule: Rule, ctx: EvalContext) -> float:
    return ctx.started_at + ctx.module.warmup_of(rule.metric)


def span(rule: Rule, ctx: EvalContext) -> float:
    """A rule's window, widened to hold ``min_samples`` samples where the samples are
    sparser than that (a module evaluated, or scraped, every 30 s with a 1-minute window
    is judged over 75 s: three samples). A window that holds enough is left as it is."""
    interval = ctx.module.interval
    return max(rule.window, (rule.min_samples - 0.5) * interval)


# the flag each outcome other than breached/clear/missing records in the evidence, for the
# journal's readers (the verdict decides on the outcome, never on these)
FLAGS: dict[RuleOutcome, tuple[str, Any]] = {
    RuleOutcome.WARMING: ("warming", True), RuleOutcome.DISPUTED: ("disagree", 1),
    RuleOutcome.INAPPLICABLE: ("inapplicable", True)}


# the outcomes that are neither breached nor clear
Unsettled = Literal[RuleOutcome.MISSING, RuleOutcome.WARMING, RuleOutcome.DISPUTED,
                    RuleOutcome.UNCONFIRMED,
                    RuleOutcome.INAPPLICABLE]


def inconclusive(rule: Rule, why: str, outcome: Unsettled = RuleOutcome.MISSING,
                 **evidence: Any) -> RuleResult:
    """A result that is neither breached nor clear: ``outcome`` says which (missing data
    by default), ``why`` says why in the summary and in the evidence."""
    flag = dict([FLAGS[outcome]]) if outcome in FLAGS else {}
    return RuleResult(rule.name, rule.metric, outcome, f"{rule.metric}: {why}",
                      {"inconclusive": why, **flag, **evidence})


def young(rule: Rule, ctx: EvalContext, why: str, **evidence: Any) -> RuleResult | None:
    """Inconclusive only because V2 has not run long enough yet for this rule (WARMING).

    That is not missing data: it does not hold the rollout (the stage hold still has to
    pass). Missing data, once there has been time for it, does.
    """
    needed = 4 * rule.envelope if isinstance(rule, GrowthRule) else (
        (rule.min_samples + 1) * ctx.module.interval)
    needed = min(needed, span(rule, ctx))
    if ctx.now - warm_from(rule, ctx) >= needed:
        return None
    return inconclusive(rule, why, RuleOutcome.WARMING, **evidence)


def too_few(rule: Rule, ctx: EvalContext, n: int) -> RuleResult:
    if ctx.now < warm_from(rule, ctx):
        return inconclusive(rule, "V2 is warming up", RuleOutcome.WARMING, n_v2=n)
    why = f"{n} V2 samples in window, need {rule.min_samples}"
    return young(rule, ctx, why, n_v2=n) or inconclusive(rule, why, n_v2=n)


def paired(ctx: EvalContext, metric: str, start: float) -> tuple[np.ndarray, np.ndarray]:
    """V2's and V1's samples at the same instants since ``start``, once per tick."""
    key = ("paired", metric, start)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = ctx.series.get(Version.V2, metric).paired(
            ctx.series.get(Version.V1, metric), start, ctx.now, ctx.module.interval / 2)
    return found
