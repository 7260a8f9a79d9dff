"""The gates a relative rule's breach passes before it counts: the pipeline's last step.

A relative rule (relative.py) is judged in four steps: the **reference** (reference.py:
live V1, the stored baseline, or the baseline rebased), V2's **noise** (noise.py,
wander.py), the **comparison** (stats.py: the window's z against its critical value,
and the sustained-excess scan), and then the **gates** here. The comparison says whether
V2 is beyond the limit; each gate may rule that a breach does not count, or not yet,
and says which outcome it becomes and why. They run in this order, on a breach only,
and the first that rules it out ends the sequence:

  thin_window      too few effective samples to act on a window's z         -> clear
  v1_excursions    not past the excursions V1 itself makes                  -> clear
  disputed         live V1 and its baseline disagree; V2 worse than one only -> disputed
  stale_window     no new V2 sample: the breach was judged already          -> missing
  still_settling   V2's excess is still falling within its settle period    -> warming
  warming_with     V2 still warming up in the metric it settles with        -> warming

Each gate is a function of the :class:`Finding` with its own docstring and test
(tests/test_judge_ruling.py); removing one is removing it from :data:`GATES`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from watchdog.config.schema import RelativeRule
from watchdog.judge import stats, wander
from watchdog.judge.context import EPS, EvalContext, span
from watchdog.judge.disagree import disagreement
from watchdog.judge.reference import Reference, ReferenceKind, baseline_level
from watchdog.judge.warmup import stale_for, still_falling, warming_in
from watchdog.model import Direction, RuleOutcome, Version


@dataclass(frozen=True)
class Finding:
    """What the comparison found for one relative rule at one tick: all the gates read."""

    rule: RelativeRule
    ctx: EvalContext
    comp: stats.Comparison  # the deciding window's comparison
    ref: Reference  # what it compared with
    width: float  # that window's width (s)
    crit: float  # its critical z (0 for ``test: none``)
    thin: bool  # it held too few effective samples to act on (wander.thin)
    by_scan: bool  # the sustained-excess scan found a breach (whatever the z says)
    summary: str
    # the comparison over a longer window (seconds back from now), None where that window
    # has too few samples or no reference
    rejudge: Callable[[float], stats.Comparison | None]

    @property
    def breached(self) -> bool:
        """What the comparison says, before the gates."""
        return self.comp.z > self.crit or self.by_scan

    @property
    def higher(self) -> bool:
        return self.ctx.module.metrics[self.rule.metric].direction \
            is not Direction.LOWER_IS_WORSE


@dataclass(frozen=True)
class Ruling:
    """An outcome and its summary (for an outcome other than breached or clear: why, the
    comparison's summary included), with the evidence the gates added and the gate that
    decided ("" where no gate ruled the breach out)."""

    outcome: RuleOutcome
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    gate: str = ""


Gate = Callable[[Finding], Ruling | None]


def thin_window(f: Finding) -> Ruling | None:
    """A window with too few effective samples (a few minutes of a wandering metric: n /
    k^2 below ``wander_min_effective_n``) never breaches by its z: its mean is one draw of
    the wander (wander.py). A breach the sustained-excess scan found stands."""
    if f.thin and not f.by_scan:
        return Ruling(RuleOutcome.CLEAR, f.summary)
    return None


def v1_excursions(f: Finding) -> Ruling | None:
    """V2's excess must outlast the excursions V1 itself makes (wander.episode_span): where
    V1's level strays beyond the tolerance for longer than the deciding window, the breach
    must hold over a window that long too. A breach the scan found is a sustained run
    already. Records the longer window and its z either way."""
    rule = f.rule
    if f.by_scan or rule.test != "sequential":
        return None
    lasting = wander.episode_span(f.ctx, rule.metric, _tolerance(rule), span(rule, f.ctx))
    if lasting <= f.width + EPS:
        return None
    confirm = f.rejudge(lasting)
    if confirm is None:
        return None
    evidence = {"episode_span": round(lasting, 1), "episode_z": round(confirm.z, 3)}
    if confirm.z > f.crit:
        return Ruling(RuleOutcome.BREACHED, f.summary, evidence)
    return Ruling(RuleOutcome.CLEAR, f"{f.summary}; not past V1's own excursions: "
                  f"z={confirm.z:.2f} over {lasting:.0f}s, as long as V1 strayed beyond the "
                  f"tolerance", evidence)


def disputed(f: Finding) -> Ruling | None:
    """Live V1 and its stored baseline disagree beyond their own noise (V1 drifted), and
    V2 is worse than live V1 but not than the baseline (disagree.py): V2 counts as worse
    only if it is worse than both. Judged against live V1 with no note (not a small-share
    or sparse-count reference), on a current baseline, for ``test: sequential``."""
    rule, ctx, ref = f.rule, f.ctx, f.ref
    baseline = ctx.baselines.get(rule.metric)
    if ref.kind is not ReferenceKind.LIVE_V1 or ref.note or baseline is None \
            or baseline.expired(ctx.now) or rule.test != "sequential":
        return None
    value_b, se_b = baseline_level(baseline)
    why = disagreement(rule, f.comp, ref.level, ref.se, value_b, se_b, baseline.count,
                       wander.factor(ctx, rule.metric), f.crit, f.higher)
    return None if why is None else Ruling(RuleOutcome.DISPUTED, f"{why}: {f.summary}")


def stale_window(f: Finding) -> Ruling | None:
    """No new V2 sample for more than twice its usual spacing (warmup.stale_for): the
    samples that breached were judged at earlier ticks already, and repeating the verdict
    on them is no new evidence (it would fire a ``for`` on a stale window)."""
    stale = stale_for(f.ctx.series.get(Version.V2, f.rule.metric), f.ctx)
    if stale is None:
        return None
    return Ruling(RuleOutcome.MISSING, f"no new V2 sample for {stale:g}s: a breach counts "
                  f"again when V2 reports: {f.summary}", {"stale": stale})


def still_settling(f: Finding) -> Ruling | None:
    """Within the metric's ``settle`` period, V2's excess is still falling (a warm-up
    decays, a regression stays), or before ``settle_min`` its trend does not yet rule out
    a warm-up that ends within ``settle`` (warmup.still_falling)."""
    ctx, rule = f.ctx, f.rule
    if ctx.now - ctx.started_at >= ctx.module.metrics[rule.metric].settle:
        return None
    excess = (f.comp.observed - f.comp.limit) * (1.0 if f.higher else -1.0)
    falling = still_falling(rule, ctx, f.higher, excess)
    if falling is None:
        return None
    return Ruling(RuleOutcome.WARMING, f"V2 still settling after start ({falling}); not "
                  f"judged yet: {f.summary}")


def warming_with(f: Finding) -> Ruling | None:
    """V2 is visibly still warming up in the metric this one settles with (``settle_with``:
    a replica still slow serves fewer requests), within that metric's settle period
    (warmup.warming_in)."""
    settle_with = f.ctx.module.metrics[f.rule.metric].settle_with
    if settle_with is None:
        return None
    warm = warming_in(settle_with, f.rule, f.ctx)
    if warm is None:
        return None
    return Ruling(RuleOutcome.WARMING, f"V2 still warming up ({warm}); not judged yet: "
                  f"{f.summary}")


GATES: tuple[Gate, ...] = (thin_window, v1_excursions, disputed, stale_window,
                           still_settling, warming_with)


def rule_on(finding: Finding, gates: Sequence[Gate] = GATES) -> Ruling:
    """The outcome of a finding: clear as the comparison says, or its breach passed
    through the gates in order. A gate that lets the breach stand may add evidence and
    the sequence goes on; the first that rules it out ends it."""
    if not finding.breached:
        return Ruling(RuleOutcome.CLEAR, finding.summary)
    evidence: dict[str, Any] = {}
    for gate in gates:
        ruling = gate(finding)
        if ruling is None:
            continue
        evidence.update(ruling.evidence)
        if ruling.outcome is not RuleOutcome.BREACHED:
            return replace(ruling, evidence=evidence, gate=gate.__name__)
        finding = replace(finding, summary=ruling.summary)
    return Ruling(RuleOutcome.BREACHED, finding.summary, evidence)


def _tolerance(rule: RelativeRule) -> float:
    tolerance = rule.max_increase if rule.max_increase is not None else rule.max_decrease
    assert tolerance is not None
    return tolerance
