"""Plain value types shared by the core: samples, directions, verdicts, decisions."""

from __future__ import annotations

from dataclasses import dataclass
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


class RuleOutcome(StrEnum):
    """What one evaluation of a rule found. The verdict (judge/verdict.py) decides on this
    alone; the evidence dict only records the numbers and flags behind it for the journal.

    breached      the condition holds
    clear         it does not
    missing       too little data to say (no reference, a stale window, gaps): holds the
                  rollout and leaves a pending alert as it was
    warming       V2 has not run or settled long enough yet: clears a pending alert and
                  holds nothing (the stage hold still has to pass)
    disputed      live V1 and its stored baseline disagree and V2 is worse than only one
                  of them (judge/disagree.py): clears a pending alert and holds the rollout
    inapplicable  the rule does not apply (no live V1 left to compare with): holds nothing
    unconfirmed   the comparison finds V2 worse, the always-valid test (judge/alwaysvalid.py)
                  cannot confirm it yet: clears a pending alert and holds the rollout
    """

    BREACHED = "breached"
    CLEAR = "clear"
    MISSING = "missing"
    WARMING = "warming"
    DISPUTED = "disputed"
    INAPPLICABLE = "inapplicable"
    UNCONFIRMED = "unconfirmed"

    @property
    def breached(self) -> bool | None:
        """True (breached), False (clear) or None (every other outcome: no verdict)."""
        return True if self is RuleOutcome.BREACHED else (
            False if self is RuleOutcome.CLEAR else None)

    @classmethod
    def of(cls, breached: bool | None) -> RuleOutcome:
        """BREACHED, CLEAR or MISSING for True, False or None."""
        return cls.MISSING if breached is None else cls.BREACHED if breached else cls.CLEAR


def unsettled_state(outcome: object) -> str:
    """How a rule without a verdict is shown (dashboards, the web view, Slack), from its
    outcome (or its evidence's ``outcome``): ``warming`` and ``inapplicable`` hold nothing
    and are shown as themselves; every other, holding the rollout, is ``inconclusive``."""
    quiet = (RuleOutcome.WARMING.value, RuleOutcome.INAPPLICABLE.value)
    return str(outcome) if str(outcome) in quiet else "inconclusive"


@dataclass(frozen=True, init=False)
class RuleResult:
    """One rule evaluated once: its ``outcome``, a one-line ``summary``, and ``evidence``
    (the numbers behind it, journaled as they are).

    The third argument is the outcome, or for short a bool/None: ``RuleResult(name,
    metric, True, summary)`` is BREACHED, False CLEAR, None MISSING. ``breached`` is the
    outcome as True / False / None (None for every outcome but breached and clear).
    """

    rule: str
    metric: str
    outcome: RuleOutcome
    summary: str
    evidence: dict[str, Any]

    def __init__(self, rule: str, metric: str, outcome: RuleOutcome | bool | None,
                 summary: str, evidence: dict[str, Any] | None = None) -> None:
        if not isinstance(outcome, RuleOutcome):
            outcome = RuleOutcome.of(None if outcome is None else bool(outcome))
        object.__setattr__(self, "rule", rule)
        object.__setattr__(self, "metric", metric)
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "summary", summary)
        object.__setattr__(self, "evidence", {} if evidence is None else evidence)

    @property
    def breached(self) -> bool | None:
        return self.outcome.breached


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
