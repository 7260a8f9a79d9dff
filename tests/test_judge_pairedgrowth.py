"""Growth rules: V2's memory against V1's at the same instants finds a leak in minutes.

The series follow the synthetic model (bench/README.md, "The model"): a 420 MB trough with
a 14.5 MB ramp over each 300 s GC period, both versions collecting at the same instants,
2 MB white noise, one sample every 10 s; V2 starts 90 MB low and catches up over its
warm-up. The real-host cases (one sample a minute, V1 and V2 wandering each on its own)
imitate the real-noise development set's memory. Each leak test also runs with the
paired test switched off (the judge before it), where the leak is not yet caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import GrowthRule, Module
from watchdog.judge import pairedgrowth
from watchdog.judge import tuning as tuning_mod
from watchdog.judge.context import EvalContext
from watchdog.judge.hac import long_run_variance
from watchdog.judge.pairedgrowth import ols_slope
from watchdog.judge.rules import evaluate
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import RuleResult, Version

MB = 1e6
METRIC = "memory_rss_bytes"


@contextmanager
def settings(**changes: object) -> Iterator[None]:
    before = tuning_mod.tuning()
    tuning_mod.use(replace(before, **changes))  # type: ignore[arg-type]
    try:
        yield
    finally:
        tuning_mod.use(before)


def _module() -> Module:
    return load_default_rules().for_module("svc")


def _rule(module: Module) -> GrowthRule:
    rule = next(r for r in module.rules if r.name == "memory_growth")
    assert isinstance(rule, GrowthRule)
    return rule


def sawtooth(t: np.ndarray) -> np.ndarray:
    return 420 * MB + 14.5 * MB * (t % 300.0) / 300.0


def synthetic(seed: int, leak_per_hour: float = 0.0, v2_level: float = 1.0,
              warm_for: float = 300.0, until: float = 3600.0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(t1, v1, t2, v2): V1 from -3600 s, V2 from 0, 10-s samples."""
    rng = np.random.default_rng(seed)
    t1 = np.arange(-3600.0, until + 1, 10.0)
    t2 = np.arange(0.0, until + 1, 10.0)
    v1 = sawtooth(t1) + rng.normal(0, 2 * MB, len(t1))
    deficit = 90 * MB * np.clip(1 - t2 / warm_for, 0, 1)
    v2 = (sawtooth(t2) * v2_level - deficit + leak_per_hour * 427.25 * MB * t2 / 3600
          + rng.normal(0, 2 * MB, len(t2)))
    return t1, v1, t2, v2


def judge(t1: np.ndarray, v1: np.ndarray, t2: np.ndarray, v2: np.ndarray, now: float,
          percent: float = 25.0) -> RuleResult:
    k1, k2 = t1 <= now, t2 <= now
    store = SeriesStore({(Version.V1, METRIC): Series(t1[k1], v1[k1]),
                         (Version.V2, METRIC): Series(t2[k2], v2[k2])})
    module = _module()
    ctx = EvalContext(module, now, 0.0, store, {}, traffic_percent=percent,
                      stage_started_at=0.0)
    return evaluate(_rule(module), ctx)


def first_breach(series: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
                 until: float, step: float = 10.0) -> float | None:
    for now in np.arange(300.0, until + 1, step):
        if judge(*series, float(now)).breached:
            return float(now)
    return None


