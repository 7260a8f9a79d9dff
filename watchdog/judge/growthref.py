"""Growth rules on real hosts: is V2's rising memory a leak, or something V1 does too?

Real memory series rise for reasons that are not leaks: caches fill and level off, a
drop (a cache flush, a compaction) is followed by a refill that climbs tens of %/h for
an hour, and a whole fleet's memory follows load or the time of day. Two questions, each
answered from data the judge already holds, tell these from a leak:

* **Does V1 grow too?** While V1 serves, its growth over the same window, measured the
  same way (lower envelope, Theil-Sen), is allowed on top of the rule's limit: growth
  that both versions show at the same instants is load, not a leak in V2.
* **Is V2 somewhere new?** A leak takes memory above any level the service held before;
  a refill climbs back to it. V2's newest envelope block must exceed the *ceiling*, the
  highest envelope block (block minima) of V1's history (live samples and the stored
  baseline) and of V2's own life before the window, by ``new_high_margin``.

Before both, the growth must persist over a horizon longer than a refill lasts
(``growthpersist.py``); until V2 has served that long the rule is warming.

:func:`leak_check` returns the evidence and, when the growth is not a leak, why.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

from watchdog.config.schema import GrowthRule
from watchdog.judge import stats
from watchdog.judge.context import EPS, EvalContext, warm_from
from watchdog.judge.growthpersist import Persistence, persistence
from watchdog.judge.tuning import tuning
from watchdog.model import Version


@dataclass(frozen=True)
class LeakCheck:
    """Evidence about V2's growth beyond the rule's own slope test."""

    v1_per_hour: float | None  # V1's growth over the same window (None: V1 not serving)
    wander: float | None  # V1's envelope scatter around a line, of its level
    ceiling: float | None  # the highest envelope the service held before (None: no history)
    newest: float  # V2's newest envelope block
    not_a_leak: str | None  # why the growth does not count, or None
    persist: Persistence | None = None  # the growth over the persistence horizon

    @property
    def pending(self) -> bool:
        """Significant growth V2 has not shown for the persistence horizon yet (then that
        is the reason it is not a leak: :func:`leak_check` asks persistence first)."""
        return self.persist is not None and self.persist.pending

    def as_dict(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {}
        if self.v1_per_hour is not None:
            out["v1_growth_per_hour"] = round(self.v1_per_hour, 5)
        if self.wander is not None:
            out["v1_envelope_wander"] = round(self.wander, 5)
        if self.ceiling is not None:
            out["ceiling"] = float(f"{self.ceiling:.6g}")
        if self.persist is not None:
            out.update(self.persist.as_dict())
        if self.not_a_leak is not None:
            out["not_a_leak"] = self.not_a_leak
        return out


def envelope_high(times: list[float], values: np.ndarray, block: float) -> float | None:
    """The highest of the minima of consecutive ``block``-second blocks (each with 2+
    samples), blocks ending at the last sample; None without such a block."""
    if len(times) < 2:
        return None
    end = times[-1]
    count = int((end - times[0]) // block) + 1
    best: float | None = None
    for k in range(count):
        lo, hi = end - (k + 1) * block, end - k * block
        first, past = bisect_right(times, lo), bisect_right(times, hi)
        if past - first >= 2:
            low = float(values[first:past].min())
            best = low if best is None else max(best, low)
    return best


def block_minima(times: list[float], values: np.ndarray, block: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(block centres, minima) of consecutive ``block``-second blocks with 2+ samples,
    ending at the last sample, oldest first."""
    centres: list[float] = []
    minima: list[float] = []
    if len(times) >= 2:
        end = times[-1]
        for k in range(int((end - times[0]) // block), -1, -1):
            lo, hi = end - (k + 1) * block, end - k * block
            first, past = bisect_right(times, lo), bisect_right(times, hi)
            if past - first >= 2:
                centres.append((lo + hi) / 2)
                minima.append(float(values[first:past].min()))
    return np.asarray(centres), np.asarray(minima)


def envelope_wander(times: list[float], values: np.ndarray, block: float) -> float | None:
    """How far V1's envelope strays from a straight line, as a fraction of its level: the
    robust scatter (1.4826 MAD) of its block minima around their Theil-Sen line; None
    with fewer than 4 blocks."""
    x, y = block_minima(times, values, block)
    if len(y) < 4:
        return None
    level = stats.median(y)
    if not level > 0:
        return None
    slope = stats.theil_sen_slope(x, y)
    resid = y - slope * x
    resid = resid - stats.median(resid)
    return stats.MAD_TO_SD * stats.median(np.abs(resid)) / level


def v1_wander(rule: GrowthRule, ctx: EvalContext) -> float | None:
    """The larger envelope wander of V1's live history and of its stored baseline."""
    found: list[float] = []
    t1, v1 = ctx.series.get(Version.V1, rule.metric).window(-np.inf, ctx.now)
    baseline = ctx.baselines.get(rule.metric)
    sources = [(t1, v1)]
    if baseline is not None and baseline.samples:
        sources.append(([t for t, _ in baseline.samples], baseline.values()))
    for times, values in sources:
        w = envelope_wander(times, values, rule.envelope)
        if w is not None:
            found.append(w)
    return max(found) if found else None


def wander_z(rule: GrowthRule, growth: stats.Growth, wander: float) -> float:
    """The growth's z against the rule's limit when the envelope's scatter is at least
    V1's ``wander`` (blocks at V2's spacing)."""
    k = len(growth.minima)
    spread = rule.envelope ** 2 * k * (k * k - 1) / 12.0  # sum of (centre - mean)^2
    se = wander * growth.level / np.sqrt(spread)
    slope = (growth.per_hour - rule.max_growth_per_hour) * growth.level / 3600.0
    return float(slope / se) if se > 0 else float("inf")


def v1_growth(rule: GrowthRule, ctx: EvalContext, start: float, n_v2: int) -> float | None:
    """V1's growth per hour over V2's window, where V1 covers at least half of it."""
    t1, v1 = ctx.series.get(Version.V1, rule.metric).window(start, ctx.now)
    if 2 * len(v1) < n_v2:
        return None
    found = stats.growth_per_hour(t1, v1, rule.envelope, start, ctx.now)
    return None if found is None else found.per_hour


def ceiling(rule: GrowthRule, ctx: EvalContext, start: float) -> float | None:
    """The highest envelope block of V1's history (live and stored baseline) and of V2's
    own life before ``start``."""
    highs: list[float] = []
    t1, v1 = ctx.series.get(Version.V1, rule.metric).window(-np.inf, ctx.now)
    baseline = ctx.baselines.get(rule.metric)
    if baseline is not None and baseline.samples:
        bt = [t for t, _ in baseline.samples]
        found = envelope_high(bt, baseline.values(), rule.envelope)
        if found is not None:
            highs.append(found)
    for times, values in ((t1, v1), ctx.series.get(Version.V2, rule.metric).window(
            warm_from(rule, ctx) - EPS, start)):
        found = envelope_high(times, values, rule.envelope)
        if found is not None:
            highs.append(found)
    return max(highs) if highs else None


def leak_check(rule: GrowthRule, ctx: EvalContext, growth: stats.Growth, start: float,
               n_v2: int) -> LeakCheck:
    """Whether V2's significant growth is a leak (see the module)."""
    settings = tuning()
    newest = growth.minima[-1]
    v1 = v1_growth(rule, ctx, start, n_v2) if settings.growth_against_v1 else None
    high = ceiling(rule, ctx, start) if settings.new_high else None
    why = None
    wander = v1_wander(rule, ctx) if settings.wander_floor else None
    persist = persistence(rule, ctx)
    basis = persist.growth if persist is not None and persist.growth is not None else growth
    z_w = None if wander is None else wander_z(rule, basis, wander)
    allowed = rule.max_growth_per_hour + max(v1 or 0.0, 0.0)
    if persist is not None and persist.why_not is not None:
        why = persist.why_not
    elif v1 is not None and growth.per_hour <= allowed:
        why = (f"V1 grows {v1:+.1%}/h over the same window: V2's {growth.per_hour:+.1%}/h "
               f"is within {allowed:.1%}/h")
    elif z_w is not None and z_w <= stats.z_critical(rule.alpha):
        why = (f"V1's own envelope strays {wander:.1%} of its level from a line: V2's "
               f"growth is z={z_w:.2f} against that")
    elif high is not None and newest <= high * (1 + settings.new_high_margin):
        why = (f"V2's envelope {newest:.4g} has not passed the level held before "
               f"({high:.4g}, + {settings.new_high_margin:.0%}): a refill or caches filling")
    return LeakCheck(v1, wander, high, newest, why, persist)
