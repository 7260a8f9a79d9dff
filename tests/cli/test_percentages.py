"""Issue 18, item 6: percentages one way. ``25%`` is accepted wherever a percentage is
meant (stage traffic, relative limits, growth, an absolute limit on a ratio metric); a
plain number is read in the field's own unit (a percent of traffic in stages, a fraction
elsewhere) and refused, with both spellings, wherever it could mean the other."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from watchdog.cli.main import cli
from watchdog.config.loader import load_texts
from watchdog.config.schema import AbsoluteRule, RelativeRule
from watchdog.errors import ConfigError

MODULE = """\
modules:
  - name: svc
    metrics:
      error_rate: {{direction: higher_is_worse, unit: ratio}}
      latency_ms: {{direction: higher_is_worse, unit: ms}}
    rules:
      - {{name: errors, kind: absolute, metric: error_rate, {limit}}}
      - {{name: slow, kind: relative, metric: latency_ms, max_increase: {increase}}}
    plan: {{stages: {stages}}}
"""


def load(limit: str = "above: 0.05", increase: str = "25%",
         stages: str = "[5, 25, 100]") -> dict[str, object]:
    text = MODULE.format(limit=limit, increase=increase, stages=stages)
    module = load_texts([("rules.yaml", text)]).modules["svc"]
    absolute, relative = module.rules[0], module.rules[1]
    assert isinstance(absolute, AbsoluteRule) and isinstance(relative, RelativeRule)
    return {"stages": [s.traffic for s in module.plan.stages], "above": absolute.above,
            "below": absolute.below, "increase": relative.max_increase}


def problems(**kwargs: str) -> str:
    with pytest.raises(ConfigError) as err:
        load(**kwargs)
    return "\n".join(str(i) for i in err.value.issues)


def test_stages_may_be_written_with_percent_signs() -> None:
    assert load(stages="[5%, 25%, 100%]")["stages"] == [5.0, 25.0, 100.0]
    assert load(stages="[0.5%, 25, 100%]")["stages"] == [0.5, 25.0, 100.0]
    assert load(stages="[{traffic: 10%, hold: 1m}, 100%]")["stages"] == [10.0, 100.0]


def test_an_absolute_limit_on_a_ratio_metric_takes_a_percentage() -> None:
    assert load(limit="above: 5%")["above"] == pytest.approx(0.05)
    assert load(limit="below: 0.5%")["below"] == pytest.approx(0.005)
    assert load(limit="above: 0.05")["above"] == 0.05


def test_plain_numbers_that_could_mean_the_other_are_refused_with_both_spellings() -> None:
    text = problems(increase="25")
    assert "rules.yaml:8" in text and "write 25% or 0.25" in text
    text = problems(limit="above: 5")
    assert "rules.yaml:7" in text and "error_rate is a ratio (0 to 1): above 5 can never " \
                                      "be reached; write 5% or 0.05" in text
    text = problems(stages="[0.05, 0.25, 1]")
    assert "rules.yaml:9" in text and "a plain number in stages is a percent of traffic" \
                                      in text and "write 0.05% or 5" in text


def test_a_percentage_on_a_metric_that_is_not_a_ratio_is_refused() -> None:
    text = MODULE.format(limit="above: 5%", increase="25%", stages="[5, 100]").replace(
        "metric: error_rate", "metric: latency_ms")
    with pytest.raises(ConfigError) as err:
        load_texts([("rules.yaml", text)])
    assert "above: 5% is a percentage, but latency_ms is in ms, not a ratio: write the " \
           "limit in ms" in "\n".join(str(i) for i in err.value.issues)


def test_check_accepts_the_issue_examples(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "rules.yaml"
    path.write_text(MODULE.format(limit="above: 5%", increase="25%", stages="[5%, 25%, 100%]"))
    done = CliRunner().invoke(cli, ["check", str(path)])
    assert done.exit_code == 0, done.output
