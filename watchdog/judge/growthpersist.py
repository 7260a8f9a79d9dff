"""A leak persists: V2's envelope growth must hold over a horizon longer than the rule's window.

Real host memory climbs for reasons that are not leaks, and over a 30-minute window a
healthy climb draws the same straight line a leak does: a refill after a drop climbs
tens of %/h for 40-75 minutes, caches fill for an hour, a host's memory wanders in a
band. Such growth is *bounded*: the service's memory returns to, or stays in, its band,
so the slope of its envelope over a window of length ``L`` falls like ``1 / L`` once
``L`` passes the episode's length. A leak's does not: memory that grows by ``r`` per
hour from its onset shows a slope of ``r`` over any window that starts after the onset.

So the envelope test (``stats.growth_per_hour`` over the rule's ``window``) is a leak
only if the same test, the Theil-Sen slope of the block minima tested against the
limit at the rule's ``alpha`` and not levelling off over its newest blocks, also
breaches over the **persistence horizon**, ``growth_persist_factor`` times the window
(120 minutes for the shipped 30-minute rule), and V2 has served that long after its
warm-up. Until then the rule is
*warming* (``RuleOutcome.WARMING``: V2 has not run long enough for this rule to tell; it
holds nothing), not clear.

What it assumes: healthy growth episodes are shorter than the horizon (in the
real-noise data 90 % of refills take 40-75 minutes; the rest, 2-4 hours, are beyond any
envelope test), and a leak is growth that continues. What it costs: the envelope test
(the only one once V1 stops serving) finds a leak a horizon after its onset at the
earliest. While V1 serves, the paired test (``pairedgrowth.py``: V2 - V1 at the same
instants, with a HAC error that accounts for wander) is the fast path and is not held.
"""

from __future__ import annotations

from dataclasses import dataclass

from watchdog.config.schema import GrowthRule
from watchdog.judge import stats
from watchdog.judge.context import EPS, EvalContext, warm_from
from watchdog.judge.tuning import tuning
from watchdog.model import Version


@dataclass(frozen=True)
class Persistence:
    """V2's envelope growth over the persistence horizon, and whether it is a leak's."""

    horizon: float  # seconds
    growth: stats.Growth | None  # over the horizon (None: V2 has not served that long)
    why_not: str | None  # why the growth does not persist (None: it does)
    pending: bool = False  # V2 has not served the horizon yet: too young to tell


    def as_dict(self) -> dict[str, float | str | None]:
        out: dict[str, float | str | None] = {"persist_horizon": self.horizon}
        if self.growth is not None:
            out["persist_growth_per_hour"] = round(self.growth.per_hour, 5)
            if self.growth.z is not None:
                out["persist_z"] = round(self.growth.z, 3)
            if self.growth.recent_per_hour is not None:
                out["persist_recent_growth_per_hour"] = round(self.growth.recent_per_hour, 5)
        return out


def horizon(rule: GrowthRule) -> float:
    """How far back the envelope test must hold (the rule's window where switched off):
    the engine fetches that much of V2's history."""
    settings = tuning()
    return settings.growth_persist_factor * rule.window if settings.growth_persist \
        else rule.window


def persistence(rule: GrowthRule, ctx: EvalContext) -> Persistence | None:
    """The envelope test over the persistence horizon (see the module); None when
    switched off."""
    settings = tuning()
    if not settings.growth_persist:
        return None
    span = horizon(rule)
    start = ctx.now - span
    served = ctx.now - warm_from(rule, ctx)
    if start < warm_from(rule, ctx) - EPS:
        return Persistence(span, None, (
            f"V2 has grown for {served / 60:.0f} of the {span / 60:.0f} minutes a leak "
            f"must persist (growth that stops sooner is a refill or caches filling)"), True)
    times, values = ctx.series.get(Version.V2, rule.metric).window(start, ctx.now)
    limit = rule.max_growth_per_hour
    found = stats.growth_per_hour(times, values, rule.envelope, start, ctx.now, limit)
    if found is None or found.z is None:
        return Persistence(span, found, "too few envelope blocks over the horizon")
    z_crit = stats.z_critical(rule.alpha)
    why = None
    if found.z <= z_crit:
        why = (f"over {span / 60:.0f} minutes V2 grows {found.per_hour:+.1%}/h, "
               f"z={found.z:.2f} vs {z_crit:.2f}: the growth does not persist")
    elif found.recent_per_hour is not None and found.recent_per_hour <= limit:
        why = (f"over {span / 60:.0f} minutes the newest blocks grow "
               f"{found.recent_per_hour:+.1%}/h: levelled off")
    return Persistence(span, found, why)
