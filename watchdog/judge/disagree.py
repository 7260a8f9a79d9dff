"""References that disagree: live V1 drifted away from its stored baseline.

A relative rule compares V2 with live V1 while V1 serves. Real hosts drift: V1 may fall
from 270 to 200 ms over half an hour while V2 stays where V1 was, and V2 then reads +35 %
"against live V1" though it is exactly at V1's usual level. When live V1 and the stored
baseline disagree beyond their own noise (and by more than the rule's tolerance), the
two references tell different stories, and V2 counts as worse only if it is worse than
**both**: worse than live V1 (already found) and worse than the baseline by the rule's
baseline tolerance. Otherwise the verdict is inconclusive with that reason: the rollout
holds, and stays held no longer than ``max_inconclusive`` before the usual alert.
"""

from __future__ import annotations

import math

from watchdog.config.schema import RelativeRule
from watchdog.judge import stats
from watchdog.judge.tuning import tuning


def disagreement(rule: RelativeRule, comp: stats.Comparison, level: float, level_se: float,
                 baseline: float, baseline_se: float, baseline_n: int, k: float,
                 crit: float, higher: bool) -> str | None:
    """Why V2's breach against live V1 (``comp``) does not count, or None.

    ``level``/``level_se``: live V1's level and its standard error; ``baseline``,
    ``baseline_se``, ``baseline_n``: the stored baseline's; ``k`` the wander factor (both
    errors scale by it); ``crit`` the critical z of the breach.
    """
    if not tuning().disagreeing_references or not math.isfinite(level) or baseline == 0:
        return None
    tolerance = rule.max_increase if rule.max_increase is not None else rule.max_decrease
    assert tolerance is not None
    drift = level / baseline - 1.0
    noise = k * math.hypot(level_se, baseline_se)
    if abs(drift) <= tolerance or abs(level - baseline) <= crit * noise:
        return None  # the references agree (within the tolerance, or within their noise)
    allowed = rule.baseline_tolerance if rule.baseline_tolerance is not None else tolerance
    against = stats.compare(comp.observed, comp.se, comp.n_canary, baseline, k * baseline_se,
                            baseline_n, allowed, rule.min_effect, higher)
    if against.z > crit:
        return None  # worse than both
    return (f"references disagree: live V1 {level:.4g} is {drift:+.1%} from its stored "
            f"baseline {baseline:.4g}; V2 {comp.observed:.4g} is worse than live V1 but "
            f"not than the baseline ({against.effect:+.1%}, limit {against.limit:.4g}, "
            f"z={against.z:.2f})")
