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
