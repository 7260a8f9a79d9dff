"""Immutable models for modules, metrics, rules and plans, validated at load.

Field reference lives in README.md ("Rule reference"); keep the two in step.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    model_validator,
)

from watchdog.config.plancheck import plan_parts_check, plan_problems
from watchdog.config.planparts import FailurePolicy, Gate, StagePercent
from watchdog.config.stagerules import build_variants, stage_problems
from watchdog.durations import parse_duration
from watchdog.model import Direction, RuleAction, Severity


def _fraction(value: object) -> float:
    """'25%' -> 0.25; a plain number is taken as a fraction (0.25)."""
    if isinstance(value, bool):
        raise ValueError("expected a percentage such as 25% or a fraction such as 0.25")
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%"):
            raise ValueError(f"expected a percentage such as 25%, got {value!r}")
        try:
            number = float(text[:-1])
        except ValueError as err:
            raise ValueError(f"expected a percentage such as 25%, got {value!r}") from err
        result = number / 100.0
    elif isinstance(value, int | float):
        result = float(value)
        if result > 1:
            raise ValueError(f"a plain number is a fraction (0.25 = 25%); write {value}% "
                             f"or {result / 100:g} to say what you mean, got {value!r}")
    else:
        raise ValueError(f"expected a percentage such as 25%, got {value!r}")
    if not math.isfinite(result):
        raise ValueError(f"must be a finite percentage, got {value!r}")
    if result < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return result


def _traffic(value: object) -> object:
    """A stage's traffic, a percent: ``25%`` or a plain ``25``. A plain number below 1
    could be meant as a fraction (0.25 for 25 %): refused, with both spellings."""
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            return float(value.strip()[:-1])
        except ValueError:
            raise ValueError(f"expected a percentage such as 25%, got {value!r}") from None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1:
        raise ValueError(f"a plain number in stages is a percent of traffic (25 = 25%): "
                         f"write {value:g}% or {value * 100:g} to say what you mean, "
                         f"got {value!r}")
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Fraction = Annotated[float, BeforeValidator(_fraction)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$", max_length=200)]
ModuleName = Annotated[str, Field(pattern=r"^(\*|[A-Za-z_][A-Za-z0-9_.:-]*)$", max_length=200)]
# the largest magnitude any sample may have (judge/domain.py): beyond every physical
# measurement, and small enough that the judge's sums of squares of a window stay finite
VALUE_LIMIT = 1e100
Aggregate = Literal["mean", "median", "p50", "p90", "p95", "p99", "min", "max", "last"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)


class ScrapeSpec(Frozen):
    """How to read a metric straight from a version's exposition endpoint."""

    name: Name
    type: Literal["gauge", "counter", "histogram"] = "gauge"
    quantile: float | None = Field(default=None, gt=0, lt=1)
    labels: dict[str, str] = Field(default_factory=dict)
    scale: float = 1.0
    denominator: Name | None = None

    @model_validator(mode="after")
    def _check(self) -> ScrapeSpec:
        if self.type == "histogram" and self.quantile is None:
            raise ValueError("a histogram needs a quantile between 0 and 1, e.g. 0.95")
        if self.type != "histogram" and self.quantile is not None:
            raise ValueError("quantile applies only to type: histogram")
        if self.denominator is not None and self.type != "counter":
            raise ValueError("denominator applies only to type: counter (a ratio of rates)")
        return self


class MetricSpec(Frozen):
    direction: Direction
    unit: str = ""
    description: str = ""
    query: str | None = Field(default=None, min_length=1)
    scrape: ScrapeSpec | None = None
    warmup: Duration | None = None
    settle: Duration = 0.0
    settle_min: Duration = Field(default=180.0, ge=0)
    settle_with: Name | None = None
    noise_floor: float = Field(default=0.0, ge=0)
    per_request: bool = False
    # the values the metric can take (judge/domain.py): a sample outside is no measurement;
    # unset, they follow from the unit (ratio [0, 1], ms/bytes/rps >= 0, else any)
    min_value: float | None = Field(default=None, alias="min")
    max_value: float | None = Field(default=None, alias="max")

    @model_validator(mode="after")
    def _domain(self) -> MetricSpec:
        for word, bound in (("min", self.min_value), ("max", self.max_value)):
            if bound is not None and abs(bound) > VALUE_LIMIT:
                raise ValueError(f"{word} must be within +-{VALUE_LIMIT:g} (no measurement is "
                                 f"larger, and the judge's statistics must stay finite), "
                                 f"got {bound:g}")
        if self.min_value is not None and self.max_value is not None \
                and self.max_value <= self.min_value:
            raise ValueError(f"max ({self.max_value:g}) must be greater than min "
                             f"({self.min_value:g})")
        return self


