"""The rule-test file: immutable models, validated with the line of every error.

    rule_files: [../default.yaml]      # relative to this file, globs allowed (none: defaults)
    evaluation_interval: 10s           # default: the module's interval
    tests:
      - name: latency regression rolls back
        module: checkout
        interval: 10s                  # overrides evaluation_interval for this test
        series_start: 0s               # time of the first input value (rollout starts at 0)
        input_series:
          - series: latency_p95_ms{version="v1"}
            values: "180x90"
          - series: latency_p95_ms{version="v2"}
            values: "180x30 250x60"
        baseline:                      # stored V1 baselines, per metric, one of:
          latency_p95_ms: {values: "180x100"}            # samples (series notation)
          error_rate: {capture: {from: 0s, to: 5m}}      # the v1 input series over a window
          throughput_rps: {count: 200, mean: 50, stddev: 2}  # a summary
        plan: {stages: [25, 100], hold: 5m}              # merged over the module's plan
        alert_rule_test:
          - {eval_time: 6m, rule: latency_p95_regression, exp_state: firing}
        decision_test:
          - {eval_time: 7m, exp_action: rollback, exp_traffic_percent: 0,
             exp_rule: latency_p95_regression}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from watchdog.durations import parse_duration


def _signed_duration(value: object) -> float:
    """A duration that may be negative: ``-30m``, ``-1800``, ``10m``."""
    if isinstance(value, str) and value.strip().startswith("-"):
        return -parse_duration(value.strip()[1:])
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return float(value)
    return parse_duration(value)


def _text(value: object) -> object:
    """``values: 180`` (a YAML number) is the one-sample series "180"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
PositiveDuration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
SignedDuration = Annotated[float, BeforeValidator(_signed_duration)]
Values = Annotated[str, BeforeValidator(_text)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class InputSeries(Frozen):
    series: Name
    values: Values


class Window(Frozen):
    from_: SignedDuration = Field(alias="from")
    to: SignedDuration

    @model_validator(mode="after")
    def _order(self) -> Window:
        if self.from_ >= self.to:
            raise ValueError(f"from ({self.from_:g}s) must be before to ({self.to:g}s)")
        return self


class BaselineSpec(Frozen):
    """A stored V1 baseline for one metric: samples, a capture window, or a summary."""

    values: Values | None = None
    capture: Window | None = None
    count: int | None = Field(default=None, ge=1)
    mean: float | None = None
    stddev: float | None = Field(default=None, ge=0)
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    min: float | None = None
    max: float | None = None

    def summary_given(self) -> bool:
        return any(getattr(self, f) is not None for f in
                   ("count", "mean", "stddev", "p50", "p90", "p95", "p99", "min", "max"))

    @model_validator(mode="after")
    def _one_source(self) -> BaselineSpec:
        given = [self.values is not None, self.capture is not None, self.summary_given()]
        if sum(given) != 1:
            raise ValueError("give exactly one of: values (samples in series notation), "
                             "capture (from/to over the v1 input series), or a summary "
                             "(count and mean, optionally stddev, p50, p90, p95, p99, min, max)")
        if self.summary_given() and (self.count is None or self.mean is None):
            raise ValueError("a summary baseline needs count and mean")
        return self


class AlertRuleTest(Frozen):
    eval_time: Duration
    rule: Name
    exp_state: Literal["inactive", "pending", "firing"]


class DecisionTest(Frozen):
    """The last decision at or before ``eval_time``; ``none``: nothing after the start."""

    eval_time: Duration
    exp_action: Literal["advance", "hold", "rollback", "promote", "pause", "resume", "abort",
                        "step_back", "approve", "none"]
    exp_traffic_percent: float | None = Field(default=None, ge=0, le=100)
    exp_rule: Name | None = None

    @model_validator(mode="after")
    def _none_alone(self) -> DecisionTest:
        if self.exp_action == "none" and (self.exp_traffic_percent is not None
                                          or self.exp_rule is not None):
            raise ValueError("exp_action: none (no decision) takes no exp_traffic_percent "
                             "or exp_rule")
        return self


class RuleTestCase(Frozen):
    name: str = ""
    module: Name
    interval: PositiveDuration | None = None
    series_start: SignedDuration = 0.0
    input_series: list[InputSeries] = Field(default_factory=list)
    baseline: dict[str, BaselineSpec] = Field(default_factory=dict)
    plan: dict[str, Any] | None = None
    alert_rule_test: list[AlertRuleTest] = Field(default_factory=list)
    decision_test: list[DecisionTest] = Field(default_factory=list)

    @model_validator(mode="after")
    def _expects(self) -> RuleTestCase:
        if not self.alert_rule_test and not self.decision_test:
            raise ValueError("a test needs at least one alert_rule_test or decision_test")
        return self


class RuleTestFile(Frozen):
    rule_files: list[Name] | None = None
    evaluation_interval: PositiveDuration | None = None
    tests: list[RuleTestCase] = Field(min_length=1)
