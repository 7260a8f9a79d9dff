"""Tuning constants of the judge's real-noise mechanisms, in one frozen object.

Each field is named after the phenomenon it handles; ``bench/`` may sweep them with
``dataclasses.replace`` and :func:`use` (a bench-only switch: the daemon never calls it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tuning:
    # growth rules (growthref.py): a leak takes memory where it has not been before;
    # growth back to a level the host already held (a refill after a drop, caches filling
    # up to their usual size) is not a leak
    new_high_margin: float = 0.02  # V2's envelope must pass the earlier ceiling by this
    # growth rules: V1's own growth at the same instants (load, time of day) is allowed
    growth_against_v1: bool = True
    new_high: bool = True
    # growth rules: V2's envelope scatters at least as much as V1's does around a line
    # (off since the persistence horizon: on the real-noise set it cost 1 leak of 50 %/h in
    # 14 and 1 of 15 %/h for 1 false rollback fewer in 120)
    wander_floor: bool = False
    # relative rules (wander.py): standard errors of autocorrelated, wandering metrics
    wander: bool = True
    wander_span: float = 3600.0  # V1's history the wander factor is measured on (s)
    # V1's slow properties (its wander factor, its level spread: refspread.py) are read as of
    # the last whole step of this many seconds (0: as of now), and computed once for its ticks
    v1_step: float = 60.0
    wander_min_samples: int = 20  # fewer live V1 samples: the stored baseline's instead
    wander_deadband: float = 3.0  # k less this / sqrt(n): white noise's chance excess
    wander_clip: float = 5.0  # samples beyond this many robust sds are clipped first
    wander_max_factor: float = 10.0  # the factor is capped here
    wander_max_window: float = 3600.0  # a stretched long window is capped here (s)
    wander_min_effective_n: float = 6.0  # a window with fewer (n / k^2) never breaches...
    wander_full: float = 0.9  # ...unless it spans this much of wander_max_window
    # relative rules: a breach must hold over V1's own longest excursion (wander.py)
    episodes: bool = True
    # settle (warmup.py): before settle_min, a breach counts when the trend of V2's excess
    # rules out a warm-up that would end within the metric's settle period
    early_settle: bool = True
    # relative rules (disagree.py): live V1 and its baseline disagree: V2 worse than both
    disagreeing_references: bool = True
    episode_max: float = 2400.0  # the confirming window is at most this long (s)
    # growth rules (pairedgrowth.py): V2 - V1 at the same instants while V1 serves
    paired_growth: bool = True
    paired_min_n: int = 12  # fewer pairs: the paired test says nothing
    paired_min_span: float = 120.0  # nor over a shorter span (s)
    paired_min_effective_n: float = 8.0  # nor with fewer effective (HAC) samples
    paired_rho_margin: float = 1.0  # lag-1 autocorrelation raised by this many ses (hac)
    paired_rho_clip: float = 2.5  # and read off residuals clipped at this many robust sds too
    # growth rules (growthpersist.py): a leak persists; the envelope test must breach over
    # a horizon longer than healthy climbs (refills, caches filling) last, as well
    growth_persist: bool = True
    growth_persist_factor: float = 4.0  # horizon = this x the rule's window

    # relative rules (alwaysvalid.py): a breach needs the always-valid test to cross, whose
    # probability of ever crossing on a healthy V2 (at its limit) is <= av_alpha a rollout
    always_valid: bool = True
    av_alpha: float = 0.01  # per rule and rollout, split over the plan's stages
    av_tau: float = 1.0  # mixing scale, in per-sample sds of the differences
    av_grid: float = 60.0  # start points every this many seconds of a stage
    av_clip: float = 5.0  # a difference counts up to this many of its sds (spikes)
    av_first_stage: float = 0.5  # the first stage's share of av_alpha (the rest: even)

    # relative rules (refspread.py): a reference taken at another time than V2's window
    # (the stored baseline, rebased or not) is uncertain by how far V1's level moves
    ref_spread: bool = True
    ref_spread_block: float = 600.0  # V1's level is read per block this long (s)
    ref_spread_min_samples: int = 5  # a block with fewer samples is skipped
    ref_spread_min_blocks: int = 4  # fewer blocks: no spread measured (0)

    # rollback rules (levelhold.py): where V1's level has episodes, a breach must outlast one
    level_hold: bool = True
    level_hold_tolerance: float = 0.15  # V1's rolling median this far from its median...
    level_hold_width: float = 300.0  # ...over this many seconds is an episode
    level_hold_seconds: float = 900.0  # then a breach must persist this long
    level_hold_bridge: float = 120.0  # a clear evaluation this soon after a breach is bridged


_CURRENT = [Tuning()]


def tuning() -> Tuning:
    """The settings in force (the defaults unless a bench swapped them)."""
    return _CURRENT[0]


def use(settings: Tuning) -> None:
    """Swap the settings in force (bench sweeps only)."""
    _CURRENT[0] = settings