class RuleBase(Frozen):
    name: Name
    metric: Name
    window: Duration = Field(default=60.0, gt=0)
    for_: Duration = Field(default=0.0, alias="for")
    keep_firing_for: Duration = 0.0
    severity: Severity = Severity.WARNING
    action: RuleAction = RuleAction.NOTIFY
    dry_run: bool = False
    min_samples: int = Field(default=3, ge=1)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    # rules by stage (config/stagerules.py): judged only at these stages (traffic
    # percentages of the plan), and fields overridden per stage
    stages: list[StagePercent] | None = Field(default=None, min_length=1)
    per_stage: dict[StagePercent, dict[str, Any]] = Field(default_factory=dict)
    _variants: dict[float, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _stage_variants(cls, data: Any, handler: ModelWrapValidatorHandler[RuleBase]
                        ) -> RuleBase:
        rule = handler(data)
        if isinstance(data, dict) and data.get("per_stage"):
            rule._variants = build_variants(type(rule), data)
        return rule

    @property
    def variants(self) -> dict[float, Any]:
        """The rule as overridden at each stage of ``per_stage`` (validated at load)."""
        return self._variants

    @model_validator(mode="after")
    def _severity_fits_action(self) -> RuleBase:
        if self.action is RuleAction.ROLLBACK and self.severity is not Severity.CRITICAL:
            raise ValueError("action: rollback needs severity: critical")
        return self


class RelativeRule(RuleBase):
    """V2 against V1: the stored baseline, live V1 over the same window, or auto."""

    kind: Literal["relative"]
    against: Literal["baseline", "live", "auto"] = "auto"
    aggregate: Aggregate = "mean"
    max_increase: Fraction | None = None
    max_decrease: Fraction | None = None
    test: Literal["none", "sequential"] = "none"
    estimator: Literal["robust", "winsorised"] = "robust"
    noise: Literal["observed", "binomial"] = "observed"
    alpha: float = Field(default=0.001, gt=0, lt=0.5)
    exact_alpha: float | None = Field(default=None, gt=0, lt=0.5)
    long_window: Duration | None = Field(default=None, gt=0)
    scan_threshold: float | None = Field(default=None, gt=0)
    min_effect: float = Field(default=0.0, ge=0)
    baseline_tolerance: Fraction | None = None
    drift_guard: Fraction | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> RelativeRule:
        if (self.max_increase is None) == (self.max_decrease is None):
            raise ValueError("give exactly one of max_increase (worse when higher) "
                             "or max_decrease (worse when lower)")
        if self.max_decrease is not None and self.max_decrease >= 1:
            raise ValueError(f"max_decrease must be below 100%, got {self.max_decrease:.0%}")
        if self.exact_alpha is not None and (self.test != "sequential"
                                             or self.noise != "binomial"):
            raise ValueError("exact_alpha applies only to test: sequential with "
                             "noise: binomial (the exact count test)")
        if self.scan_threshold is not None and self.test != "sequential":
            raise ValueError("scan_threshold applies only to test: sequential")
        if self.long_window is not None:
            if self.test != "sequential":
                raise ValueError("long_window applies only to test: sequential")
            if self.long_window <= self.window:
                raise ValueError(f"long_window ({self.long_window:g}s) must be longer than "
                                 f"window ({self.window:g}s)")
        return self


class AbsoluteRule(RuleBase):
    """V2 against fixed limits: breached above ``above`` or below ``below``."""

    kind: Literal["absolute"]
    aggregate: Aggregate = "mean"
    above: float | None = None
    below: float | None = None
    # the limits written as a percentage ("5%", read as 0.05): cross_check allows them
    # only on a ratio metric
    _percent: dict[str, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _percent_limits(cls, data: Any, handler: ModelWrapValidatorHandler[AbsoluteRule]
                        ) -> AbsoluteRule:
        written: dict[str, str] = {}
        if isinstance(data, dict):
            data = dict(data)
            for key in ("above", "below"):
                value = data.get(key)
                if isinstance(value, str) and value.strip().endswith("%"):
                    written[key] = value.strip()
                    data[key] = _fraction(value)
        rule = handler(data)
        rule._percent = written
        return rule

    @model_validator(mode="after")
    def _limits(self) -> AbsoluteRule:
        if self.above is None and self.below is None:
            raise ValueError("give above, below, or both")
        if self.above is not None and self.below is not None and self.below >= self.above:
            raise ValueError(f"below ({self.below}) must be less than above ({self.above})")
        return self


class GrowthRule(RuleBase):
    """V2 growing faster than ``max_growth_per_hour`` (relative to its level) after warm-up."""

    kind: Literal["growth"]
    max_growth_per_hour: Fraction
    window: Duration = Field(default=1200.0, gt=0)
    envelope: Duration = Field(default=300.0, gt=0)
    test: Literal["none", "sequential"] = "none"
    alpha: float = Field(default=0.001, gt=0, lt=0.5)

    @model_validator(mode="after")
    def _blocks(self) -> GrowthRule:
        if self.window < 3 * self.envelope:
            raise ValueError(f"window ({self.window:g}s) must hold at least 3 envelope blocks "
                             f"({self.envelope:g}s each)")
        return self


class IncreaseRule(RuleBase):
    """A counter of V2 increasing by more than ``above`` within ``window``."""

    kind: Literal["increase"]
    above: float = Field(ge=0)
    window: Duration = Field(default=3600.0, gt=0)
    min_samples: int = Field(default=2, ge=2)


class BurstsRule(RuleBase):
    """Runs of consecutive V2 samples far above (or below) the reference.

    A sample is "out" when it is worse than the reference (live V1 or the baseline) by
    more than ``min_effect`` and by more than ``sigmas`` of V2's own noise; a run of at
    least ``min_run`` consecutive out samples is an episode. Breached with ``episodes``
    or more within ``window``. One spike is never an episode; a burst is. With ``noise:
    binomial`` (a rate of counts), a run of a sparse count is an episode only when its
    events are too many for the limit by an exact Poisson test (one error in each of four
    thin windows is not a burst).
    """

    kind: Literal["bursts"]
    window: Duration = Field(default=600.0, gt=0)
    min_run: int = Field(default=3, ge=2)
    episodes: int = Field(default=1, ge=1)
    sigmas: float = Field(default=3.0, gt=0)
    min_effect: float = Field(default=0.0, ge=0)
    against: Literal["baseline", "live", "auto"] = "auto"
    noise: Literal["observed", "binomial"] = "observed"


Rule = Annotated[RelativeRule | AbsoluteRule | GrowthRule | IncreaseRule | BurstsRule,
                 Field(discriminator="kind")]


class Stage(Frozen):
    traffic: Annotated[float, BeforeValidator(_traffic)] = Field(gt=0, le=100)
    hold: Duration | None = None


def _stage(value: object) -> object:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"traffic": value}
    return value


class FailureLimits(Frozen):
    consecutive: int = Field(default=1, ge=1)
    cumulative: int = Field(default=3, ge=1)

    @model_validator(mode="after")
    def _order(self) -> FailureLimits:
        if self.consecutive > self.cumulative:
            raise ValueError(f"consecutive ({self.consecutive}) must not exceed "
                             f"cumulative ({self.cumulative})")
        return self


class Plan(Frozen):
    stages: list[Annotated[Stage, BeforeValidator(_stage)]] = Field(
        default_factory=lambda: [Stage(traffic=p) for p in (5, 25, 50, 75, 90, 100)],
        min_length=1)
    hold: Duration = Field(default=600.0, gt=0)
    failure_limits: FailureLimits = Field(default_factory=FailureLimits)
    max_inconclusive: Duration = Field(default=900.0, gt=0)
    on_failure: FailurePolicy = Field(default_factory=FailurePolicy)
    gates: list[Gate] = Field(default_factory=list)

    @model_validator(mode="after")
    def _increasing(self) -> Plan:
        traffic = [s.traffic for s in self.stages]
        if any(b <= a for a, b in itertools.pairwise(traffic)):
            raise ValueError(f"stages must increase strictly, got {traffic}")
        if traffic[-1] != 100:
            raise ValueError(f"the last stage must be 100 (full traffic), got {traffic[-1]}")
        if self.on_failure.to is not None and self.index_of(self.on_failure.to) is None:
            raise ValueError(f"on_failure.to: {self.on_failure.to:g} is not a stage of the "
                             f"plan (stages: {', '.join(f'{t:g}' for t in traffic)})")
        plan_parts_check(self)
        return self

    def gates_before(self, index: int) -> list[Gate]:
        """The promotion gates to pass before stepping to stage ``index``."""
        if index >= len(self.stages):
            return []
        traffic = self.stages[index].traffic
        return [g for g in self.gates if abs(g.before - traffic) <= 1e-6]

    def index_of(self, traffic: float) -> int | None:
        """The index of the stage at ``traffic`` percent, None when there is none."""
        return next((i for i, s in enumerate(self.stages)
                     if abs(s.traffic - traffic) <= 1e-6), None)

    def hold_of(self, index: int) -> float:
        stage = self.stages[index]
        return self.hold if stage.hold is None else stage.hold


class Module(Frozen):
    name: ModuleName
    description: str = ""
    interval: Duration = Field(default=10.0, gt=0)
    warmup: Duration = 0.0
    include_defaults: bool = False
    metrics: dict[Name, MetricSpec] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    plan: Plan = Field(default_factory=Plan)
    labels: dict[str, str] = Field(default_factory=dict)

    def warmup_of(self, metric: str) -> float:
        spec = self.metrics[metric]
        return self.warmup if spec.warmup is None else spec.warmup


class RulesFile(Frozen):
    modules: list[Module] = Field(min_length=1)


def cross_check(module: Module) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems that span fields: unknown metrics, duplicate rules, wrong directions."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, metric in module.metrics.items():
        # (one without a settle period of its own is allowed and has no effect: a module
        # that includes the defaults may redeclare latency without one)
        if metric.settle_with and (metric.settle_with not in module.metrics
                                   or metric.settle_with == name):
            problems.append((("metrics", name, "settle_with"),
                             f"settle_with must name another metric of the module, "
                             f"got {metric.settle_with!r}"))
    problems += stage_problems(module.rules, [s.traffic for s in module.plan.stages])
    problems += plan_problems(module)
    seen: set[str] = set()
    for i, rule in enumerate(module.rules):
        if rule.name in seen:
            problems.append((("rules", i, "name"), f"duplicate rule name {rule.name!r}"))
        seen.add(rule.name)
        spec = module.metrics.get(rule.metric)
        if spec is None:
            known = ", ".join(sorted(module.metrics)) or "none declared"
            problems.append((("rules", i, "metric"),
                             f"unknown metric {rule.metric!r} (declared metrics: {known})"))
            continue
        if isinstance(rule, AbsoluteRule):
            problems += [(("rules", i, key), text) for key, text in _ratio_limits(rule, spec)]
        if isinstance(rule, RelativeRule):
            if spec.direction is Direction.HIGHER_IS_WORSE and rule.max_decrease is not None:
                problems.append((("rules", i, "max_decrease"),
                                 f"metric {rule.metric} is higher_is_worse: use max_increase"))
            if spec.direction is Direction.LOWER_IS_WORSE and rule.max_increase is not None:
                problems.append((("rules", i, "max_increase"),
                                 f"metric {rule.metric} is lower_is_worse: use max_decrease"))
    return problems


def _ratio_limits(rule: AbsoluteRule, spec: MetricSpec) -> list[tuple[str, str]]:
    """An absolute limit written as a percentage needs a ratio metric; a plain limit above
    1 on a ratio metric was surely meant as a percentage."""
    unit = spec.unit.strip().lower()
    ratio = unit in ("ratio", "fraction") or (
        spec.min_value is not None and spec.max_value is not None
        and spec.min_value >= 0 and spec.max_value <= 1)
    found = []
    for key, value in (("above", rule.above), ("below", rule.below)):
        if value is None:
            continue
        if key in rule._percent and not ratio:
            found.append((key, f"{key}: {rule._percent[key]} is a percentage, but "
                               f"{rule.metric} is in {spec.unit or 'no unit'}, not a ratio: "
                               f"write the limit in {spec.unit or 'its own unit'} (a "
                               "percentage applies to a metric with unit: ratio)"))
        elif key not in rule._percent and ratio and value > 1:
            what = "can never be reached" if key == "above" else "is always breached"
            found.append((key, f"{rule.metric} is a ratio (0 to 1): {key} {value:g} {what}; "
                               f"write {value:g}% or {value / 100:g}"))
    return found


def merge_defaults(raw: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """A module's raw data with the default module's metrics and rules added underneath."""
    merged = dict(raw)
    metrics = dict(defaults.get("metrics") or {})
    metrics.update(raw.get("metrics") or {})
    merged["metrics"] = metrics
    own = list(raw.get("rules") or [])
    names = {r.get("name") for r in own if isinstance(r, dict)}
    # the module's own rules first, so their positions (and so their lines) are unchanged
    merged["rules"] = own + [r for r in defaults.get("rules") or [] if r.get("name") not in names]
    for key in ("interval", "warmup", "plan"):
        if key not in merged and key in defaults:
            merged[key] = defaults[key]
    return merged
