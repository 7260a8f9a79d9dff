"""promtool's expanding series notation and the series selector of rule tests."""

from __future__ import annotations

import pytest

from watchdog.model import Version
from watchdog.ruletest.notation import MAX_VALUES, NotationError, expand, parse_selector


@pytest.mark.parametrize(("text", "values"), [
    ("-2+4x3", [-2.0, 2.0, 6.0, 10.0]),           # promtool's own examples
    ("1-2x4", [1.0, -1.0, -3.0, -5.0, -7.0]),
    ("1x4", [1.0] * 5),
    ("1 _x3 2", [1.0, None, None, None, 2.0]),
    ("_", [None]),
    ("180+0x2 250x1", [180.0, 180.0, 180.0, 250.0, 250.0]),
    ("0.1+0.1x3", [0.1, 0.2, 0.3, 0.4]),          # no 0.30000000000000004
    ("4.2e8 -1.5e-3 +7", [4.2e8, -0.0015, 7.0]),
    ("1e-2x2", [0.01, 0.01, 0.01]),                 # an exponent is not a step
    ("  3   4  ", [3.0, 4.0]),
    ("", []),
])
def test_expand(text: str, values: list[float | None]) -> None:
    assert expand(text) == values


@pytest.mark.parametrize(("text", "message"), [
    ("1 2 abc", "word 3 ('abc'): expected a number"),
    ("1x", "word 1 ('1x')"),
    ("1+x3", "word 1 ('1+x3')"),
    ("stale", "word 1 ('stale')"),
    ("_x", "word 1 ('_x')"),
    ("1,2", "word 1 ('1,2')"),
    ("1e400", "values must be finite"),
    ("1e308+1e308x3", "values must be finite"),
    (f"1x{MAX_VALUES + 1}", "repeat count"),
    (f"1x{MAX_VALUES // 2} 2x{MAX_VALUES // 2}", "more than"),
])
def test_expand_rejects(text: str, message: str) -> None:
    with pytest.raises(NotationError) as err:
        expand(text)
    assert message in str(err.value)


def test_selector() -> None:
    s = parse_selector('latency_p95_ms{version="v2"}')
    assert (s.metric, s.version, s.module) == ("latency_p95_ms", Version.V2, None)
    s = parse_selector(' error_rate { module = "check\\"out" , version="v1", } ')
    assert (s.metric, s.version, s.module) == ("error_rate", Version.V1, 'check"out')


@pytest.mark.parametrize(("text", "message"), [
    ("latency", "needs a version label"),
    ('latency{version="v3"}', 'version must be "v1" or "v2"'),
    ('latency{job="api",version="v1"}', "unknown label 'job'"),
    ("latency{version=v1}", "cannot read the labels"),
    ('latency{version="v1" module="a"}', "expected ','"),
    ('latency{version="v1",version="v2"}', "given twice"),
    ('{version="v1"}', "expected metric"),
    ('latency version="v1"', "labels must be written"),
])
def test_selector_rejects(text: str, message: str) -> None:
    with pytest.raises(NotationError) as err:
        parse_selector(text)
    assert message in str(err.value)
