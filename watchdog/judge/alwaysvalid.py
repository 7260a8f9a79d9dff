"""A breach valid under continuous monitoring: the always-valid test of a relative rule.

The per-look z test and the scan of relative.py look every tick; each look has a small
false-alarm rate, but over a rollout of hundreds of looks they add up, by an amount no
one states. This module answers one question at every tick, from the data the judge
holds (no state: recomputed each tick): **has V2 been worse than the rule's limit, with a
probability of ever saying so wrongly bounded over the whole rollout?** relative.py lets
a ``test: sequential`` rule breach only when it says yes (:func:`crossed`, a gate).

The differences. Since the current stage's start (and after the metric's warm-up), each
V2 sample ``x_i`` is compared with the rule's limit at the same instant: from live V1's
sample at that instant (``max(v1 (1 + tol), v1 + min_effect)``, the rule's tolerance) or,
where V1 has none (the 100 % stage, ``against: baseline``), from the stored baseline's
level (``baseline_tolerance``). ``d_i = x_i - limit_i`` (``limit_i - x_i`` where lower is
worse): positive is worse than the limit.

The variance. Not a plug-in from V2's first few samples: per sample, ``s_i^2 = k^2 (sd2^2
+ f^2 sd1^2)`` for a difference with live V1 (``k^2 sd2^2`` against a stored level), where
``sd1`` is V1's successive-difference noise over its last hour (its stored baseline where
V1 has too few samples), ``sd2`` V2's as noise.v2_noise measures it over the stage (for a
``per_request`` metric pooled with what V1's noise implies at V2's traffic share, worth
five samples; for ``noise: binomial`` moved to the limit), ``f = 1 + tol`` the limit's
slope in V1 (1 where lower is worse), and ``k`` the wander factor (wander.py, measured on
V1's history): successive differences see the short-range noise and not a level shift
(a regression does not inflate them); k^2 turns them into the long-run variance,
autocorrelation and slow wander included. Each difference counts up to ``av_clip``
``s_i`` (clipping from above only lowers the mean, so the null is kept; single spikes of
a heavy tail are no level).

The statistic. For a start point ``u`` the normal mixture of sequential.py over the
samples after ``u``: ``Lambda_u`` (half-normal mixing scale ``tau`` = ``av_tau`` times the
per-sample sd). A regression may begin mid-stage, and a stage-long sum started at the
stage start would first have to pay back everything the healthy samples put below the
limit; so the statistic mixes start points too: ``u_j = stage start + j * av_grid`` with
prior weights ``w_j`` (:func:`start_weight`: half spread evenly over the stage's
planned hold, half ``1 / ((j + 1) (j + 2))``; they sum to at most 1), ``E = sum_j w_j
Lambda_{u_j}``. A mixture of nonnegative supermartingales with weights summing to 1 is
one (a start point not reached yet counts as 1; leaving it, or a start point whose
samples the judge no longer holds, out only makes ``E`` smaller). The rule crosses when
``log E >= log(1 / alpha_stage)``: Ville's inequality gives ``P(ever crossing in a stage)
<= alpha_stage``, and Bonferroni over the plan's stages ``<= alpha`` per rollout. The
first stage gets ``av_first_stage`` (half) of ``alpha`` (a regression V2 brings is there
from its start: caught sooner), the other stages share the rest evenly.

**The bound.** If, after warm-up, V2's expected value is at or below the rule's limit at
every sample, and the differences' noise is at most the variance used (independent, or
weakly dependent with that long-run variance), the probability that the rule ever
crosses during the rollout, however often it is looked at, is at most ``av_alpha``. That
is the probability of a false rollback by this rule. Exact for independent normal noise of
known variance; approximate (a functional central limit theorem) for autocorrelated and
heavy-tailed noise, and for a variance estimated from V1's history; it does not hold where
V2's own level wanders off for longer than the stage on a healthy host (the stated
assumption fails), and a stage entered again after a step back spends its alpha again.
``tests/test_judge_alwaysvalid.py`` measures it through the judge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchdog.config.schema import RelativeRule
from watchdog.judge import noise, ruling, sequential, stats, wander
from watchdog.judge.context import EPS, EvalContext, warm_from
from watchdog.judge.reference import Reference, ReferenceKind, baseline_level
from watchdog.judge.series import Series
from watchdog.judge.tuning import tuning
from watchdog.model import RuleOutcome, Version

MIN_RELATIVE_SD = 1e-3  # the least noise per sample, as a share of the limit


@dataclass(frozen=True)
class Crossing:
    """One tick's always-valid evidence for a rule."""

    crossed: bool
    log_e: float  # log of the start-point mixture E
    threshold: float  # log(1 / this stage's alpha)
    n: int  # V2 samples since the stage start that have a reference
    best_start: float  # seconds after the stage start of the start point weighing most
    sd: float  # per-sample sd of the differences (mean over the samples)
    source: str  # where the variance came from
    alpha: float  # the rollout's alpha (split over `stages`)
    stages: int

    def as_evidence(self) -> dict[str, Any]:
        return {"av_crossed": int(self.crossed), "av_log_e": round(self.log_e, 3),
                "av_threshold": round(self.threshold, 3), "av_n": self.n,
                "av_start": round(self.best_start, 1), "av_sd": float(f"{self.sd:.6g}"),
                "av_variance": self.source, "av_alpha": self.alpha, "av_stages": self.stages}


