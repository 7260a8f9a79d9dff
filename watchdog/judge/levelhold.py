"""Level episodes: a breach on a metric whose V1 strays must outlast one episode.

Real hosts have level episodes: the 10-minute median latency of one host rises more than
25 % above its previous hour 7-54 times a day and stays there 10-30 minutes (median
11-16), bursts of several minutes reach 2-5x the median, and demand moves from one host
to another for 20 minutes. An episode of V2's host reads, while it lasts, exactly like a
regression of the same size, and no test on a few minutes of V2 can tell them apart:
only persistence can. A regression stays; an episode ends.

So where V1's own history shows such episodes (its rolling ``level_hold_width`` median
strays more than ``level_hold_tolerance`` from its median, for any length of time), each
rollback rule on that metric must stay breached for ``level_hold_seconds`` before its alert
fires (the larger of that and the rule's own ``for``). While it waits, a clear
evaluation less than ``level_hold_bridge`` after the last breach keeps the alert pending
(the breach of a regression under this much noise flickers; see alerts.step). Where V1
never strays that far (white noise, any steady service) nothing changes, so the
synthetic figures keep their delays.

Not held: rules whose noise is modelled from counts (``noise: binomial``, error and
parse rates), whose sampling noise the test already knows, and rules of other actions.
The hold and why are in the rule's evidence (``level_hold_seconds``, ``v1_episode``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from watchdog.config.schema import Rule
from watchdog.judge import refspread
from watchdog.judge.context import EvalContext
from watchdog.judge.tuning import tuning
from watchdog.model import RuleAction


@dataclass(frozen=True)
class EpisodeHold:
    """How long a breach must persist (``seconds``, 0: no hold) and the bridge over a
    clear evaluation while it does; ``episode``: V1's longest excursion (s)."""

    seconds: float = 0.0
    bridge: float = 0.0
    episode: float = 0.0


NONE = EpisodeHold()


def hold(rule: Rule, ctx: EvalContext) -> EpisodeHold:
    """The hold on ``rule`` at this tick (NONE where it does not apply)."""
    settings = tuning()
    if not settings.level_hold or rule.action is not RuleAction.ROLLBACK \
            or getattr(rule, "noise", "observed") == "binomial":
        return NONE
    longest = excursion(ctx, rule.metric)
    if not longest > 0:
        return NONE
    return EpisodeHold(settings.level_hold_seconds, settings.level_hold_bridge, longest)


def excursion(ctx: EvalContext, metric: str) -> float:
    """V1's longest level episode in its recent history: the longest run of its
    ``level_hold_width``-second rolling medians more than ``level_hold_tolerance`` from its
    median, in seconds (0 when V1 never strays that far). Once a tick per metric."""
    key = ("level_hold", metric)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = _longest(*refspread.v1_history(ctx, metric))
    return float(found)


def _longest(times: np.ndarray, values: np.ndarray) -> float:
    settings = tuning()
    if len(values) < settings.wander_min_samples:
        return 0.0
    spacing = float(np.median(np.diff(np.asarray(times, dtype=float))))
    k = max(round(settings.level_hold_width / spacing), 1)
    if len(values) < 2 * k:
        return 0.0
    centre = float(np.median(values))
    if centre == 0:
        return 0.0
    # medians of windows half-overlapping (every k // 2 samples): cheap on long histories
    stride = max(k // 2, 1)
    rolling = np.median(np.lib.stride_tricks.sliding_window_view(values, k)[::stride], axis=1)
    out = np.abs(rolling / centre - 1.0) > settings.level_hold_tolerance
    longest = run = 0
    for flag in out.tolist():
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return ((longest - 1) * stride + k) * spacing if longest else 0.0