def test_ols_slope_of_a_line() -> None:
    t = np.arange(0.0, 100.0, 10.0)
    slope, resid, sxx = ols_slope(t, 3.0 + 0.5 * t)
    assert slope == pytest.approx(0.5)
    assert np.allclose(resid, 0.0)
    assert sxx == pytest.approx(float(np.sum((t - t.mean()) ** 2)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_synthetic_leak_is_caught_within_minutes_of_warm_up(seed: int) -> None:
    series = synthetic(seed, leak_per_hour=0.47)
    with settings(paired_growth=False):
        # the envelope test needs four 5-minute blocks after warm-up: nothing by 900 s
        assert first_breach(series, 900.0) is None
    found = first_breach(series, 900.0)
    assert found is not None and found <= 700.0, found
    result = judge(*series, found)
    assert result.evidence["paired_z"] > result.evidence["paired_z_crit"]
    assert "paired_not_a_leak" not in result.evidence


def test_the_reason_says_the_paired_test_decided_where_the_envelope_test_waits() -> None:
    # 30 minutes into a leak the envelope test still waits for its persistence horizon;
    # the paired test rolls back. The reason must not read "not a leak" (it once did,
    # before a rollback): it says what the envelope test waits for and what decided
    series = synthetic(1, leak_per_hour=0.47)
    result = judge(*series, 1800.0)
    assert result.breached is True
    assert "not a leak" not in result.summary
    assert "the envelope test alone waits: V2 has grown for" in result.summary
    assert "the paired test does not: V2 - V1 at the same instants grows" in result.summary
    with settings(paired_growth=False):  # alone, the envelope test says why it waits
        alone = judge(*series, 1800.0)
    assert alone.breached is not True and "V2 has grown for" in alone.summary


def test_a_slow_leak_near_the_limit_is_not_caught_by_the_paired_test_alone() -> None:
    series = synthetic(4, leak_per_hour=0.08)  # under the 10 %/h limit
    for now in np.arange(420.0, 3601.0, 60.0):
        result = judge(*series, float(now))
        assert result.evidence.get("paired_not_a_leak") is not None or \
            "paired_z" not in result.evidence, (now, result.summary)


@pytest.mark.parametrize("seed", range(6))
def test_healthy_synthetic_memory_never_breaches(seed: int) -> None:
    """Same memory, a slightly higher level (+2 %), and a warm-up twice the rule's."""
    for series in (synthetic(seed), synthetic(seed, v2_level=1.02),
                   synthetic(seed, warm_for=600.0)):
        assert first_breach(series, 3600.0, step=30.0) is None


def test_v2_catching_up_after_a_long_warm_up_is_not_a_leak(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """V2 climbs back to V1's level for 10 minutes after the rule's warm-up: a steep,
    significant slope of V2 - V1, but to a level V1 held. Without the ceiling it breaches."""
    series = synthetic(7, warm_for=900.0)
    for now in (500.0, 600.0, 700.0, 800.0):
        result = judge(*series, now)
        assert result.breached is not True, result.summary
    monkeypatch.setattr(pairedgrowth, "ceiling", lambda *args: None)
    assert first_breach(series, 800.0) is not None


def test_at_100_percent_only_the_envelope_test_runs() -> None:
    t1, v1, t2, v2 = synthetic(8, leak_per_hour=0.47)
    keep = t1 <= 0.0  # V1 stopped serving when V2 started
    result = judge(t1[keep], v1[keep], t2, v2, 600.0, percent=100.0)
    assert result.breached is not True
    assert "paired_z" not in result.evidence


def wandering(seed: int, n: int, phi: float, sd: float) -> np.ndarray:
    """An AR(1) wander of one host's memory, as a share of its level."""
    rng = np.random.default_rng(seed)
    out = np.empty(n)
    x = 0.0
    for i in range(n):
        x = phi * x + rng.normal(0, sd)
        out[i] = x
    return out


def wandering_hosts(seed: int, now_max: float = 5400.0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real hosts: one sample a minute, V1 and V2 each wandering (lag-1 autocorrelation
    0.97, a few % of the level), V2 level-matched at its start."""
    t1 = np.arange(-3600.0, now_max + 1, 60.0)
    t2 = np.arange(0.0, now_max + 1, 60.0)
    level = 4e8
    v1 = level * (1 + wandering(seed, len(t1), 0.97, 0.006))
    w2 = wandering(seed + 1000, len(t2), 0.97, 0.006)
    v2 = level * (1 + w2 - w2[0] + (v1[60] / level - 1))
    return t1, v1, t2, v2


def paired_breaches(seeds: range) -> list[tuple[int, float]]:
    """(seed, instant) of the first paired breach on each wandering pair that has one."""
    found = []
    for seed in seeds:
        series = wandering_hosts(seed)
        for now in np.arange(600.0, 5401.0, 60.0):
            evidence = judge(*series, float(now)).evidence
            if "paired_z" in evidence and "paired_not_a_leak" not in evidence:
                found.append((seed, float(now)))
                break
    return found


def test_hosts_that_wander_on_their_own_are_not_read_as_a_leak(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A slope of V2 - V1 over a short window is then mostly wander: its HAC standard
    error says so. With the white-noise standard error (the residuals' variance over Sxx)
    one of these ten pairs breaches."""
    assert paired_breaches(range(10)) == []

    def plain(resid: np.ndarray, rho_margin: float = 0.0) -> tuple[float, float, int]:
        return float(np.dot(resid, resid)) / len(resid), 0.0, 0

    monkeypatch.setattr(pairedgrowth, "long_run_variance", plain)
    assert paired_breaches(range(10)) != []


def curved_climb(drop: float, now: float = 3600.0, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real hosts (one sample a minute): V2 - V1 climbs 70 MB over the hour, slowly at
    first, then faster (a curve, so a line leaves long runs of residuals of one sign: the
    HAC error reads it as wander); the newest V2 sample ``drop`` below its predecessor."""
    rng = np.random.default_rng(seed)
    t1 = np.arange(-3600.0, now + 1, 60.0)
    t2 = np.arange(0.0, now + 1, 60.0)
    v1 = 400 * MB + rng.normal(0, 0.3 * MB, len(t1))
    d = 20 * MB + 70 * MB * (t2 / now) ** 2 + rng.normal(0, 0.3 * MB, len(t2))
    d[-1] = d[-2] - drop
    return t1, v1, t2, v1[-len(t2):] + d


def test_one_outlying_sample_does_not_make_a_wandering_climb_a_leak() -> None:
    """One sample far off the line (here the newest, 17 MB below the one before) adds a
    large residual whose products with its neighbours have the other sign: the lag-1
    autocorrelation read off 30 residuals fell, the effective samples rose from 0.1 to
    9.7, and the paired test breached on that one look (on the real-noise set, 10 of 11
    paired false or early rollbacks traced came on such a look). The autocorrelation is read off the
    residuals clipped at ``paired_rho_clip`` robust sds too, the larger long-run variance
    kept."""
    assert judge(*curved_climb(0.0), 3600.0).evidence["paired_not_a_leak"].startswith(
        "V2 - V1 wanders")
    result = judge(*curved_climb(17 * MB), 3600.0)
    assert result.breached is not True, result.summary
    assert result.evidence["paired_effective_n"] < 8
    with settings(paired_rho_clip=0.0):
        assert judge(*curved_climb(17 * MB), 3600.0).breached is True


@pytest.mark.parametrize("seed", range(5))
def test_on_white_noise_the_clipped_autocorrelation_costs_little(seed: int) -> None:
    """Residuals with no autocorrelation: the clipped reading agrees with the plain HAC
    one (within 25 %), so the paired test on white noise is as fast as before."""
    resid = np.random.default_rng(seed).normal(0.0, 1.0, 30)
    resid -= resid.mean()
    plain, _, _ = long_run_variance(resid, 1.0)
    assert plain <= pairedgrowth.robust_lrv(resid, 1.0, 2.5) <= 1.25 * plain
