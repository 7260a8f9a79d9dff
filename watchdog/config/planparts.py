"""Parts of a plan beyond its stages (issue 20): the failure policy (step back instead of
all the way back), promotion gates, and the approvals and checks a stage may require.

Stages are named by their traffic percentage, as the plan lists them; :class:`Plan`
(config/schema.py) checks that every percentage named here is one of its stages.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from watchdog.config.stagerules import stage_percent
from watchdog.durations import parse_duration

StagePercent = Annotated[float, BeforeValidator(stage_percent), Field(gt=0, le=100)]
Seconds = Annotated[float, BeforeValidator(parse_duration)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              allow_inf_nan=False)


class FailurePolicy(_Frozen):
    """What reaching the failure limits does: roll back to 0 % (the default), or step
    back to the previous stage (``to``: a named one) at most ``max_step_backs`` times in
    a rollout, then roll back."""

    action: Literal["rollback", "step_back"] = "rollback"
    to: StagePercent | None = None
    max_step_backs: int = Field(default=1, ge=1, le=100)

    @model_validator(mode="after")
    def _to_needs_step_back(self) -> FailurePolicy:
        if self.to is not None and self.action != "step_back":
            raise ValueError("to applies only to action: step_back")
        return self


def _fraction(value: object) -> float:
    from watchdog.config.schema import _fraction as fraction  # one spelling of "25%"

    return fraction(value)


Fraction = Annotated[float, BeforeValidator(_fraction)]


class Gate(_Frozen):
    """A promotion gate (success criterion): checked over ``window`` before the step to
    the stage ``before`` (default 100 %); until it is met the rollout holds there.

    Either a limit on V2 alone (``at_most`` / ``at_least`` on the ``aggregate`` of its
    samples over the window, which they must cover), or a comparison with live V1
    (``compare``): ``non_inferiority`` (V2 no worse than V1 by more than ``margin``) or
    ``superiority`` (V2 better than V1 by at least ``margin``), each shown at
    ``confidence`` by a one-sided test on batch means (judge/gates.py).

    An unmet gate holds and notifies; ``on_fail: rollback`` rolls back only when the
    data shows the criterion failed (at the confidence), never while it is unsure.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$", max_length=200)]
    metric: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$", max_length=200)]
    before: StagePercent = 100.0
    window: Seconds = Field(default=3600.0, gt=0)
    aggregate: Literal["mean", "median", "p95", "p99", "max", "min"] = "mean"
    at_most: float | None = None
    at_least: float | None = None
    compare: Literal["non_inferiority", "superiority"] | None = None
    margin: Fraction = 0.0
    confidence: float = Field(default=0.95, ge=0.5, lt=1)
    min_samples: int = Field(default=10, ge=2)
    on_fail: Literal["hold", "rollback"] = "hold"
    description: str = ""

    @model_validator(mode="after")
    def _one_criterion(self) -> Gate:
        limits = self.at_most is not None or self.at_least is not None
        if limits == (self.compare is not None):
            raise ValueError("give either at_most / at_least (V2 alone) or compare "
                             "(non_inferiority or superiority against V1)")
        if self.compare is None and self.margin:
            raise ValueError("margin applies only to compare")
        if self.at_most is not None and self.at_least is not None \
                and self.at_least > self.at_most:
            raise ValueError(f"at_least ({self.at_least:g}) must not exceed at_most "
                             f"({self.at_most:g})")
        return self


class StageCheck(_Frozen):
    """A check that must pass before the step to a stage (issue 20 item 5): a command
    (exit status 0 passes; argv, no shell) or a webhook (an HTTP POST of the module and
    stage as JSON; a 2xx answer passes), within ``timeout``. A failed check holds (and
    notifies); it is run again after ``retry``."""

    command: list[Annotated[str, Field(min_length=1)]] | None = Field(default=None,
                                                                      min_length=1)
    webhook: Annotated[str, Field(pattern=r"^https?://")] | None = None
    timeout: Seconds = Field(default=60.0, gt=0, le=3600)
    retry: Seconds = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _one(self) -> StageCheck:
        if (self.command is None) == (self.webhook is None):
            raise ValueError("give exactly one of command (argv list) or webhook (URL)")
        return self
