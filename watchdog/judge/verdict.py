"""Combine rule results and alert states into one verdict per module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from watchdog.config.schema import Module, Rule
from watchdog.config.stagerules import rules_at
from watchdog.judge import levelhold
from watchdog.judge.alerts import INACTIVE, AlertPhase, AlertState, carried, step
from watchdog.judge.domain import admit, annotate
from watchdog.judge.rules import EvalContext, evaluate
from watchdog.model import RuleAction, RuleOutcome, RuleResult, Verdict, VerdictKind

JITTER = 0.1  # of the interval: how far off the grid a live tick may wake (see alerts.py)
CARRY_INTERVALS = 3  # a rollback rule's last breach counts `for` + this many intervals

# What each outcome is to the rule's alert (alerts.py): a breach, a clear evaluation, or
# no evidence (None: a pending alert stays as it was). A V2 that is warming is settling,
# not breaching lastingly, and references that disagree (disagree.py) are evidence that
# V2 is not worse than both: each clears a pending alert. Missing data leaves it.
ALERT_SEES: Mapping[RuleOutcome, bool | None] = {
    RuleOutcome.BREACHED: True, RuleOutcome.CLEAR: False, RuleOutcome.WARMING: False,
    RuleOutcome.DISPUTED: False, RuleOutcome.MISSING: None, RuleOutcome.INAPPLICABLE: None,
    RuleOutcome.UNCONFIRMED: False}
# The outcomes that make a hold or rollback rule's verdict inconclusive (hold the rollout):
# missing data, disputed references and a breach the always-valid test has not confirmed
# (which, like disputed, clears a pending alert: no stale breach is carried on it).
# Warming and inapplicable rules hold nothing.
UNSURE = frozenset({RuleOutcome.MISSING, RuleOutcome.DISPUTED,
                    RuleOutcome.UNCONFIRMED})


def judge(ctx: EvalContext, states: Mapping[str, AlertState]
          ) -> tuple[Verdict, dict[str, AlertState]]:
    """Evaluate every rule of the module, step its alert state, and decide the verdict.

    critical     a rule with action rollback is firing
    warning      a rule with action hold is firing
    inconclusive a rule that could hold or roll back lacks the evidence to say (its outcome
                 is missing or disputed; warming and inapplicable ones do not count)
    healthy      otherwise (notify-only and dry-run rules never change the verdict)

    A rollback rule whose data goes missing while its alert is pending keeps counting its
    ``for`` on its last breach for up to ``for`` + CARRY_INTERVALS intervals after it
    (see alerts.py): a regression that takes V2's metrics down with it is rolled back.

    Where V1's level has episodes, a relative or growth rollback rule's ``for`` is at
    least the level-episode hold (levelhold.py), clear evaluations shortly after a
    breach are bridged, missing V2 data carries the breach for the hold, and the reason
    of the rollback says so.
    """
    module: Module = ctx.module
    # samples outside their metric's domain are missing data (domain.py), said per rule
    store, rejected = admit(ctx.series, module)
    ctx = replace(ctx, series=store) if rejected else ctx
    results: list[RuleResult] = []
    new_states: dict[str, AlertState] = {}
    critical: list[str] = []
    warning: list[str] = []
    unsure: list[str] = []
    firing: list[str] = []
    # rules by stage: a rule limited to other stages is not judged, an override applies
    for rule in rules_at(module.rules, ctx.traffic_percent):
        result = annotate(evaluate(rule, ctx), rule, ctx.now, module.interval, rejected)
        results.append(result)
        breached = ALERT_SEES[result.outcome]
        jitter = JITTER * module.interval
        before = states.get(rule.name, INACTIVE)
        hold_for, bridge = rule.for_, 0.0
        # V1's level has episodes: a breach must outlast one (levelhold.py); measured only
        # where it can matter (a breach, or an alert pending)
        held = levelhold.hold(rule, ctx) if breached or before.phase is AlertPhase.PENDING \
            else levelhold.NONE
        holding = held.seconds > rule.for_
        if holding:
            hold_for, bridge = held.seconds, held.bridge
            result.evidence.update(level_hold=held.seconds, v1_episode=held.episode)
        # V2's data missing carries a held breach for the hold; V1 gone (inapplicable) is
        # no sign of V2 and carries it no longer than the rule's own `for`
        carry = carry_for(rule, module.interval,
                          hold_for if result.outcome is RuleOutcome.MISSING else None)
        state = step(before, breached, ctx.now, hold_for, rule.keep_firing_for, jitter, carry,
                     bridge)
        if breached:
            state = replace(state, breach_summary=result.summary)
        new_states[rule.name] = state
        said = f"{rule.name}: {result.summary}" if breached is not None else _missing(
            rule, result, state, ctx.now, carried(state, ctx.now, carry, jitter), hold_for)
        if state.phase is AlertPhase.FIRING:
            firing.append(rule.name)
        if rule.dry_run or rule.action is RuleAction.NOTIFY:
            continue
        if state.phase is AlertPhase.FIRING:
            target = critical if rule.action is RuleAction.ROLLBACK else warning
            if holding and before.phase is AlertPhase.PENDING:
                said += (f" (held {_secs(held.seconds)}s first: V1's own level strayed "
                         f"for up to {_secs(held.episode)}s)")
            target.append(said)
        elif result.outcome in UNSURE:
            unsure.append(said)
    if critical:
        kind, reasons = VerdictKind.CRITICAL, critical
    elif warning:
        kind, reasons = VerdictKind.WARNING, warning
    elif unsure:
        kind, reasons = VerdictKind.INCONCLUSIVE, unsure
    else:
        kind, reasons = VerdictKind.HEALTHY, []
    verdict = Verdict(module.name, ctx.now, kind, tuple(results), tuple(firing), tuple(reasons),
                      rejected)
    return verdict, new_states


def carry_for(rule: Rule, interval: float, hold_for: float | None = None) -> float:
    """How long after its last breach a rule's missing data still counts as that breach:
    its ``for`` (or the longer hold in force, levelhold.py) and CARRY_INTERVALS more."""
    if rule.action is not RuleAction.ROLLBACK:
        return 0.0
    return (rule.for_ if hold_for is None else hold_for) + CARRY_INTERVALS * interval


def _missing(rule: Rule, result: RuleResult, state: AlertState, now: float,
             carrying: bool, hold_for: float) -> str:
    """The reason of a rule without data: plain about the breach it last saw, if any."""
    if state.phase is AlertPhase.INACTIVE or state.last_breach_at is None:
        return f"{rule.name}: {result.summary}"
    last = state.breach_summary or "(no summary kept)"
    if state.keep_firing_since is not None:  # its last evidence was clear
        return (f"{rule.name}: data missing ({result.summary}); clear when last seen, kept "
                f"firing for its keep_firing_for {_secs(rule.keep_firing_for)}s; last "
                f"breached {_secs(now - state.last_breach_at)}s ago: {last}")
    said = (f"{rule.name}: data missing for {_secs(now - state.last_breach_at)}s "
            f"({result.summary}); last seen breached: {last}")
    if state.phase is AlertPhase.PENDING:
        active = state.active_at if state.active_at is not None else now
        said += f"; pending for {_secs(now - active)}s of its {_secs(hold_for)}s"
        said += (", counted on that evidence" if carrying else
                 ", that evidence is too old to act on: held until data returns")
    return said


def _secs(seconds: float) -> str:
    return f"{round(seconds, 1):g}"
