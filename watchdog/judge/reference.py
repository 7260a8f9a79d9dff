"""The reference a relative rule compares V2 with: live V1, the stored baseline, or the
baseline rebased on V1's last live level (see relative.py for when each applies)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from watchdog.baseline import Baseline
from watchdog.config.schema import RelativeRule
from watchdog.judge import counts, noise, refspread, stats
from watchdog.judge.context import EvalContext, inconclusive, paired
from watchdog.judge.series import Series
from watchdog.model import Direction, RuleOutcome, RuleResult, Version


class ReferenceKind(StrEnum):
    """What V2 is compared with (journaled as the evidence's ``against``)."""

    LIVE_V1 = "live_v1"  # live V1 at the same instants, while it serves
    BASELINE = "baseline"  # V1's stored baseline
    BASELINE_REBASED = "baseline_rebased"  # the baseline moved to V1's last live level

    @property
    def label(self) -> str:
        """How a summary names it: "live V1", "baseline", "rebased baseline"."""
        return {"live_v1": "live V1", "baseline": "baseline",
                "baseline_rebased": "rebased baseline"}[self.value]


@dataclass(frozen=True)
class Reference:
    kind: ReferenceKind
    value: float
    se: float
    n: int
    note: str = ""
    paired: np.ndarray | None = None  # V2's samples at V1's instants (live_v1 only)
    sd: float = 0.0  # V1's noise per sample (live_v1 only)
    level: float = math.nan  # V1's own live level (live_v1 only; value may be the baseline)
    # how far V1's level moves over time (refspread.py): the uncertainty of a reference
    # taken at another time than V2's window (baseline kinds only)
    spread: float = 0.0

    @property
    def live(self) -> bool:
        """Live V1 at V2's instants (not a reference from another time)."""
        return self.kind is ReferenceKind.LIVE_V1


def small_share_reference(rule: RelativeRule, ctx: EvalContext, level: float,
                           v1: np.ndarray) -> float | None:
    """The stored baseline's level, where it should replace live V1's, else None.

    A p95 of the few requests a small share serves reads low (an order statistic of a
    small sample). While V1 serves less than V2 (stages above 50 %), live V1's level of
    a ``per_request`` metric is therefore biased towards "better" and V2 looks worse
    than it is; V1's stored baseline (captured at full traffic) is the reference where it
    is worse than live V1. Like a rebased baseline, this only ever relaxes the limit.
    """
    share = ctx.traffic_percent
    spec = ctx.module.metrics[rule.metric]
    higher = spec.direction is not Direction.LOWER_IS_WORSE
    small = spec.per_request and share is not None and share > 50.0
    # a count of a few events a window (mostly zeros: thin traffic) reads as low as 0
    # (a parse rate as high as 1) for minutes by chance; its stored baseline says what
    # V1's rate really is
    sparse = rule.noise == "binomial" and len(v1) > 0 \
        and np.count_nonzero(counts.failures(v1, higher) == 0) >= counts.SPARSE_ZEROS * len(v1)
    if not small and not sparse:
        return None
    baseline = ctx.baselines.get(rule.metric)
    if baseline is None or baseline.expired(ctx.now):
        return None
    value = baseline_level(baseline)[0]
    return value if (value > level) == higher and value != level else None


def reference_for(rule: RelativeRule, ctx: EvalContext, start: float,
               width: float) -> Reference | RuleResult:
    v1s = ctx.series.get(Version.V1, rule.metric)
    # live V1 counts only at the same instants as V2's samples: V1 that stopped serving
    # (the 100 % stage) or has gaps is never compared with V2 from another time
    v2, v1 = paired(ctx, rule.metric, start)
    floor = ctx.module.metrics[rule.metric].noise_floor
    n_v2 = ctx.series.get(Version.V2, rule.metric).count(start, ctx.now)
    # live V1 is the reference only where it covers at least half of V2's window (not
    # V1's last few samples before it stopped serving), unless it is the only one: a rule
    # against live V1 judges V2 at the instants V1 covers (a scrape gap of V1's)
    if rule.against != "baseline" and len(v1) >= rule.min_samples \
            and (2 * len(v1) >= n_v2 or rule.against == "live"):
        if rule.test == "none":
            return Reference(ReferenceKind.LIVE_V1, stats.aggregate(v1, rule.aggregate), 0.0,
                             len(v1), paired=v2)
        sd1 = noise.measured(ctx, Version.V1, rule.metric,
                             ctx.now - max(ctx.noise_window, width), v1, floor)
        est = rule.estimator
        level = stats.location(v1, sd1, est)
        stored = small_share_reference(rule, ctx, level, v1)
        note = "" if stored is None else (
            f"V1's level {level:.4g} reads better than its stored baseline {stored:.4g} "
            f"(V1 serves the smaller share, or its count is mostly zeros), which is the "
            f"reference")
        return Reference(ReferenceKind.LIVE_V1, level if stored is None else stored,
                         stats.standard_error(sd1, len(v1), est), len(v1), note, paired=v2,
                         sd=sd1, level=level)
    if rule.against == "live":
        retired = _v1_retired(ctx, v1s, start)
        if retired is not None:
            # V2 serves everything: there is no control group left for this rule. That is
            # not missing data, so it does not hold the rollout.
            return inconclusive(rule, retired, RuleOutcome.INAPPLICABLE)
        return inconclusive(rule, f"{len(v1)} live V1 samples in window, need "
                                  f"{rule.min_samples}", n_v1=len(v1))
    baseline = ctx.baselines.get(rule.metric)
    if baseline is None:
        return inconclusive(rule, "no stored V1 baseline")
    if baseline.expired(ctx.now):
        return inconclusive(rule, f"stored baseline #{baseline.id} has expired")
    if rule.test == "none":
        value = baseline.stat(rule.aggregate)
        se = 0.0
    else:
        value, se = baseline_level(baseline)
    spread = refspread.level_spread(ctx, rule.metric) if rule.test == "sequential" else 0.0
    last = v1s.last_time(ctx.now)
    if last is None or ctx.now - last > ctx.drift_lookback:
        return Reference(ReferenceKind.BASELINE, value, se, baseline.count, spread=spread)
    n, sd1, level = _last_live(ctx, rule.metric, last, floor)
    if n < rule.min_samples or value == 0:
        return Reference(ReferenceKind.BASELINE, value, se, baseline.count, spread=spread)
    drift = level / value - 1
    if rule.drift_guard is not None and abs(drift) > rule.drift_guard:
        return inconclusive(rule, f"V1 drifted {drift:+.1%} from its stored baseline "
                                  f"({level:.4g} vs {value:.4g}); baseline not trusted",
                            drift=round(drift, 4))
    higher = ctx.module.metrics[rule.metric].direction is not Direction.LOWER_IS_WORSE
    if (level > value) != higher:
        # V1 was doing better than its baseline: keep the baseline (never a stricter limit)
        return Reference(ReferenceKind.BASELINE, value, se, baseline.count,
                         f"V1's last live level {level:.4g} ({drift:+.1%}) kept the baseline",
                         spread=spread)
    note = (f"baseline {value:.4g} rebased on V1's last live level {level:.4g} "
            f"({drift:+.1%}, {ctx.now - last:g}s ago)")
    return Reference(ReferenceKind.BASELINE_REBASED, level, stats.standard_error(sd1, n), n,
                     note, spread=spread)


def _last_live(ctx: EvalContext, metric: str, last: float, floor: float
               ) -> tuple[int, float, float]:
    """V1's samples over the noise window up to its last one (at ``last``): how many, their
    noise and their level, once a tick (the rules on the metric and their windows share it)."""
    key = ("last_live", metric, last, floor)
    found = ctx.memo.get(key)
    if found is None:
        recent = ctx.series.get(Version.V1, metric).since(last - ctx.noise_window, last)
        sd1 = noise.window_sd(recent, recent, floor)
        found = ctx.memo[key] = (len(recent), sd1, stats.location(recent, sd1))
    return found


@functools.lru_cache(maxsize=64)
def baseline_level(baseline: Baseline) -> tuple[float, float]:
    """The stored baseline's level and its standard error (computed once per baseline)."""
    values = baseline.values()
    sd_b = stats.noise_sd(values) if len(values) >= 3 else baseline.stddev
    value = stats.location(values, sd_b) if len(values) else baseline.mean
    return value, baseline.stddev / math.sqrt(max(baseline.count, 1))


def _v1_retired(ctx: EvalContext, v1s: Series, start: float) -> str | None:
    """Why V1 no longer serves, in the words of what was seen: V2 has all the traffic, or
    V1 stopped reporting (not a gap); None while it serves."""
    share = ctx.traffic_percent
    if share is not None and share >= 100.0:
        return "V1 no longer serves (V2 has all traffic); a rule against live V1 does not apply"
    last = v1s.last_time(ctx.now)
    if last is not None and last > start:
        return None
    since = "no V1 samples at all" if last is None else f"no V1 sample since t={last:g}"
    at = "" if share is None else f" while V2 has {share:g} % of traffic"
    return (f"V1 stopped reporting ({since}{at}): taken as V1 no longer serving; a rule "
            f"against live V1 does not apply")
