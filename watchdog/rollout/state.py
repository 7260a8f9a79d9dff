"""The durable state of one module's rollout (its checkpoint)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from watchdog.judge.alerts import AlertState
from watchdog.model import Action


class Phase(StrEnum):
    PROGRESSING = "progressing"
    PAUSED = "paused"
    # progressing, ready for the next stage but for a person's approval (issue 20): judged
    # as progressing (a failure still rolls back), never advanced until approved
    AWAITING_APPROVAL = "awaiting_approval"
    ROLLED_BACK = "rolled_back"
    PROMOTED = "promoted"
    ABORTED = "aborted"


TERMINAL = frozenset({Phase.PROMOTED, Phase.ABORTED})
ACTIVE = frozenset({Phase.PROGRESSING, Phase.AWAITING_APPROVAL})  # verdicts count


@dataclass(frozen=True)
class Checkpoint:
    module: str
    phase: Phase
    stage: int
    traffic_percent: float
    started_at: float
    stage_started_at: float
    consecutive_failures: int = 0
    cumulative_failures: int = 0
    inconclusive_since: float | None = None
    inconclusive_alerted: bool = False
    last_action: Action | None = None
    last_decision_at: float | None = None
    hold_key: str = ""
    paused_by_kill_switch: bool = False
    last_tick_at: float | None = None
    alerts: Mapping[str, AlertState] = field(default_factory=dict)
    # start of the current unbroken run of healthy verdicts at this stage (None: the last
    # verdict was not healthy); a stage's hold counts from here
    healthy_since: float | None = None
    # healthy seconds at this stage before a spell of missing data interrupted the run
    healthy_banked: float = 0.0
    # step-backs the failure policy has taken in this rollout (rollout/stepback.py)
    step_backs: int = 0
    # the stage a person approved the step to (rollout/approval.py), and since when the
    # rollout has waited for an approval
    approved_stage: int | None = None
    waiting_since: float | None = None
    # a module group's checkpoint (watchdog/groups): each member's state (waiting to join,
    # enabled, rolled_back) and its failures in a row (members rolled back alone)
    members: Mapping[str, str] = field(default_factory=dict)
    member_failures: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module, "phase": self.phase.value, "stage": self.stage,
            "traffic_percent": self.traffic_percent, "started_at": self.started_at,
            "stage_started_at": self.stage_started_at,
            "consecutive_failures": self.consecutive_failures,
            "cumulative_failures": self.cumulative_failures,
            "inconclusive_since": self.inconclusive_since,
            "inconclusive_alerted": self.inconclusive_alerted,
            "last_action": self.last_action.value if self.last_action else None,
            "last_decision_at": self.last_decision_at, "hold_key": self.hold_key,
            "paused_by_kill_switch": self.paused_by_kill_switch,
            "last_tick_at": self.last_tick_at,
            "alerts": {name: s.to_dict() for name, s in sorted(self.alerts.items())},
            "healthy_since": self.healthy_since,
            "healthy_banked": self.healthy_banked,
            "step_backs": self.step_backs,
            "approved_stage": self.approved_stage, "waiting_since": self.waiting_since,
            "members": dict(self.members), "member_failures": dict(self.member_failures),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Checkpoint:
        last = data.get("last_action")
        return cls(
            module=str(data["module"]), phase=Phase(data["phase"]), stage=int(data["stage"]),
            traffic_percent=float(data["traffic_percent"]),
            started_at=float(data["started_at"]),
            stage_started_at=float(data["stage_started_at"]),
            consecutive_failures=int(data.get("consecutive_failures", 0)),
            cumulative_failures=int(data.get("cumulative_failures", 0)),
            inconclusive_since=_opt(data.get("inconclusive_since")),
            inconclusive_alerted=bool(data.get("inconclusive_alerted", False)),
            last_action=Action(last) if last else None,
            last_decision_at=_opt(data.get("last_decision_at")),
            hold_key=str(data.get("hold_key", "")),
            paused_by_kill_switch=bool(data.get("paused_by_kill_switch", False)),
            last_tick_at=_opt(data.get("last_tick_at")),
            alerts={k: AlertState.from_dict(v) for k, v in (data.get("alerts") or {}).items()},
            # a checkpoint written before this field existed: the stage start, as it was
            healthy_since=_opt(data["healthy_since"]) if "healthy_since" in data
            else float(data["stage_started_at"]),
            healthy_banked=float(data.get("healthy_banked", 0.0)),
            step_backs=int(data.get("step_backs", 0)),
            approved_stage=None if data.get("approved_stage") is None
            else int(data["approved_stage"]),
            waiting_since=_opt(data.get("waiting_since")),
            members={str(k): str(v) for k, v in (data.get("members") or {}).items()},
            member_failures={str(k): int(v)
                             for k, v in (data.get("member_failures") or {}).items()},
        )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
