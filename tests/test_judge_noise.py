"""V2's noise for ``per_request`` metrics: its own, at its current share, pooled with V1's.

noise.v2_noise: a few near-equal V2 samples early in a stage must not read as almost
no noise, and samples from another stage (another share, another noise) must not blur the
current one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module, RelativeRule
from watchdog.judge.context import EvalContext
from watchdog.judge.noise import SHARE_PRIOR
from watchdog.judge.relative import evaluate_relative
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Version

GRID = np.arange(-300.0, 31.0, 10.0)


def _module(per_request: bool) -> Module:
    module = load_default_rules().for_module("checkout")
    metric = module.metrics["error_rate"].model_copy(update={"per_request": per_request})
    return module.model_copy(update={"metrics": {**module.metrics, "error_rate": metric}})


def _error_rule(module: Module) -> RelativeRule:
    rule = next(r for r in module.rules if r.name == "error_rate_regression")
    assert isinstance(rule, RelativeRule)
    return rule


def _context(module: Module, v2: list[float], share: float | None) -> EvalContext:
    # V1 at ~1,900 requests a window, 0.5 %: binomial noise 0.0016 a sample
    rng = np.random.default_rng(7)
    v1 = np.clip(rng.normal(0.005, 0.0016, len(GRID)), 0, None)
    t2 = GRID[GRID >= 0][: len(v2)]
    store = SeriesStore({
        (Version.V1, "error_rate"): Series(GRID, v1),
        (Version.V2, "error_rate"): Series(t2, np.asarray(v2)),
        (Version.V1, "latency_p95_ms"): Series(GRID, np.full(len(GRID), 180.0)),
        (Version.V2, "latency_p95_ms"): Series(t2, np.full(len(t2), 180.0)),
    })
    return EvalContext(module, float(t2[-1]), 0.0, store, {}, traffic_percent=share,
                       stage_started_at=0.0)


def test_three_near_equal_samples_do_not_read_as_noiseless() -> None:
    # two errors in each of three windows of ~100 requests (a 5 % share): the exact
    # Poisson tail of 6 events where 2.4 are expected at the 0.8 % limit is p=0.03
    cluster = [0.0198, 0.0211, 0.0202]
    alone = evaluate_relative(_error_rule(_module(False)), _context(_module(False), cluster, 5))
    pooled = evaluate_relative(_error_rule(_module(True)), _context(_module(True), cluster, 5))
    assert alone.breached is True and alone.evidence["z"] > 5  # the old, overconfident z
    assert pooled.breached is False and pooled.evidence["z"] < 3
    # the noise it used is what V1's implies at a 5 % share (binomial at the limit), the
    # three samples' own being worth 2 of SHARE_PRIOR + 2
    implied = 0.0016 * math.sqrt(95 / 5) * math.sqrt(0.008 * 0.992 / (0.005 * 0.995))
    se = pooled.evidence["se"]
    assert se == pytest.approx(implied * math.sqrt(SHARE_PRIOR / (SHARE_PRIOR + 2))
                               / math.sqrt(3 * 0.95), rel=0.25)


def test_without_a_share_the_noise_is_v2s_own() -> None:
    cluster = [0.0198, 0.0211, 0.0202]
    module = _module(True)
    judged = evaluate_relative(_error_rule(module), _context(module, cluster, None))
    assert judged.breached is True


def test_a_clear_regression_is_still_found_within_the_first_minute() -> None:
    # 3 % at a 5 % share: three errors a window, six windows
    module = _module(True)
    judged = evaluate_relative(_error_rule(module),
                               _context(module, [0.03, 0.029, 0.032, 0.028, 0.031, 0.03], 5))
    # (four windows: the first half of V2's life is left out while it may settle; 12
    # events where 2.6 are expected at the 0.66 % limit, counted exactly)
    assert judged.breached is True and judged.evidence["z"] > judged.evidence["z_critical"] + 0.3
