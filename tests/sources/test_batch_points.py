"""The batched read's arrays (sources/batch.py ``GridSeries``, numpy) hold exactly the
points the per-point Python loop it replaced gave: ``(round(base + i * step, 3), v)`` for
each value that is not NaN (+inf kept: the source drops it later, with the points outside
the fetched window, ``GridSeries.within``). A speed change only: this pins the outputs,
bit for bit, on whole-second grids and on grids with fractional offsets."""

from __future__ import annotations

import math
import random
from array import array

import numpy as np

from watchdog.sources.batch import GridSeries


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
        series = GridSeries.of({}, base, step, values)
        got, want = series.points, loop(base, step, values)
        assert got == want
        assert all(type(t) is float and type(v) is float for t, v in got)
        assert [math.copysign(1, v) for _, v in got] == [math.copysign(1, v) for _, v in want]
        assert series.t.dtype == np.float64 and series.v.dtype == np.float64
        # what the source keeps of them: finite points in (start, end]
        times = [t for t, _ in want] or [base]
        start, end = rng.choice(times) - rng.choice([0.0, 0.5]), rng.choice(times)
        t, v = series.within(start, end)
        kept = [(a, b) for a, b in want if math.isfinite(b) and start < a <= end]
        assert list(zip(t.tolist(), v.tolist(), strict=True)) == kept
        assert [math.copysign(1, b) for b in v.tolist()] == [math.copysign(1, b) for _, b in kept]
