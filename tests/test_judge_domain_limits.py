"""A metric's declared ``min``/``max`` in the rules YAML, and why every domain stops at
+-1e100 (``VALUE_LIMIT``): the judge's statistics stay finite for every value it admits.

The limit is the principled one of the two the issue names: no default "plausible" bound
per kind of metric (a latency over a day?) but the range where float64 arithmetic on a
window (squares of differences, their sums) cannot overflow, sqrt(1.8e308 / n) ~ 1e150
for any window, with margin; beyond every physical measurement, so it never drops a real
one. The test shows it: a judge fed values up to +-1e100 gives non-finite evidence
exactly where it does at ordinary magnitudes (a zero noise or a zero reference), and the
same judge with the limit lifted overflows at 1e160.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import watchdog.judge.domain as domain_module
from watchdog.baseline import capture
from watchdog.config.loader import load_texts
from watchdog.config.schema import VALUE_LIMIT, Module
from watchdog.errors import ConfigError, Issue
from watchdog.judge.alerts import AlertState
from watchdog.judge.domain import Domain, domain_of
from watchdog.judge.rules import EvalContext
from watchdog.judge.series import Series, SeriesStore
from watchdog.judge.verdict import judge
from watchdog.model import Version

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def metric_yaml(fields: str) -> str:
    return ("modules:\n"
            "  - name: svc\n"
            "    metrics:\n"
            "      m:\n"
            "        direction: higher_is_worse\n"
            + "".join(f"        {line}\n" for line in fields.strip().splitlines()))


def issues_of(text: str) -> list[Issue]:
    with pytest.raises(ConfigError) as caught:
        load_texts([("rules.yaml", text)])
    return caught.value.issues


def test_min_and_max_are_read_from_the_rules() -> None:
    module = load_texts([("rules.yaml", metric_yaml("unit: ms\nmin: -250\nmax: 1e6"))]
                        ).for_module("svc")
    assert domain_of(module.metrics["m"]) == Domain(-250.0, 1e6)


@pytest.mark.parametrize(("fields", "line", "message"), [
    ("min: 5\nmax: 1", 7, "modules[0].metrics.m: max (1) must be greater than min (5)"),
    ("min: 1\nmax: 1", 7, "modules[0].metrics.m: max (1) must be greater than min (1)"),
    ("max: 1e308", 6, "modules[0].metrics.m: max must be within +-1e+100"),
    ("min: -1e101", 6, "modules[0].metrics.m: min must be within +-1e+100"),
    ("unit: ms\nmax: .inf", 7, "expected a finite number, got '.inf'"),  # the YAML loader
    ("min: .nan", 6, "expected a finite number, got '.nan'"),
    ("min: low", 6, "modules[0].metrics.m.min: Input should be a valid number"),
])
def test_a_bad_min_or_max_is_reported_at_its_line(fields: str, line: int,
                                                  message: str) -> None:
    (issue,) = issues_of(metric_yaml(fields))
    assert (issue.file, issue.line) == ("rules.yaml", line)
    assert issue.message.startswith(message), issue.message


# -- the statistics stay finite up to the limit -----------------------------------------------

RULES = """
modules:
  - name: svc
    interval: 10s
    metrics:
      x: {direction: higher_is_worse}
      c: {direction: growth_is_worse}
    rules:
      - {name: rel_seq, kind: relative, metric: x, test: sequential, max_increase: 5%,
         long_window: 5m, scan_threshold: 8, severity: critical, action: rollback}
      - {name: rel_live, kind: relative, metric: x, against: live, max_increase: 5%}
      - {name: rel_base, kind: relative, metric: x, against: baseline, aggregate: p95,
         max_increase: 5%, baseline_tolerance: 25%, drift_guard: 10%}
      - {name: rel_wins, kind: relative, metric: x, test: sequential,
         estimator: winsorised, max_increase: 5%, min_effect: 1}
      - {name: abs, kind: absolute, metric: x, above: 1e99}
      - {name: bursts, kind: bursts, metric: x, min_effect: 1}
      - {name: growth, kind: growth, metric: c, max_growth_per_hour: 10%, test: sequential}
      - {name: growth_plain, kind: growth, metric: c, max_growth_per_hour: 10%}
      - {name: increase, kind: increase, metric: c, above: 5}
    plan: {stages: [10, 100]}
"""
MODULE: Module = load_texts([("limits.yaml", RULES)]).for_module("svc")
TIMES = np.arange(-1800.0, 1200.0 + 1e-9, 10.0)
Shape = Callable[[np.random.Generator, float, float], np.ndarray]
SHAPES: dict[str, Shape] = {
    "positive": lambda rng, big, small: big * (0.5 + 0.5 * rng.random(len(TIMES))),
    "negative": lambda rng, big, small: -big * (0.5 + 0.5 * rng.random(len(TIMES))),
    "alternating": lambda rng, big, small: np.resize([big, -big], len(TIMES)),
    "at_the_limit": lambda rng, big, small: np.full(len(TIMES), big),
    "big_and_small": lambda rng, big, small: np.where(rng.random(len(TIMES)) < 0.5, big,
                                                      small),
    "small": lambda rng, big, small: np.full(len(TIMES), small),
    "zero": lambda rng, big, small: np.zeros(len(TIMES)),
}


def _non_finite(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, float) and not math.isfinite(value):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _non_finite(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _non_finite(item, f"{path}[{i}]")


def non_finite_evidence(big: float, small: float) -> set[str]:
    """Where the judge's evidence is not finite, over every pair of shapes for V1 and V2
    with values up to ``big`` in magnitude, with and without a stored baseline."""
    found: set[str] = set()
    for (one, two), metric in itertools.product(itertools.product(SHAPES, repeat=2),
                                                ("x", "c")):
        rng = np.random.default_rng(1)
        v1 = Series(TIMES, SHAPES[one](rng, big, small))
        store = SeriesStore({(Version.V1, metric): v1,
                             (Version.V2, metric): Series(TIMES, SHAPES[two](rng, big, small))})
        stored = capture("svc", metric, zip(v1.t.tolist(), v1.v.tolist(), strict=True),
                         -1800.0, 0.0, "test", 0.0,
                         domain=domain_module.domain_of(MODULE.metrics[metric]))
        for baselines in ({}, {metric: stored}):
            states: dict[str, AlertState] = {}
            for now in (300.0, 600.0, 1200.0):
                ctx = EvalContext(module=MODULE, now=now, started_at=0.0,
                                  series=store.until(now), baselines=baselines,
                                  traffic_percent=50.0, stage_started_at=0.0)
                verdict, states = judge(ctx, states)
                for r in verdict.results:
                    found.update(f"{one}/{two}/{bool(baselines)}/{now:g}/{r.rule}{p}"
                                 for p in _non_finite(r.evidence, ""))
    return found


def test_the_statistics_stay_finite_for_every_value_within_the_limit() -> None:
    ordinary = non_finite_evidence(1e3, 1e-3)
    assert ordinary  # a zero noise or a zero reference: z or the effect is infinite
    assert non_finite_evidence(VALUE_LIMIT, 1.0 / VALUE_LIMIT) == ordinary


def test_beyond_the_limit_the_statistics_would_overflow(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """The limit lifted (every value admitted): 1e160 overflows the squares to inf."""
    wide = Domain(-1.7e308, 1.7e308)
    monkeypatch.setattr(domain_module, "domain_of", lambda spec: wide)
    ordinary = non_finite_evidence(1e3, 1e-3)
    assert non_finite_evidence(1e160, 1e-3) - ordinary