def crossed(f: ruling.Finding) -> ruling.Ruling | None:
    """The gate (ruling.py): a ``test: sequential`` breach counts only where the
    always-valid test crossed; its evidence is recorded either way."""
    rule = f.rule
    if not tuning().always_valid or rule.test != "sequential":
        return None
    tolerance = rule.max_increase if rule.max_increase is not None else rule.max_decrease
    assert tolerance is not None
    found = crossing(rule, f.ctx, tolerance, f.higher)
    if found is None:
        return ruling.Ruling(RuleOutcome.UNCONFIRMED, f"{f.summary}; always-valid test: no "
                             f"V2 sample with a reference in this stage", {"av_crossed": 0})
    if found.crossed:
        return ruling.Ruling(RuleOutcome.BREACHED, f.summary, found.as_evidence())
    # the comparison sees V2 worse, the always-valid test cannot confirm it yet: evidence
    # too thin to roll back on and too bad to count as healthy (the rollout holds)
    return ruling.Ruling(RuleOutcome.UNCONFIRMED, f"{f.summary}; not past the always-valid "
                         f"bound (log E {found.log_e:.2f} < {found.threshold:.2f})",
                         found.as_evidence())


def crossing(rule: RelativeRule, ctx: EvalContext, tolerance: float,
             higher: bool) -> Crossing | None:
    """The always-valid test at this tick (None: no V2 sample with a reference yet)."""
    settings = tuning()
    spec = ctx.module.metrics[rule.metric]
    stage_from = ctx.stage_started_at if ctx.stage_started_at is not None else ctx.started_at
    start = max(stage_from, warm_from(rule, ctx)) - EPS
    v2s = ctx.series.get(Version.V2, rule.metric)
    times, x = v2s.window(start, ctx.now)
    if not len(x):
        return None
    t = np.asarray(times, dtype=float)
    ref = np.full(len(x), np.nan)
    if rule.against != "baseline":
        ref = ctx.series.get(Version.V1, rule.metric).at(t, ctx.module.interval / 2)
    live = ~np.isnan(ref)
    baseline = ctx.baselines.get(rule.metric)
    if rule.against != "live" and baseline is not None and not baseline.expired(ctx.now):
        ref = np.where(live, ref, baseline_level(baseline)[0])
    keep = ~np.isnan(ref)
    if not keep.any():
        return None
    t, x, ref, live = t[keep], x[keep], ref[keep], live[keep]
    tol = np.where(live, tolerance, rule.baseline_tolerance
                   if rule.baseline_tolerance is not None else tolerance)
    limit = stats.limits_of(ref, tol, rule.min_effect, higher)
    d = x - limit if higher else limit - x
    sd1, sd2, k, source = _noise(rule, ctx, max(start, float(t[0]) - EPS), x, ref[live],
                                 tolerance, higher)
    f = 1.0 + tolerance if higher else 1.0  # the limit's slope in V1 (at most 1 if lower)
    per_sample = k * k * (sd2 * sd2 + np.where(live, f * f * sd1 * sd1, 0.0))
    # a noiseless series (constant samples) is known to within a tiny share of its limit
    floor = max(spec.noise_floor, MIN_RELATIVE_SD * stats.median(np.abs(limit)))
    per_sample = np.maximum(per_sample, floor ** 2)
    if not float(per_sample.min()) > 0:
        return None
    # a single spike is no evidence of a level: each difference counts up to av_clip sds
    # (clipping from above only lowers the mean, so V2 within its limit stays within it)
    # (a ratio of counts, ``noise: binomial``, has light tails: a burst of failures is
    # no chance spike there, and counts in full)
    if rule.noise != "binomial":
        d = np.minimum(d, settings.av_clip * np.sqrt(per_sample))
    stages = max(len(ctx.plan.stages), 1)
    threshold = sequential.threshold(stage_alpha(ctx, settings.av_alpha))
    log_e, best = _mixture(t, d, per_sample, stage_from, start, v2s, ctx)
    sd = math.sqrt(float(per_sample.mean()))
    return Crossing(log_e >= threshold, log_e, threshold, len(d), best, sd, source,
                    settings.av_alpha, stages)


def stage_alpha(ctx: EvalContext, alpha: float) -> float:
    """This stage's share of the rollout's alpha: ``av_first_stage`` of it for the first
    stage (a regression V2 brings is there from its start), the rest split evenly over
    the others (Bonferroni: the shares sum to alpha). Where the stage is not known, the
    smaller share."""
    plan = ctx.plan
    stages = len(plan.stages)
    if stages <= 1:
        return alpha
    first = tuning().av_first_stage
    rest = alpha * (1.0 - first) / (stages - 1)
    if ctx.traffic_percent is None or ctx.stage_started_at is None:
        return min(alpha * first, rest)
    return alpha * first if plan.index_of(ctx.traffic_percent) == 0 else rest


