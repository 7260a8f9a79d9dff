"""Telling a V2 warm-up from a regression, and fresh evidence from a stale window.

``settle`` (a metric's own warm-up test), ``settle_with`` (a metric that warms up with
another one) and stale windows, used by the relative rules (relative.py): each says why a
breach should not count yet, or None.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from watchdog.config.schema import RelativeRule, Rule
from watchdog.judge import stats
from watchdog.judge.context import EPS, EvalContext, paired
from watchdog.judge.series import Series
from watchdog.judge.tuning import tuning
from watchdog.model import Direction, Version

SETTLE_SPAN = 300.0  # how far back the trend of V2's excess is fitted (at most)
SETTLE_Z = 2.0  # a trend this many standard errors towards "better" is a warm-up
STALE = 2.0  # V2 samples this many spacings old no longer feed a fresh verdict
WARMING_EXCESS = 0.2  # settle_with: V2 this much worse on the other metric is warming


def still_falling(rule: RelativeRule, ctx: EvalContext, higher: bool,
                  excess: float | None = None) -> str | None:
    """A description when V2's excess over V1 is still shrinking (or it is too early to say).

    The trend of V2's excess (V2 less V1 interpolated to V2's instants, or V2 alone where V1
    has too few samples) over its life so far, at most SETTLE_SPAN back: a robust (Theil-Sen) slope
    and its standard error from the residuals' robust scatter. A warm-up decays, so its
    slope is clearly negative (improving) once ``settle_min`` seconds of history give the test
    its power; a regression is flat. Before that, nothing counts: a slow warm-up and a step
    look alike over a minute of noisy samples. A line through every sample has far more
    power than comparing two blocks, so a decaying warm-up is told apart reliably at the
    first instant a breach may count.
    """
    now = ctx.now
    spec = ctx.module.metrics[rule.metric]
    early = now - ctx.started_at < spec.settle_min - EPS
    if early and (excess is None or not tuning().early_settle):
        return "too little V2 history to tell a warm-up from a regression"
    start = max(ctx.started_at - EPS, now - SETTLE_SPAN)
    times, v2 = ctx.series.get(Version.V2, rule.metric).window(start, now)
    if len(v2) < 2 * rule.min_samples + 2:
        return "too little V2 history to tell a warm-up from a regression"
    t = np.asarray(times, dtype=float)
    y = v2.astype(float)
    t1, v1 = ctx.series.get(Version.V1, rule.metric).window(start, now)
    if 2 * len(v1) > len(v2):
        # V1 over the same span (load moves both): V2's excess is V2 less V1 at its times
        y = y - np.interp(t, np.asarray(t1, dtype=float), v1)
    slope = stats.theil_sen_slope(t, y)
    se = stats.slope_se(t, y, slope, stats.noise_sd(y))
    if se is None:
        return None
    improving = -slope if higher else slope
    if early:
        # before settle_min a breach counts only when the trend rules out a warm-up: even
        # improving SETTLE_Z standard errors faster than seen, V2 would still be beyond
        # the limit when its settle period ends (a warm-up's decay only slows down)
        assert excess is not None
        needed = excess / max(spec.settle - (now - ctx.started_at), ctx.module.interval)
        if improving + SETTLE_Z * se < needed:
            return None
        return (f"too little V2 history to tell a warm-up from a regression (trend "
                f"{slope * 60:+.4g}/min; a warm-up ending by {spec.settle:g}s would need "
                f"{-needed * 60 if higher else needed * 60:+.4g}/min)")
    if improving / se > SETTLE_Z:
        return f"trend {slope * 60:+.4g}/min over {now - t[0]:.0f}s, z={improving / se:.1f}"
    return None


def stale_for(v2s: Series, ctx: EvalContext) -> float | None:
    """Seconds since V2's newest sample, when that is more than STALE of its usual spacing.

    A window that V2 has stopped feeding keeps its last samples for a while; judged again
    at every tick, two chance spikes followed by a scrape gap would count as a lasting
    breach. The spacing is V2's own (median over the noise window, at least the module's
    interval), so a metric scraped less often than the module ticks is not stale.
    """
    last = v2s.last_time(ctx.now)
    if last is None:
        return None
    age = ctx.now - last
    if age <= STALE * ctx.module.interval + EPS:
        return None
    times, _ = v2s.window(ctx.now - ctx.noise_window, ctx.now)
    spacing = stats.median(np.diff(times)) if len(times) >= 3 else ctx.module.interval
    if age <= STALE * max(spacing, ctx.module.interval) + EPS:
        return None
    return round(age, 3)


def warming_in(metric: str, rule: Rule, ctx: EvalContext,
               window: float | None = None) -> str | None:
    """A description when V2 is visibly warming up in ``metric`` (a ``settle_with``).

    Within ``metric``'s own settle period, V2 worse than live V1 on it by more than
    WARMING_EXCESS over ``window`` (the rule's by default; medians of the paired
    samples). A replica that is still slow serves fewer requests; a deficit that comes
    with normal latency is judged at once.
    """
    spec = ctx.module.metrics[metric]
    if ctx.now - ctx.started_at >= spec.settle:
        return None
    width = rule.window if window is None else window
    v2, v1 = paired(ctx, metric, max(ctx.now - width, ctx.started_at - EPS))
    if len(v2) < rule.min_samples:
        return None
    level2, level1 = stats._median(v2), stats._median(v1)
    if not level1 > 0:
        return None
    excess = _worse_by(level2, level1, spec.direction)
    if excess > WARMING_EXCESS:
        return f"its {metric} is {excess:+.0%} worse than V1's, {ctx.now - ctx.started_at:g}s in"
    return None


def warm_until(metric: str, rule: RelativeRule, ctx: EvalContext) -> float | None:
    """The newest instant at which V2 was visibly warming up in ``metric`` (a ``settle_with``).

    Within ``metric``'s settle period: the end of the last run of ``rule.window`` over which
    V2's median was more than WARMING_EXCESS worse than V1's (V1 interpolated to V2's
    instants). None when V2 never was: then nothing a warm-up left needs cutting out.
    """
    spec = ctx.module.metrics[metric]
    if ctx.now - ctx.started_at >= spec.settle:
        return None
    k = max(rule.min_samples, round(rule.window / ctx.module.interval))
    key = ("warm_until", metric, rule.window, k)
    if key not in ctx.memo:  # the error and throughput rules ask the same, once a tick
        ctx.memo[key] = _warm_until(metric, rule.window, k, spec.direction, ctx)
    found: float | None = ctx.memo[key]
    return found


def _warm_until(metric: str, window: float, k: int, direction: Direction,
                ctx: EvalContext) -> float | None:
    t2, v2 = ctx.series.get(Version.V2, metric).window(ctx.started_at - EPS, ctx.now)
    t1, v1 = ctx.series.get(Version.V1, metric).window(ctx.started_at - window, ctx.now)
    if len(v2) < k or len(v1) < 2:
        return None
    ref = np.interp(np.asarray(t2, dtype=float), np.asarray(t1, dtype=float), v1)
    level2 = np.median(np.lib.stride_tricks.sliding_window_view(v2, k), axis=1)
    level1 = np.median(np.lib.stride_tricks.sliding_window_view(ref, k), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = _worse_by(level2, level1, direction)
    warm = np.nonzero((level1 > 0) & (excess > WARMING_EXCESS))[0]
    return float(t2[warm[-1] + k - 1]) if len(warm) else None


def _worse_by(level2: Any, level1: Any, direction: Direction) -> Any:
    """How much worse V2's level is than V1's, as a fraction (floats or arrays)."""
    excess = level2 / level1 - 1
    return -excess if direction is Direction.LOWER_IS_WORSE else excess
