"""Bursts rules: runs of consecutive V2 samples far worse than the reference.

The windowed tests in relative.py are deliberately blind to single-sample spikes; this
rule covers what they must not miss: short bursts that repeat (errors for 30 s every few
minutes) and sharp shifts, which show as a run of samples well outside V2's own noise.
A sample is out when it is worse than the reference by more than ``min_effect`` and by
more than ``sigmas`` noise units; a run of ``min_run`` out samples, each within 1.5
intervals of the previous one, is an episode.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from watchdog.config.schema import BurstsRule
from watchdog.judge import counts, noise, stats
from watchdog.judge.context import EPS, EvalContext, inconclusive, span, too_few, warm_from
from watchdog.judge.warmup import warming_in
from watchdog.model import Direction, RuleOutcome, RuleResult, Version

WARMING_WINDOW = 60.0  # settle_with: how far back the other metric's warm-up is looked for
_ANY = np.logical_or.reduce  # ndarray.any() without its Python-level wrapper


def evaluate_bursts(rule: BurstsRule, ctx: EvalContext) -> RuleResult:
    spec = ctx.module.metrics[rule.metric]
    higher = spec.direction is not Direction.LOWER_IS_WORSE
    start = max(ctx.now - span(rule, ctx), warm_from(rule, ctx) - EPS)
    times, v2 = ctx.series.get(Version.V2, rule.metric).window(start, ctx.now)
    if len(v2) < max(rule.min_samples, rule.min_run):
        return too_few(rule, ctx, len(v2))
    reference = _reference(rule, ctx, start)
    if reference is None:
        return inconclusive(rule, "no reference: neither live V1 nor a stored baseline")
    sd = noise.recent_sd(ctx, Version.V2, rule.metric, ctx.now - ctx.noise_window)
    if not sd > 0 and len(v2) >= 3:
        # V2 constant of late (no errors at a thin share, or an outage): the window's
        # successive differences, which a step into an outage does not inflate
        sd = stats.noise_sd(v2)
    if not sd > 0:
        sd = float(np.std(v2)) if len(v2) > 1 else 0.0
    margin = max(rule.min_effect, rule.sigmas * max(sd, spec.noise_floor))
    # a sample out against V1's level alone: only those can be out against the shared
    # level, which only ever relaxes it (V1's samples at the same instants are read for them)
    out = ((v2 - reference) if higher else (reference - v2)) > margin
    if _ANY(out):
        level = _shared(rule, ctx, times, reference, higher)
        out = ((v2 - level) if higher else (level - v2)) > margin
        if rule.noise == "binomial" and higher:
            out = _significant_runs(v2, out, level + margin, rule.min_run)
    limit = reference + margin if higher else reference - margin
    episodes, longest, last_end = _runs(times, out, rule.min_run, ctx.module.interval * 1.5)
    breached = episodes >= rule.episodes
    run = _single_run(out) if breached else None  # where the only out run began
    if run == 0 and ctx.now - ctx.started_at < spec.settle and last_end is not None \
            and times[0] - ctx.started_at < spec.settle:
        return inconclusive(rule, "V2 still settling after start: its only out-of-line "
                                  "run began with it", RuleOutcome.WARMING)
    if run is not None and spec.settle_with is not None \
            and times[run] <= ctx.started_at + WARMING_WINDOW + EPS:
        # a run that began with V2 while V2 is still slow (``settle_with``): a warm-up
        warm = warming_in(spec.settle_with, rule, ctx, WARMING_WINDOW)
        if warm is not None:
            return inconclusive(rule, f"V2 still warming up ({warm}); its only out-of-line "
                                      f"run began with it", RuleOutcome.WARMING)
    n_out = int(np.count_nonzero(out))
    evidence: dict[str, Any] = {"reference": _round(reference), "limit": _round(limit),
                                "noise_sd": _round(sd), "episodes": episodes,
                                "longest_run": longest, "min_run": rule.min_run,
                                "n_v2": len(v2), "out": n_out, "window": rule.window}
    summary = (f"{rule.metric}: {episodes} burst(s) of >= {rule.min_run} samples beyond "
               f"{limit:.4g} (reference {reference:.4g} {'+' if higher else '-'} "
               f"max({rule.min_effect:g}, {rule.sigmas:g} x noise {sd:.3g})) in "
               f"{rule.window:g}s; longest run {longest}, {n_out}/{len(v2)} "
               f"samples out")
    return RuleResult(rule.name, rule.metric, bool(breached), summary, evidence)


def _reference(rule: BurstsRule, ctx: EvalContext, start: float) -> float | None:
    if rule.against != "baseline":
        v1 = ctx.series.get(Version.V1, rule.metric).values(start, ctx.now)
        if len(v1) >= rule.min_samples:
            return stats._median(v1)
    if rule.against == "live":
        return None
    baseline = ctx.baselines.get(rule.metric)
    if baseline is None or baseline.expired(ctx.now):
        return None
    return baseline.p50


def _shared(rule: BurstsRule, ctx: EvalContext, times: list[float], reference: float,
            higher: bool) -> np.ndarray:
    """The reference at each of V2's samples: V1's level, or V1's sample at the same
    instant where that is worse (a shift V1 shares, such as a dependency failing for both,
    is no V2 burst). Only ever relaxes the limit."""
    level = np.full(len(times), reference)
    if rule.against == "baseline" or not times:
        return level
    same = ctx.series.get(Version.V1, rule.metric).at(np.asarray(times),
                                                     ctx.module.interval / 2)
    return np.asarray(np.fmax(level, same) if higher else np.fmin(level, same), dtype=float)


def _runs(times: list[float], out: np.ndarray, min_run: int,
          max_gap: float) -> tuple[int, int, float | None]:
    """(episodes, longest run, end time of the last episode)."""
    if not _ANY(out):
        return 0, 0, None
    episodes = longest = run = 0
    last_end: float | None = None
    previous: float | None = None
    for t, flag in zip(times, out.tolist(), strict=True):
        if flag and previous is not None and run and t - previous <= max_gap:
            run += 1
        elif flag:
            run = 1
        else:
            run = 0
        previous = t
        longest = max(longest, run)
        if run == min_run:
            episodes += 1
        if run >= min_run:
            last_end = t
    return episodes, longest, last_end


SPARSE_ALPHA = 0.001  # a sparse count's run is a burst when its events are this unlikely


def _significant_runs(v2: np.ndarray, out: np.ndarray, limit: np.ndarray,
                      min_run: int) -> np.ndarray:
    """``out`` without the runs whose events a sparse count at the limit explains.

    Each run of ``min_run`` or more out samples is tested as a whole (counts.count_z:
    its events against Poisson(limit x requests)); a run of a count that is not sparse is
    kept as it is.
    """
    per_sample = counts.sparse_requests(v2)  # sparseness and requests: the whole window
    if per_sample is None:
        return out
    kept = out.copy()
    z_critical = stats.z_critical(SPARSE_ALPHA)
    i, n = 0, len(out)
    while i < n:
        if not out[i]:
            i += 1
            continue
        j = i
        while j < n and out[j]:
            j += 1
        if j - i >= min_run:
            z = counts.count_z(v2[i:j], per_sample, float(limit[i:j].mean()))
            if z is not None and z <= z_critical:
                kept[i:j] = False
        i = j
    return kept


def _single_run(out: np.ndarray) -> int | None:
    """Where the only run of out samples so far begins; None for no run or several."""
    flags = out.tolist()
    first = next((i for i, f in enumerate(flags) if f), None)
    if first is None:
        return None
    after = next((i for i in range(first, len(flags)) if not flags[i]), len(flags))
    return None if any(flags[after:]) else first


def _round(x: float) -> float:
    return float(f"{x:.6g}") if math.isfinite(x) and x != 0 else x
