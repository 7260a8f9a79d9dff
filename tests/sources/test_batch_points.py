"""The batched read's points (sources/batch.py ``_points``, numpy) are exactly what the
per-point Python loop it replaced gave: ``(round(base + i * step, 3), v)`` for each value
that is not NaN (+inf kept: the source drops it later). A speed change only: this pins the
outputs, bit for bit, on whole-second grids and on grids with fractional offsets."""

from __future__ import annotations

import math
import random
from array import array

from watchdog.sources.batch import _points


def loop(base: float, step: float, values: array[float]) -> tuple[tuple[float, float], ...]:
    return tuple((round(base + i * step, 3), v) for i, v in enumerate(values)
                 if not math.isnan(v))


def test_points_match_the_per_point_loop_bit_for_bit() -> None:
    rng = random.Random(19)
    for _ in range(400):
        step = rng.choice([10.0, 15.0, 1.0, 0.2, 2.5, 0.001, 7.3])
        base = rng.choice([1.7e9, 1796539370.0, 1.7e9 + 2.5, 1.7e9 + 0.1234, 0.0, 3.3])
        n = rng.randrange(0, 500)
        values = array("d", (rng.choice([math.nan, math.inf, rng.gauss(0, 1e6), 0.0, -0.0])
                             for _ in range(n)))
        got, want = _points(base, step, values), loop(base, step, values)
        assert got == want
        assert all(type(t) is float and type(v) is float for t, v in got)
        assert [math.copysign(1, v) for _, v in got] == [math.copysign(1, v) for _, v in want]
