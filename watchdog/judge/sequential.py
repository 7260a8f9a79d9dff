"""A decision valid under continuous monitoring: a one-sided mixture SPRT.

Question: is V2 worse than its reference by more than a tolerance? With ``d_i`` the
per-sample differences V2 - reference in the worse direction (sampled at the same
instants, or against a stored level) and ``tol`` the tolerance in the same units, the
**null** is "the mean excess ``delta = E[d] - tol`` is <= 0" (V2 within tolerance); a
**rollback** needs evidence against it.

The statistic (Robbins' normal mixture; Johari et al. 2017, "Always valid inference";
Howard et al. 2021, "Time-uniform, nonparametric, nonasymptotic confidence sequences"):
with ``S = sum(d_i - tol)`` over the ``n`` samples so far, ``m = S / n`` and
``v = LRV / n`` the variance of ``m`` (LRV: the long-run variance per sample from
``hac.estimate``, autocorrelation included), the likelihood ratio of drift ``delta``
against 0, ``exp(delta m / v - delta^2 / (2 v))``, mixed over a half-normal
``delta ~ N+(0, tau^2)``, is

    Lambda = 2 / sqrt(1 + tau^2 / v) * exp(b^2 / 2) * Phi(b),   b = m tau / sqrt(v (v + tau^2)).

**What is guaranteed.** If the ``d_i - tol`` are independent normal with a known variance
and a mean <= 0, each component ``exp(delta S / s^2 - n delta^2 / (2 s^2))``, ``delta >= 0``,
is a nonnegative supermartingale, so is the mixture, and by Ville's inequality
``P(Lambda_n >= 1 / alpha for some n) <= alpha``: the probability of ever crossing, over
the whole rollout and however often one looks (every sample, every tick, at random
times), is at most ``alpha``. Below the boundary (V2 better than ``tol``) it is smaller.

**What is approximate.** (1) The variance is estimated, not known: it is re-estimated at
every look from everything seen (a plug-in), which is valid as the samples grow
(asymptotic confidence sequences, Waudby-Smith et al. 2021) but can read too small at
the start, most of all on autocorrelated series. :func:`evidence` therefore takes the
lag-1 autocorrelation RHO_MARGIN standard errors above its estimate (which costs little
once n is large: the margin shrinks as 1 / sqrt(n)), and a crossing also needs
MIN_EFFECTIVE_N effective samples (counted with the margin: on white noise the first
crossing comes at about 13 samples however large the excess; a cost in delay the
property test's bound was bought with).
(2) Autocorrelated or heavy-tailed samples are not normal: the sum of a stationary,
weakly dependent series behaves like a Brownian motion with the long-run variance (a
functional central limit theorem), which the HAC estimate supplies; for short windows of
a very persistent series (phi >= 0.95, wander slower than the rollout) it does not hold.
(3) The reference level is taken as exact (a stored baseline) or its noise is inside
``d_i`` (paired differences with live V1). ``tests/test_judge_sequential.py`` measures the
false-crossing rate on simulated healthy streams at the boundary (white, AR(1) up to
phi 0.9, t with 3 degrees of freedom), looked at every sample: at most ``alpha`` plus a
Monte-Carlo margin.

Choosing ``tau``: the mixture is most sensitive to excesses of about ``tau``; take it near
the smallest excess over the tolerance that must be caught fast (e.g. half the tolerance).

The state (:class:`SequentialState`) is plain floats: it goes into a checkpoint as JSON
and comes back with :meth:`SequentialState.from_json`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from typing import Any

import numpy as np

from watchdog.errors import WatchdogError
from watchdog.judge import hac

MIN_EFFECTIVE_N = 5.0  # no crossing before the variance rests on this many effective samples
RHO_MARGIN = 1.5  # the evidence's autocorrelation is taken this many standard errors high
_LOG2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class SequentialStateError(WatchdogError):
    """A stored sequential-test state is malformed (a checkpoint from elsewhere)."""


class Look(StrEnum):
    """What one look says."""

    CROSSED = "crossed"  # evidence that V2 is worse than tolerance: roll back
    CONTINUE = "continue"  # no such evidence yet
    WARMING = "warming"  # too few effective samples for the variance to be trusted


@dataclass(frozen=True)
class SequentialState:
    """The cumulative evidence at the last look; floats only (JSON in a checkpoint)."""

    looks: float = 0.0
    n: float = 0.0  # samples in the evidence
    excess_sum: float = 0.0  # S = sum(d_i - tol)
    variance: float = 0.0  # variance of S: n * long-run variance per sample
    log_lr: float = 0.0  # log Lambda at the last look (0 with no evidence)
    max_log_lr: float = 0.0  # the largest log Lambda at any look that counted

    def to_json(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Any) -> SequentialState:
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or set(data) != set(names):
            raise SequentialStateError(f"sequential state needs exactly the keys {names}")
        values = {}
        for name in names:
            v = data[name]
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise SequentialStateError(f"sequential state: {name} must be a finite number")
            values[name] = float(v)
        return cls(**values)


@dataclass(frozen=True)
class Evidence:
    """The cumulative evidence of one look, from the differences seen so far."""

    excess_sum: float  # sum(d_i - tol)
    n: float
    long_run_var: float  # per sample, autocorrelation included (cautious, see the module)
    effective_n: float  # with the margin: n / 5 at n = 5, n / 1.8 at n = 30 on white noise


def evidence(differences: np.ndarray, tolerance: float,
             rho_margin: float = RHO_MARGIN) -> Evidence | None:
    """The evidence in ``differences`` (V2 - reference, worse direction positive) against
    "within ``tolerance``"; None below 3 samples."""
    est = hac.estimate(differences, rho_margin=rho_margin)
    if not est.n >= hac.MIN_SAMPLES or math.isnan(est.se_of_mean):
        return None
    return Evidence((est.location - tolerance) * est.n, float(est.n),
                    est.se_of_mean ** 2 * est.n, est.effective_n)


def threshold(alpha: float) -> float:
    """log(1 / alpha): the log-likelihood-ratio boundary."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), not {alpha}")
    return -math.log(alpha)


