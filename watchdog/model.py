"""Plain value types shared by the core: samples, directions, verdicts, decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Version(StrEnum):
    V1 = "v1"
    V2 = "v2"


class Direction(StrEnum):
    HIGHER_IS_WORSE = "higher_is_worse"
    LOWER_IS_WORSE = "lower_is_worse"
    GROWTH_IS_WORSE = "growth_is_worse"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class RuleAction(StrEnum):
    NOTIFY = "notify"
    HOLD = "hold"
    ROLLBACK = "rollback"


class VerdictKind(StrEnum):
    HEALTHY = "healthy"
    INCONCLUSIVE = "inconclusive"
    WARNING = "warning"
    CRITICAL = "critical"


class Action(StrEnum):
    """What a decision does to a rollout."""

    ADVANCE = "advance"
    HOLD = "hold"
    ROLLBACK = "rollback"
    PROMOTE = "promote"
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    STEP_BACK = "step_back"  # to a lower stage, not to 0 % (rollout/stepback.py)
    APPROVE = "approve"  # a person approves the step to the next stage (rollout/approval.py)


@dataclass(frozen=True, slots=True)
class Sample:
    t: float
    module: str
    version: Version
    metric: str
    value: float


@dataclass(frozen=True)
class RuleResult:
    """One rule evaluated once.

    ``breached`` is True (condition holds), False (it does not) or None (inconclusive:
    not enough evidence to say either way). ``evidence`` holds the numbers behind it.
    """

    rule: str
    metric: str
    breached: bool | None
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


class RejectReason(StrEnum):
    """Why the judge took a sample for no measurement (see judge/domain.py)."""

    NON_FINITE = "non_finite"
    BELOW_MIN = "below_min"
    ABOVE_MAX = "above_max"


@dataclass(frozen=True, slots=True)
class Rejected:
    """Samples of one version's metric the judge dropped as missing data, for one reason:
    ``times`` of the samples, ``domain`` the metric's domain as written ("[0, 1]")."""

    version: Version
    metric: str
    reason: RejectReason
    domain: str
    times: tuple[float, ...]


@dataclass(frozen=True)
class Verdict:
    module: str
    at: float
    kind: VerdictKind
    results: tuple[RuleResult, ...]
    firing: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    # samples of the tick's data dropped before the rules saw them (judge/domain.py)
    rejected: tuple[Rejected, ...] = ()


@dataclass(frozen=True)
class Decision:
    """A decision about one module, journaled before it is acted on."""

    module: str
    at: float
    action: Action
    traffic_percent: float
    from_stage: int | None
    to_stage: int | None
    reasons: tuple[str, ...]
    evidence: tuple[dict[str, Any], ...] = ()
    actor: str = "watchdog"
    kill_switch: bool = False

    @property
    def version(self) -> Version:
        """The version the module should run as its primary after this decision."""
        return Version.V2 if self.traffic_percent > 0 and not self.kill_switch else Version.V1
