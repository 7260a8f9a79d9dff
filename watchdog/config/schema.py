"""Immutable models for modules, metrics, rules and plans, validated at load.

Each field's description= is its entry in docs/rules-reference.md, which
watchdog/docs_gen.py generates (python -m watchdog.docs_gen); a test keeps them equal.
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
from watchdog.config.planparts import FailurePolicy, Gate, StageCheck, StagePercent
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

    name: Name = Field(description=(
        "The series name in the exposition text (for a histogram, without `_bucket`)."))
    type: Literal["gauge", "counter", "histogram"] = Field(default="gauge", description=(
        "gauge: the value (the largest of the matching series); counter: the per-second rate "
        "between two scrapes (resets handled); histogram: a quantile of the observations between "
        "two scrapes."))
    quantile: float | None = Field(default=None, gt=0, lt=1, description=(
        "The quantile of a histogram, e.g. 0.95: required for, and only for, `type: histogram`."))
    labels: dict[str, str] = Field(default_factory=dict, description=(
        "Select series by label; `{module}` and `{version}` in the values are replaced."))
    scale: float = Field(default=1.0, description=(
        "Multiply every value (e.g. `1000` for seconds -> ms)."))
    denominator: Name | None = Field(default=None, description=(
        "Counters only: the value is rate(name) / rate(denominator), e.g. failed / total."))

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
    direction: Direction = Field(description=(
        "Which way is worse. `growth_is_worse` (memory) compares like `higher_is_worse` in "
        "relative rules. A relative rule must use `max_increase` on a higher/growth metric and "
        "`max_decrease` on a lower one."))
    unit: str = Field(default="", description=(
        "For people and plots; also sets the metric's domain when `min`/`max` are not given: "
        "`ratio`/`fraction` [0, 1], `percent`/`%` [0, 100], time units (`ns`, `us`, `ms`, `s`, "
        "`seconds`, `min`, `h`, ...), sizes (`bytes`, `KiB`, `MB`, ...), rates (`rps`, `qps`, "
        "`/s`, ...) and counts (`count`, `requests`, ...) >= 0, any other unit unbounded. A "
        "percentage limit (`above: 5%`) needs a ratio metric (`unit: ratio` or `fraction`, or "
        "`min`/`max` within [0, 1])."))
    description: str = Field(default="", description=(
        "For people."))
    query: str | None = Field(default=None, min_length=1, description=(
        "PromQL for the `prometheus` source; `{module}` and `{version}` are replaced by plain "
        "text substitution (PromQL's own braces are left alone). A metric with neither `query` "
        "nor `scrape` can only come from recorded files."))
    scrape: ScrapeSpec | None = Field(default=None, description=(
        "How the `scrape` source reads the metric from each version's `/metrics`."))
    warmup: Duration | None = Field(default=None, description=(
        "V2 samples before rollout start + warmup are ignored for this metric (default: the "
        "module's `warmup`)."))
    settle: Duration = Field(default=0.0, description=(
        "A smarter warm-up for relative rules: during V2's first `settle` a breach counts only "
        "when V2 is no longer improving (see the judge's settle)."))
    settle_min: Duration = Field(default=180.0, ge=0, description=(
        "Within `settle`: for V2's first `settle_min` a breach of this metric's relative rules "
        "counts only where the trend of V2's excess rules out a warm-up that would end within "
        "`settle` (a slow warm-up and a step regression look alike at a small share until "
        "then). After it, the usual settle test. `2m` judged a regression present from V2's "
        "start a minute sooner and, on the synthetic sets, rolled back about one healthy "
        "rollout in 300 more (warm-ups that plateau). No effect without `settle`."))
    settle_with: Name | None = Field(default=None, description=(
        "Another metric's name: relative rules on this metric do not count a breach as long as V2 "
        "is more than 20 % worse than live V1 on that metric within its `settle` period (medians "
        "over the rule's window): a replica that is still slow serves fewer requests. The shipped "
        "throughput and error-rate metrics settle with latency. Burst rules on this metric hold a "
        "burst that began in V2's first minute while that holds (over the last minute). No effect "
        "while that metric has no `settle`."))
    noise_floor: float = Field(default=0.0, ge=0, description=(
        "The smallest per-sample noise (in the metric's unit) the statistical test will assume."))
    per_request: bool = Field(default=False, description=(
        "The metric summarises the requests (or messages) a version served in a window (a "
        "quantile, a ratio of counts), so its noise grows as the version's traffic share shrinks. "
        "Relative rules against live V1 then pool V2's own noise, measured at its current share "
        "only, with the noise V1's implies at V2's share (worth 5 samples). The shipped latency, "
        "error-rate and parse-rate metrics set it; throughput per replica and memory do not."))
    # the values the metric can take (judge/domain.py): a sample outside is no measurement;
    # unset, they follow from the unit (ratio [0, 1], ms/bytes/rps >= 0, else any)
    min_value: float | None = Field(default=None, alias="min", description=(
        "The smallest value the metric can take (default: from `unit`). A sample outside [min, "
        "max] is no measurement: the judge drops it as missing data, as it does NaN and +-inf. "
        "Declare `min` for a metric whose unit implies >= 0 but can go negative, such as a clock "
        "offset in `ms`. Within +-1e100."))
    max_value: float | None = Field(default=None, alias="max", description=(
        "The largest value the metric can take (default: from `unit`); see `min`. If a ratio "
        "query can exceed 1 by rounding or rate extrapolation, declare `max: 1.01`."))

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
    name: Name = Field(description=(
        "Unique within the module; an alert of that name is tracked."))
    metric: Name = Field(description=(
        "A metric the module declares (or the defaults bring)."))
    window: Duration = Field(default=60.0, gt=0, description=(
        "Which V2 samples count: those with now - window < t <= now, after warm-up (widened to "
        "(min_samples - 0.5) x interval where it could not hold `min_samples` samples)."))
    for_: Duration = Field(default=0.0, alias="for", description=(
        "The condition must hold this long before the rule fires (Prometheus' `for`)."))
    keep_firing_for: Duration = Field(default=0.0, description=(
        "Once firing, keep firing until the condition has been clear this long."))
    severity: Severity = Field(default=Severity.WARNING, description=(
        "For people and notifications; `action: rollback` requires `critical`. Severity does not "
        "enter the verdict."))
    action: RuleAction = Field(default=RuleAction.NOTIFY, description=(
        "What a firing rule does to the rollout: nothing (`notify`), stop advancing (`hold`), "
        "roll back (`rollback`)."))
    dry_run: bool = Field(default=False, description=(
        "Evaluated, tracked and journaled as an alert, but never changes a verdict."))
    min_samples: int = Field(default=3, ge=1, description=(
        "The minimum evidence: fewer V2 samples in the window is inconclusive; a relative rule "
        "also needs this many live V1 samples paired with V2's to use live V1."))
    labels: dict[str, str] = Field(default_factory=dict, description=(
        "Metadata for routing and notifications; the judge ignores it."))
    annotations: dict[str, str] = Field(default_factory=dict, description=(
        "For people: `summary`, `runbook_url`, anything else; the judge ignores it."))
    # rules by stage (config/stagerules.py): judged only at these stages (traffic
    # percentages of the plan), and fields overridden per stage
    stages: list[StagePercent] | None = Field(default=None, min_length=1, description=(
        "Judge the rule only at these stages of the plan (traffic percentages, `10` or `10%`); "
        "elsewhere it does not apply. Each must be a stage of the module's plan."))
    per_stage: dict[StagePercent, dict[str, Any]] = Field(default_factory=dict, description=(
        "Field overrides by stage, e.g. `{50: {max_decrease: 20%}}`: at 50 % the limit is 20 %, "
        "elsewhere the rule's own. Each override is validated at load as the whole rule it makes; "
        "`name`, `metric`, `kind`, `stages` and `per_stage` cannot be overridden."))
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
        """The rule as overridden at each stage of ``per_stage`` (validated at load; none
        without it: a rule without ``per_stage`` skips pydantic's private-attribute path,
        read for every rule at every tick)."""
        return self._variants if self.per_stage else {}

    @model_validator(mode="after")
    def _severity_fits_action(self) -> RuleBase:
        if self.action is RuleAction.ROLLBACK and self.severity is not Severity.CRITICAL:
            raise ValueError("action: rollback needs severity: critical")
        return self


class RelativeRule(RuleBase):
    """V2 against V1: the stored baseline, live V1 over the same window, or auto."""

    kind: Literal["relative"] = Field(description=(
        "`relative`: V2 against V1."))
    against: Literal["baseline", "live", "auto"] = Field(default="auto", description=(
        "The stored V1 baseline; live V1 over the same window; or `auto`: live V1 when it serves "
        "and has `min_samples` samples paired with V2's covering at least half of V2's window, "
        "else the baseline. `live` judges V2 at the instants live V1 covers (at least "
        "`min_samples` of them: fewer is missing data, which holds the rollout). Once V2 has all "
        "traffic, or V1 has reported nothing over the window (taken as V1 drained; the summary "
        "says which), a `live` rule does not apply: it is reported as such and does not hold the "
        "rollout."))
    aggregate: Aggregate = Field(default="mean", description=(
        "How a window is summarised with `test: none` (against a baseline, the baseline's "
        "matching figure; `last` uses its mean). Ignored by `test: sequential`, which uses "
        "`estimator`."))
    max_increase: Fraction | None = Field(default=None, description=(
        "Worse when V2 is more than this much above the reference (`100%` = twice). Exactly one "
        "of `max_increase` / `max_decrease`."))
    max_decrease: Fraction | None = Field(default=None, description=(
        "Worse when V2 is more than this much below the reference; below 100 %."))
    test: Literal["none", "sequential"] = Field(default="none", description=(
        "`none`: compare the two summaries; `sequential`: the noise-aware test (windowed z-test, "
        "optional scan)."))
    estimator: Literal["robust", "winsorised"] = Field(default="robust", description=(
        "`test: sequential`: V2's and V1's level. `robust`: the median of a window of fewer than "
        "10 samples, else a mean winsorised at 3 noise units around the median; `winsorised`: the "
        "winsorised mean from 5 samples."))
    noise: Literal["observed", "binomial"] = Field(default="observed", description=(
        "`test: sequential`: V2's noise as measured (`observed`), or, for a ratio of counts such "
        "as failed / served (`binomial`), scaled to what it would be at the limit, with exact "
        "Poisson count tests where few events are expected (the shipped error and parse rules)."))
    alpha: float = Field(default=0.001, gt=0, lt=0.5, description=(
        "False-alarm probability of one evaluation of the test."))
    exact_alpha: float | None = Field(default=None, gt=0, lt=0.5, description=(
        "`noise: binomial`: the alpha of the exact count test (evidence `poisson: 1`); default: "
        "`alpha`. The shipped error rule uses 0.0005 against `alpha: 0.0002`."))
    long_window: Duration | None = Field(default=None, gt=0, description=(
        "`test: sequential` only: also test over this longer window (small shifts need it); alpha "
        "is split between the windows. Longer than `window`."))
    scan_threshold: float | None = Field(default=None, gt=0, description=(
        "`test: sequential`: also run the sequential scan (a one-sided CUSUM of the excess over "
        "the limit) over the longest window; breached when it exceeds this. The shipped rules use "
        "7 (8 for latency, 10 for error rate)."))
    min_effect: float = Field(default=0.0, ge=0, description=(
        "The limit is at least this far from the reference, in the metric's unit (a zero baseline "
        "still gets a meaningful limit)."))
    baseline_tolerance: Fraction | None = Field(default=None, description=(
        "Used instead of `max_increase`/`max_decrease` when the reference is the stored baseline "
        "(no live V1, e.g. at 100 %), where load changes can no longer be told from regressions. "
        "Default: the rule's tolerance."))
    drift_guard: Fraction | None = Field(default=None, description=(
        "Against a baseline: if live V1 has moved more than this from its stored baseline, the "
        "rule is inconclusive (\"baseline not trusted\")."))

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

    kind: Literal["absolute"] = Field(description=(
        "`absolute`: V2 against fixed limits."))
    aggregate: Aggregate = Field(default="mean", description=(
        "How the window is summarised."))
    above: float | None = Field(default=None, description=(
        "Breached when the summary is strictly above, in the metric's unit (a percentage such as "
        "`5%` only on a ratio metric)."))
    below: float | None = Field(default=None, description=(
        "Breached when the summary is strictly below; at least one of `above`/`below`, and "
        "`below` < `above`."))
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
    """V2 growing faster than ``max_growth_per_hour`` (relative to its level) after warm-up.

    V2's growth alone (its lower envelope) counts as a leak only once it also holds over
    three times the ``window`` (a refill or a filling cache stops; until V2 has served
    that long the rule is *warming*); while V1 serves, V2 - V1 at the same instants is
    judged over the ``window`` alone.
    """

    kind: Literal["growth"] = Field(description=(
        "`growth`: leaks."))
    max_growth_per_hour: Fraction = Field(description=(
        "Growth of V2's lower envelope, as a share of its level, per hour."))
    window: Duration = Field(default=1200.0, gt=0, description=(
        "Must hold at least 3 envelope blocks (`test: sequential` judges from 4)."))
    envelope: Duration = Field(default=300.0, gt=0, description=(
        "Block length; each block contributes its minimum; at least the GC period."))
    test: Literal["none", "sequential"] = Field(default="none", description=(
        "`none`: breached above the limit (from 3 blocks); `sequential`: the slope must exceed "
        "the limit significantly at `alpha`, judged from 4 blocks."))
    alpha: float = Field(default=0.001, gt=0, lt=0.5, description=(
        "For the slope test."))

    @model_validator(mode="after")
    def _blocks(self) -> GrowthRule:
        if self.window < 3 * self.envelope:
            raise ValueError(f"window ({self.window:g}s) must hold at least 3 envelope blocks "
                             f"({self.envelope:g}s each)")
        return self


class IncreaseRule(RuleBase):
    """A counter of V2 increasing by more than ``above`` within ``window``."""

    kind: Literal["increase"] = Field(description=(
        "`increase`: counters."))
    above: float = Field(ge=0, description=(
        "Breached when the counter rose by strictly more than this within `window` (\"more than 3 "
        "connection failures in 1 hour\": `above: 3`, `window: 1h`)."))
    window: Duration = Field(default=3600.0, gt=0, description=(
        "The counter's increase is taken over this window (not cut by warm-up)."))
    min_samples: int = Field(default=2, ge=2, description=(
        "At least two samples make an increase."))


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

    kind: Literal["bursts"] = Field(description=(
        "`bursts`: runs of bad samples."))
    window: Duration = Field(default=600.0, gt=0, description=(
        "Episodes are counted within this window."))
    min_run: int = Field(default=3, ge=2, description=(
        "Consecutive out samples (each within 1.5 intervals of the previous one) that make an "
        "episode."))
    episodes: int = Field(default=1, ge=1, description=(
        "Episodes within `window` that breach the rule."))
    sigmas: float = Field(default=3.0, gt=0, description=(
        "How far out, in V2's noise units (successive differences)."))
    min_effect: float = Field(default=0.0, ge=0, description=(
        "How far out at least, in the metric's unit."))
    against: Literal["baseline", "live", "auto"] = Field(default="auto", description=(
        "As for relative rules: the reference is live V1's median over the window (or V1's sample "
        "at the same instant where that is worse), else the stored baseline's median."))
    noise: Literal["observed", "binomial"] = Field(default="observed", description=(
        "`binomial`, for a ratio of counts: where at least a third of V2's samples in the window "
        "are exactly 0 (a sparse count), a run is an episode only when its events are too many "
        "for the limit by an exact Poisson test at 0.001. One error in each of four windows of 25 "
        "requests is 4 % four times, yet no burst. The shipped error-burst rules use it."))


Rule = Annotated[RelativeRule | AbsoluteRule | GrowthRule | IncreaseRule | BurstsRule,
                 Field(discriminator="kind")]


class Stage(Frozen):
    traffic: Annotated[float, BeforeValidator(_traffic)] = Field(gt=0, le=100, description=(
        "Percentage of traffic V2 gets: `25%` or a plain `25` (a plain number below 1 is refused "
        "as ambiguous)."))
    hold: Duration | None = Field(default=None, description=(
        "How long this stage must stay healthy (default: the plan's `hold`)."))
    # before the step to this stage (issue 20 item 5; rollout/promotion.py)
    approval: bool = Field(default=False, description=(
        "Step to this stage only after a person approved it (CLI `approve`, `POST "
        "/api/modules/{m}/approve`, the web view). Ready otherwise, the rollout waits in phase "
        "`awaiting_approval`: still judged, so a failure still rolls it back, but never advanced."))
    check: StageCheck | None = Field(default=None, description=(
        "A check that must pass before the step to this stage: a command (exit status 0; argv, no "
        "shell) or a webhook (a 2xx answer); a failed check holds and is run again after its "
        "`retry`."))


def _stage(value: object) -> object:
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"traffic": value}
    return value


class FailureLimits(Frozen):
    consecutive: int = Field(default=1, ge=1, description=(
        "Roll back after this many critical verdicts in a row."))
    cumulative: int = Field(default=3, ge=1, description=(
        "Roll back after this many critical verdicts in the whole rollout (not reset by a "
        "resume); at least `consecutive`."))

    @model_validator(mode="after")
    def _order(self) -> FailureLimits:
        if self.consecutive > self.cumulative:
            raise ValueError(f"consecutive ({self.consecutive}) must not exceed "
                             f"cumulative ({self.cumulative})")
        return self


class Plan(Frozen):
    stages: list[Annotated[Stage, BeforeValidator(_stage)]] = Field(
        default_factory=lambda: [Stage(traffic=p) for p in (5, 25, 50, 75, 90, 100)],
        min_length=1, description=(
        "Traffic percentages, strictly increasing, each in (0, 100], the last exactly 100; each a "
        "number (`25`, `25%`) or a stage mapping (`{traffic: 25, hold: 12h}`)."))
    hold: Duration = Field(default=600.0, gt=0, description=(
        "How long each stage must stay healthy (unless the stage sets its own). Only observed "
        "time counts: time in which no evaluation ran counts toward no hold."))
    failure_limits: FailureLimits = Field(default_factory=FailureLimits, description=(
        "How many critical verdicts roll back."))
    max_inconclusive: Duration = Field(default=900.0, gt=0, description=(
        "Inconclusive this long without a break: journal an alert (the hold goes on)."))
    on_failure: FailurePolicy = Field(default_factory=FailurePolicy, description=(
        "What reaching the failure limits does: roll back (default), or step back a stage."))
    gates: list[Gate] = Field(default_factory=list, description=(
        "Promotion gates: success criteria checked before a stage (default before 100 %); until "
        "one is met the rollout holds there."))
    approval_reminder: Duration = Field(default=3600.0, gt=0, description=(
        "While a step waits for approval, the wait is journaled (and so notified) again this "
        "often."))

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
    name: ModuleName = Field(description=(
        "The module (a service or a component). Letters, digits, `_ . : -`; `*` is the fallback "
        "module for every module no file declares by name."))
    description: str = Field(default="", description=(
        "For people."))
    interval: Duration = Field(default=10.0, gt=0, description=(
        "How often the module is evaluated and sampled; sources query with this step. Also sets "
        "how soon missing data stops counting as warming."))
    warmup: Duration = Field(default=0.0, description=(
        "V2's first seconds after the rollout start that no rule looks at (per metric: "
        "`metrics.*.warmup`)."))
    include_defaults: bool = Field(default=False, description=(
        "Merge the shipped default metrics, rules, interval and plan under this module (own "
        "metrics and rules of the same name replace the default ones whole)."))
    metrics: dict[Name, MetricSpec] = Field(default_factory=dict, description=(
        "The metrics rules may name."))
    rules: list[Rule] = Field(default_factory=list, description=(
        "The module's rules; names must be unique within the module."))
    plan: Plan = Field(default_factory=Plan, description=(
        "The stages and how long each must be healthy."))
    labels: dict[str, str] = Field(default_factory=dict, description=(
        "Metadata for people and notifications; the judge ignores it."))

    def warmup_of(self, metric: str) -> float:
        spec = self.metrics[metric]
        return self.warmup if spec.warmup is None else spec.warmup


class RulesFile(Frozen):
    modules: list[Module] = Field(min_length=1, description=(
        "The modules this file declares; a module name may appear in only one file."))


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
