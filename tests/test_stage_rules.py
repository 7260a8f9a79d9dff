"""Rules by stage (issue 20 item 3): a rule limited to stages, a rule overridden per stage.

The rule test rules/tests/stage_rules_test.yaml shows the same on a recording, through
the engine and the judge."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from watchdog.config.loader import load_texts
from watchdog.config.stagerules import rule_at, rules_at
from watchdog.errors import ConfigError

TEXT = """
modules:
  - name: staged
    metrics:
      error_rate: {direction: higher_is_worse}
      throughput: {direction: lower_is_worse}
    rules:
      - {name: errors, kind: absolute, metric: error_rate, above: 0.01, stages: [10],
         severity: critical, action: rollback}
      - name: slower
        kind: relative
        metric: throughput
        max_decrease: 10%
        per_stage:
          "50%": {max_decrease: 20%, window: 5m}
      - {name: always, kind: absolute, metric: error_rate, above: 0.5}
    plan: {stages: [10, 50, 100]}
"""


def rules() -> Any:
    return load_texts([("staged.yaml", TEXT)]).modules["staged"].rules


def names(found: list[Any]) -> list[str]:
    return [r.name for r in found]


def test_a_rule_limited_to_a_stage_is_judged_only_there() -> None:
    assert names(rules_at(rules(), 10.0)) == ["errors", "slower", "always"]
    assert names(rules_at(rules(), 50.0)) == ["slower", "always"]
    assert names(rules_at(rules(), 100.0)) == ["slower", "always"]


def test_an_override_applies_at_its_stage_only() -> None:
    slower = rules()[1]
    assert slower.max_decrease == pytest.approx(0.10)
    at_50 = rule_at(slower, 50.0)
    assert at_50.max_decrease == pytest.approx(0.20) and at_50.window == 300.0
    assert at_50.name == "slower"  # the same alert state carries across stages
    assert rule_at(slower, 10.0) is slower and rule_at(slower, 100.0) is slower


def test_without_a_known_stage_every_rule_is_judged_as_written() -> None:
    assert rules_at(rules(), None) == list(rules())


def test_the_star_module_copy_keeps_the_overrides() -> None:
    star = TEXT.replace("name: staged", "name: '*'")
    module = load_texts([("staged.yaml", star)]).for_module("anything")
    assert rule_at(module.rules[1], 50.0).max_decrease == pytest.approx(0.20)


@pytest.mark.parametrize(("field", "message"), [
    ("name: other", "name cannot be overridden per stage"),
    ("kind: absolute", "kind cannot be overridden per stage"),
    ("max_decrease: 150%", "per_stage.50: max_decrease must be below 100%"),
    ("tresh: 1", "per_stage.50.tresh: Extra inputs are not permitted"),
])
def test_a_bad_override_is_a_load_error(field: str, message: str) -> None:
    text = TEXT.replace("max_decrease: 20%, window: 5m", field)
    with pytest.raises(ConfigError) as err:
        load_texts([("staged.yaml", text)])
    assert message in str(err.value)
    assert "staged.yaml:14:" in str(err.value)


@given(limited=st.lists(st.sampled_from([5.0, 25.0, 50.0, 100.0]), min_size=1, unique=True),
       traffic=st.sampled_from([5.0, 25.0, 50.0, 100.0]))
def test_rules_at_matches_the_stage_list(limited: list[float], traffic: float) -> None:
    listed = ", ".join(f"{s:g}" for s in limited)
    text = f"""
modules:
  - name: m
    metrics: {{x: {{direction: higher_is_worse}}}}
    rules:
      - {{name: limited, kind: absolute, metric: x, above: 1, stages: [{listed}]}}
      - {{name: free, kind: absolute, metric: x, above: 1}}
    plan: {{stages: [5, 25, 50, 100]}}
"""
    found = names(rules_at(load_texts([("m.yaml", text)]).modules["m"].rules, traffic))
    assert found == (["limited"] if traffic in limited else []) + ["free"]


def test_one_stage_overridden_twice_is_refused() -> None:
    # 25, 25% and 25.0 name one stage: a second override silently replaced the first
    from watchdog.config.loader import load_texts
    from watchdog.errors import ConfigError

    text = ("modules:\n  - name: m\n    metrics: {lat: {direction: higher_is_worse}}\n"
            "    rules:\n      - {name: r, kind: relative, metric: lat, max_increase: 5%,\n"
            "         per_stage: {25: {max_increase: 10%}, 25%: {max_increase: 20%}}}\n"
            "    plan: {stages: [5, 25, 100], hold: 10m}\n")
    with pytest.raises(ConfigError, match=r"per_stage.25: that stage is overridden twice"):
        load_texts([("r.yaml", text)])
