"""What the judge keeps across ticks (context.carried) changes nothing but the time taken.

V1's slow properties (its wander factor, its level spread) are read as of the last whole
``v1_step`` and keyed by the data they are computed from, so the engine computes them once
for the ticks of a step. These tests hold that: a carried value equals a computed one,
the carry is used, it holds one entry per slot, and a whole replay of a wandering
recording judges every rule the same, to the last digit of its evidence, with and
without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchdog import engine as engine_mod
from watchdog.backtest import replay
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import load_default_rules
from watchdog.engine import TickResult
from watchdog.judge import wander
from watchdog.judge.context import EvalContext, carried, fingerprint
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Version

DATA = Path(__file__).parent / "data" / "scenarios"
METRIC = "latency_p95_ms"


def _ctx(now: float, carry: dict[tuple[Any, ...], Any] | None,
         v1: np.ndarray | None = None) -> EvalContext:
    module = load_default_rules().for_module("svc")
    values = v1 if v1 is not None else 200 + np.cumsum(np.random.default_rng(1).normal(0, 5, 400))
    t1 = np.arange(-3600.0, -3600.0 + 10 * len(values), 10.0)
    store = SeriesStore({(Version.V1, METRIC): Series(t1, values)})
    return EvalContext(module, now, 0.0, store, {}, carry=carry)


def test_a_carried_value_is_computed_once_per_key() -> None:
    calls: list[int] = []
    carry: dict[tuple[Any, ...], Any] = {}

    def seven() -> float:
        calls.append(1)
        return 7.0

    for now in (10.0, 20.0, 30.0):
        assert carried(_ctx(now, carry), ("slot",), ("data", 1), seven) == 7.0
    assert len(calls) == 1
    carried(_ctx(40.0, carry), ("slot",), ("data", 2), seven)  # other data: computed
    assert len(calls) == 2
    carried(_ctx(50.0, carry), ("slot",), ("data", 1), seven)  # a slot keeps its last only
    assert len(calls) == 3
    for now in (10.0, 20.0):  # no carry: computed every time
        carried(_ctx(now, None), ("slot",), ("data", 1), seven)
    assert len(calls) == 5


def test_a_carry_holds_one_entry_per_slot() -> None:
    carry: dict[tuple[Any, ...], Any] = {}
    ctx = _ctx(10.0, carry)
    for i in range(100):
        carried(ctx, ("slot", i % 3), ("data", i), lambda i=i: float(i))
    assert len(carry) == 3


def test_fingerprints_tell_contents_apart() -> None:
    a = np.arange(10.0)
    b = a.copy()
    b[3] += 1e-12
    assert fingerprint(a) == fingerprint(a.copy()) == fingerprint(np.arange(12.0)[:10])
    assert fingerprint(a) != fingerprint(b)
    assert fingerprint(a[:9]) != fingerprint(a)


def test_the_wander_factor_is_read_as_of_the_last_whole_step() -> None:
    # V1 every 10 s from -3600 s to 490 s, an AR(1) wander: its factor is measured
    rng = np.random.default_rng(5)
    v1 = np.zeros(410)
    for i in range(1, len(v1)):
        v1[i] = 0.8 * v1[i - 1] + rng.normal(0, 18)
    v1 += 200.0
    at_420 = wander.factor(_ctx(420.0, None, v1), METRIC)
    assert at_420 > 1.5  # measured, not the white-noise default
    # at 435 s it is V1's factor up to 420 s: the sample at 430 s does not count yet...
    assert wander.factor(_ctx(435.0, None, v1), METRIC) == at_420
    later = v1.copy()
    later[403] += 25.0  # the sample at 430 s
    assert wander.factor(_ctx(435.0, None, later), METRIC) == at_420
    assert wander.factor(_ctx(480.0, None, later), METRIC) != at_420  # ...from 480 s it does
    earlier = v1.copy()
    earlier[400] += 25.0  # the sample at 400 s: within the window
    assert wander.factor(_ctx(435.0, None, earlier), METRIC) != at_420


def _wandering_recording(tmp: Path) -> Path:
    """aa-clean-1000 with a slow AR(1) level wander on each version's latency (V1 and V2
    apart), so the wander factor and the level spread are measured, not 1 and 0."""
    lines = (DATA / "aa-clean-1000.jsonl").read_text("utf-8").splitlines()
    rng = np.random.default_rng(11)
    level: dict[str, float] = {"v1": 0.0, "v2": 0.0}
    out = [lines[0]]
    for line in lines[1:]:
        s = json.loads(line)
        if s["metric"] == METRIC:
            level[s["version"]] = 0.95 * level[s["version"]] + rng.normal(0, 0.04)
            s["value"] = round(s["value"] * (1 + level[s["version"]]), 3)
        out.append(json.dumps(s))
    path = tmp / "aa-wander.jsonl"
    path.write_text("\n".join(out) + "\n", "utf-8")
    return path


def _replay(path: Path) -> list[Any]:
    seen: list[Any] = []

    def on_tick(tick: TickResult) -> None:
        if tick.verdict is None:  # the start: nothing judged
            return
        seen.append([(r.rule, r.outcome.value, r.summary, json.dumps(r.evidence, sort_keys=True,
                                                                      default=str))
                     for r in tick.verdict.results])

    result = replay.run(load_scenario(path), load_default_rules(), on_tick=on_tick)
    return [result.to_json(), seen]


def test_a_replay_judges_the_same_with_and_without_the_carry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _wandering_recording(tmp_path)
    computed: list[int] = []
    of_values = wander.of_values
    monkeypatch.setattr(wander, "of_values", lambda v: computed.append(1) or of_values(v))
    with_carry = _replay(path)
    used = len(computed)
    computed.clear()
    monkeypatch.setattr(engine_mod.Engine, "carry", lambda self, name: None)
    without = _replay(path)
    assert with_carry == without
    ticks = len(with_carry[1])
    assert ticks > 50
    # the factor of V1's window was computed about once a step (6 ticks), not every tick
    assert 0 < used < len(computed) / 3
    spreads = [e for tick in with_carry[1] for (_, _, _, e) in tick if "reference_spread" in e]
    factors = [e for tick in with_carry[1] for (_, _, _, e) in tick if "wander_factor" in e]
    assert factors and spreads, "the recording must exercise both carried properties"


def test_the_engine_keeps_one_carry_per_module() -> None:
    e = engine_mod.Engine.__new__(engine_mod.Engine)
    e._carry = {}
    assert e.carry("a") is e.carry("a") and e.carry("a") is not e.carry("b")