def _log_phi(b: float) -> float:
    """log of the standard normal distribution function, finite far into the left tail."""
    if b > -30.0:
        return math.log(0.5 * math.erfc(-b / math.sqrt(2.0)))
    return -0.5 * b * b - math.log(-b) - _HALF_LOG_2PI  # Mills' ratio


def log_mixture_lr(excess_sum: float, n: float, long_run_var: float, tau: float) -> float:
    """log Lambda for ``S = excess_sum`` over ``n`` samples with per-sample long-run
    variance ``long_run_var`` and half-normal mixing scale ``tau`` (see the module)."""
    if n <= 0 or not long_run_var > 0 or not tau > 0:
        return 0.0
    # in units of the mean's standard error: the statistic is scale-free, and products of
    # two tiny (or huge) variances would underflow (overflow) for metrics near +-1e-100
    sd = math.sqrt(long_run_var) / math.sqrt(n)
    m = excess_sum / n / sd
    t = tau / sd
    ratio = t * t
    b = m * t / math.sqrt(1.0 + ratio)
    if b > 30.0:
        return _LOG2 - 0.5 * math.log1p(ratio) + 0.5 * b * b
    return _LOG2 - 0.5 * math.log1p(ratio) + 0.5 * b * b + _log_phi(b)


def look(state: SequentialState, excess_sum: float, n: float, long_run_var: float,
         tau: float, alpha: float, effective_n: float | None = None,
         min_effective_n: float = MIN_EFFECTIVE_N) -> tuple[SequentialState, Look]:
    """One look at the cumulative evidence: ``excess_sum = sum(d_i - tol)`` over ``n``
    samples, ``long_run_var`` per sample (``hac.estimate(d).long_run_sd ** 2``), and the
    estimate's ``effective_n`` (default ``n``). Returns the new state and what it says.

    Once crossed, the state stays crossed (``max_log_lr`` never falls): a rollback
    decided is not undone by later samples.
    """
    log_lr = log_mixture_lr(excess_sum, n, long_run_var, tau)
    counts = (n if effective_n is None else effective_n) >= min_effective_n
    best = max(state.max_log_lr, log_lr) if counts else state.max_log_lr
    new = SequentialState(state.looks + 1.0, float(n), float(excess_sum),
                          float(n * long_run_var) if long_run_var > 0 else 0.0, log_lr, best)
    if best >= threshold(alpha):
        return new, Look.CROSSED
    return new, (Look.CONTINUE if counts else Look.WARMING)


def look_at(state: SequentialState, ev: Evidence | None, tau: float, alpha: float,
            min_effective_n: float = MIN_EFFECTIVE_N) -> tuple[SequentialState, Look]:
    """:func:`look` with an :class:`Evidence` (None: nothing to judge yet, warming)."""
    if ev is None:
        return state, Look.CROSSED if crossed(state, alpha) else Look.WARMING
    return look(state, ev.excess_sum, ev.n, ev.long_run_var, tau, alpha, ev.effective_n,
                min_effective_n)


def crossed(state: SequentialState, alpha: float) -> bool:
    return state.max_log_lr >= threshold(alpha)