def _mixture(t: np.ndarray, d: np.ndarray, var: np.ndarray, stage_from: float,
             start: float, v2s: Series, ctx: EvalContext) -> tuple[float, float]:
    """(log E, offset of the heaviest start point) over the grid of start points."""
    settings = tuning()
    tau = settings.av_tau * math.sqrt(float(var.mean()))
    c_d = np.concatenate(([0.0], np.cumsum(d)))
    c_v = np.concatenate(([0.0], np.cumsum(var)))
    n_all = len(d)
    grid = settings.av_grid
    # start points before the first sample the judge still holds are left out (their
    # sums would silently start later: not the process the bound is about)
    held_from = float(v2s.t[0]) if len(v2s.t) else start
    if held_from <= start + 1.5 * ctx.module.interval:
        held_from = -math.inf
    terms: list[float] = []
    offsets: list[float] = []
    planned = _planned_points(ctx, grid)
    j = 0
    first = max(start, stage_from)
    while first + j * grid <= ctx.now:
        u = first + j * grid
        if u >= held_from - 1.5 * ctx.module.interval:
            lo = int(np.searchsorted(t, u + EPS, side="left")) if j else 0
            n = n_all - lo
            if n > 0:
                s = float(c_d[-1] - c_d[lo])
                v = float(c_v[-1] - c_v[lo])
                log_w = math.log(start_weight(j, planned))
                terms.append(log_w + sequential.log_mixture_lr(s, n, v / n, tau))
                offsets.append(u - stage_from)
        j += 1
    if not terms:
        return -math.inf, 0.0
    arr = np.array(terms)
    top = float(arr.max())
    return top + math.log(float(np.exp(arr - top).sum())), offsets[int(arr.argmax())]


def start_weight(j: int, planned: int) -> float:
    """The prior weight of the ``j``-th start point of a stage with ``planned`` of them.

    Half the mass is spread evenly over the start points the stage's planned hold holds
    (an onset anywhere in the stage pays log(2 x planned), not log((j + 1) (j + 2)), which
    grows to log(110) ten minutes in), half decays as 1 / ((j + 1) (j + 2)) (the start,
    where a regression V2 brings is, weighs most; a stage held longer than planned still
    has start points). Over all j the weights sum to at most 1: the mixture stays a
    supermartingale under the null, and Ville's bound holds.
    """
    even = 0.5 / planned if j < planned else 0.0
    return even + 0.5 / ((j + 1.0) * (j + 2.0))


def _planned_points(ctx: EvalContext, grid: float) -> int:
    """How many start points the current stage's planned hold holds (at least 1)."""
    plan = ctx.plan
    index = plan.index_of(ctx.traffic_percent) if ctx.traffic_percent is not None else None
    hold = plan.hold_of(index) if index is not None else plan.hold
    return max(1, math.ceil(hold / grid))


def _noise(rule: RelativeRule, ctx: EvalContext, start: float, x: np.ndarray,
           v1: np.ndarray, tolerance: float, higher: bool
           ) -> tuple[float, float, float, str]:
    """(V1's noise per sample, V2's, the wander factor k, the source).

    V1's: successive differences over its last ``wander_span`` (its stored baseline where
    V1 has too few samples): many samples. V2's: noise.v2_noise over the stage, which for
    a ``per_request`` metric pools V2's own successive differences with what V1's noise
    implies at V2's traffic share (worth noise.SHARE_PRIOR samples), and for ``noise:
    binomial`` moves it to the limit. Successive differences do not see a level shift (a
    regression does not inflate them); k (wander.py, from V1's history) turns both into
    long-run noise, autocorrelation and slow wander included.
    """
    times, history = wander.recent_v1(ctx, rule.metric)  # the wander factor's history
    sd1 = stats.noise_sd(history) if len(history) >= tuning().wander_min_samples else math.nan
    source = "v1-history" if len(times) and times[-1] > ctx.now - tuning().wander_span \
        else "baseline"
    if math.isnan(sd1):
        sd1, source = 0.0, "v2-only"
    if rule.noise == "binomial" and len(history):
        # a rate of counts: noise.v2_noise moves its noise to the limit from V1's rate,
        # which a few samples of a sparse count (mostly zeros) read as 0; V1's hour
        # reads it as the rule does
        level1 = stats.location(history, sd1, rule.estimator)
    else:
        level1 = stats.median(v1) if len(v1) else stats.median(x)
    ref = Reference(ReferenceKind.LIVE_V1, level1, 0.0, max(len(v1), 1), sd=sd1) \
        if len(v1) and sd1 > 0 else Reference(ReferenceKind.BASELINE, level1, 0.0, 1)
    sd2 = noise.v2_noise(rule, ctx, start, x, ref, tolerance, higher)
    if math.isnan(sd2):
        sd2 = sd1 * (1.0 + tolerance if higher else 1.0)
    return sd1, sd2, wander.factor(ctx, rule.metric), source
