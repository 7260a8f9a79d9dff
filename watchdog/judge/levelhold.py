"""Level episodes: a breach on a metric whose V1 strays must outlast one episode.

Real hosts have level episodes: the 10-minute median latency of one host rises more than
25 % above its previous hour 7-54 times a day and stays there 10-30 minutes (median
11-16), bursts of several minutes reach 2-5x the median, and demand moves from one host
to another for 20 minutes. An episode of V2's host reads, while it lasts, exactly like a
regression of the same size, and no test on a few minutes of V2 can tell them apart:
only persistence can. A regression stays; an episode ends.

So where V1's known history (its stored baseline and the live V1 since, refspread.
v1_history) shows its ``level_hold_width`` median more than ``level_hold_tolerance``
from its overall median, each rollback rule on that metric must stay breached for
``level_hold_seconds`` before its alert fires (the larger of that and the rule's own
``for``). While it waits, a clear evaluation less than ``level_hold_bridge`` after the
last breach keeps the alert pending without firing it (the breach of a regression under
this much noise flickers; alerts.step). The sign is read on the whole history, not the
last hour, so it does not come and go while an alert is pending. Where V1 never strays
that far (white noise, any steady service) nothing changes: on the synthetic sets no
verdict or delay moved. On the real-noise sets false rollbacks fell from 0.117-0.200 to
0.042 and detection from 0.66-0.68 to 0.54-0.58 (docs/judge.md).

What it assumes: V2's host has episodes like V1's, no longer than the hold; a healthy
episode that outlasts it still rolls back. It reads "the 5-minute level moves by more
than the tolerance", whatever moves it: plain per-sample noise of a quarter of the level
does too, and is held alike.

Held: relative and growth rules, which compare V2 with V1. Not held: rules whose noise
is modelled from counts (``noise: binomial``, error and parse rates: a sparse count's
5-minute median strays by chance), absolute, increase and bursts rules (a bound the
user states; their ``for`` is the user's), and rules of other actions. While a hold is
in force, missing data carries the last breach for the hold (verdict.carry_for), so a
regression that takes V2's metrics down with it still rolls back. The hold and why are
in the rule's evidence (``level_hold``, ``v1_episode``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from watchdog.config.schema import Rule
from watchdog.judge import refspread, wander
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
# the rules that compare V2 with V1 (its live samples or stored baseline, its growth);
# an absolute or increase rule states the user's own bound, and `for` is theirs to set
HELD_KINDS = frozenset({"relative", "growth"})


def hold(rule: Rule, ctx: EvalContext) -> EpisodeHold:
    """The hold on ``rule`` at this tick (NONE where it does not apply)."""
    settings = tuning()
    if not settings.level_hold or rule.action is not RuleAction.ROLLBACK \
            or rule.kind not in HELD_KINDS or getattr(rule, "noise", "observed") == "binomial":
        return NONE
    longest = excursion(ctx, rule.metric)
    if not longest > 0:
        return NONE
    return EpisodeHold(settings.level_hold_seconds, settings.level_hold_bridge, longest)


def excursion(ctx: EvalContext, metric: str) -> float:
    """V1's longest level episode in its known history: the longest run of its
    ``level_hold_width``-second medians (windows overlapping by half) more than
    ``level_hold_tolerance`` from its median, in seconds (0 when V1 never strays that
    far). Once a tick per metric, and only where a breach or a pending alert asks."""
    key = ("level_hold", metric)
    found = ctx.memo.get(key)
    if found is None:
        found = ctx.memo[key] = _longest(*refspread.v1_history(ctx, metric))
    return float(found)


def _longest(times: np.ndarray, values: np.ndarray) -> float:
    settings = tuning()
    return wander.longest_stray(times, values, settings.level_hold_tolerance,
                                settings.level_hold_width, half_overlap=True)
