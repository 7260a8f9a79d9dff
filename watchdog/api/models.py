"""Request and response bodies (they are the published OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from watchdog.model import Action, VerdictKind, Version
from watchdog.rollout.state import Phase

ModulePath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.:-]*$",
                                              max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                          max_length=500)]
Actor = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@:+-]+$", max_length=100)]
CheckpointName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


class LeaseView(BaseModel):
    """Which modules this daemon instance guards (watchdog.daemon.leases)."""

    instance: str = Field(description="This instance's name in the lease table")
    role: Literal["leader", "standby"] = Field(
        description="leader: it holds at least one module's lease; standby: none")
    live_instances: list[str] = Field(description="Instances with a live heartbeat")
    fair_share: int = Field(description="How many modules this instance takes at most")
    modules: dict[str, dict[str, float]] = Field(
        description="Per module it guards: the lease's fencing epoch and expiry")
    standby_for: dict[str, dict[str, str | int]] = Field(
        description="Per module another instance guards: that instance and its epoch")


class Health(BaseModel):
    status: Literal["ok"] = Field(description="The API is serving and the journal is readable")
    version: str = Field(description="rollout-watchdog version")
    time: float = Field(description="Server time, unix seconds")
    kill_switch: bool
    module_versions: dict[str, Version] = Field(
        description="Per module, the version that has the traffic: v2 while V2 gets any share")
    traffic: dict[str, float] = Field(description="Per module, percent of traffic on V2")
    phases: dict[str, Phase | Literal["not_started"]]
    lease: LeaseView | None = Field(
        default=None, description="The daemon's leases (absent when the API runs alone)")


class VerdictView(BaseModel):
    kind: VerdictKind
    since: float | None = Field(description="When this verdict (kind and firing rules) began")
    firing: list[str]
    reasons: list[str]


class DecisionView(BaseModel):
    id: int
    time: float
    action: Action
    actor: str
    traffic_percent: float
    reasons: list[str]
    applied: bool


class BaselineView(BaseModel):
    age_seconds: float
    captured_at: float
    count: int
    pinned: bool
    source: str


class GuardView(BaseModel):
    """The module's lease: which daemon instance guards it (watchdog.daemon.leases)."""

    instance: str | None = Field(description="The holder; null once released")
    epoch: int = Field(description="Fencing epoch: one more at every change of holder")
    expires_at: float = Field(description="Unix seconds; renewed every half interval")
    live: bool = Field(description="Held and not expired by the API host's clock")


class ModuleStatus(BaseModel):
    module: str
    phase: Phase | Literal["not_started"]
    stage: int | None = Field(description="Current stage, 1-based (as in decision reasons)")
    traffic_percent: float = Field(description="Percent of traffic on V2 (0 under kill switch)")
    version: Version
    paused_by_kill_switch: bool
    started_at: float | None
    stage_started_at: float | None
    last_tick_at: float | None
    checkpoint_age_seconds: float | None
    consecutive_failures: int
    cumulative_failures: int
    alerts: dict[str, str] = Field(description="Rules whose alert is pending or firing")
    last_verdict: VerdictView | None
    last_decision: DecisionView | None
    baselines: dict[str, BaselineView]
    baseline_age_seconds: float | None = Field(description="Age of the oldest active baseline")
    guard: GuardView | None = Field(
        default=None, description="Who guards the module (null: no daemon took its lease yet)")
    members: dict[str, str] | None = Field(
        default=None, description="A module group's members and their state (waiting, "
        "enabled, rolled_back); null for a module")
    approval_needed: bool = Field(
        default=False, description="The next stage needs a person's approval, not given yet, "
        "and `approve` is possible now (awaiting_approval; or ahead, progressing or paused)")


class Status(BaseModel):
    time: float
    kill_switch: bool
    modules: list[ModuleStatus]


class DecisionRow(BaseModel):
    """One journaled decision, shaped for Grafana (Infinity data source, annotations)."""

    id: int
    time: float = Field(description="Unix seconds")
    timeEnd: float = Field(description="Unix seconds (decisions are instants: = time)")
    title: str
    text: str
    tags: str = Field(description="Comma-separated, as Grafana annotations take them")
    module: str
    action: Action
    actor: str
    traffic_percent: float
    from_stage: int | None = Field(description="1-based")
    to_stage: int | None = Field(description="1-based")
    kill_switch: bool
    applied: bool
    applied_at: float | None
    apply_error: str | None
    reasons: list[str]
    evidence: list[dict[str, Any]] | None = Field(
        default=None, description="Rule evidence (only with evidence=true)")


class ActionBody(BaseModel):
    """Why, and who: journaled with the decision."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason
    actor: Actor | None = Field(default=None, description="Who asks (default: api)")


class SetStageBody(ActionBody):
    traffic_percent: float = Field(gt=0, le=100,
                                   description="The stage: one of the plan's percentages")


class KillSwitchBody(ActionBody):
    state: Literal["on", "off"] = Field(description="on: V1 everywhere; off: rollouts resume")


class ActionResult(BaseModel):
    module: str
    action: Action
    decision: DecisionView = Field(description="The decision journaled (actor, reason)")
    phase: Phase = Field(description="The module's phase after the action")
    traffic_percent: float = Field(description="Percent of traffic on V2 after the action")


class KillSwitchResult(BaseModel):
    kill_switch: bool
    decisions: list[DecisionView] = Field(description="One per module whose flags change")


class ModuleDecisionView(DecisionView):
    module: str = Field(description="The group, or the member whose flag it sets")


class GroupKillSwitchResult(BaseModel):
    group: str
    kill_switch: bool = Field(description="The group's own kill switch now")
    decisions: list[ModuleDecisionView] = Field(
        description="The group's decision and one per member whose flag changes")


class CheckpointBody(ActionBody):
    name: CheckpointName = Field(description="Letters, digits, '.', '_', '-'; 1-64")


class CheckpointView(BaseModel):
    """A named snapshot of every module's rollout state (as ``checkpoint list --json``)."""

    name: str
    created_at: float = Field(description="Unix seconds")
    actor: str
    reason: str
    kill_switch: bool = Field(description="The kill switch when it was taken")
    modules: dict[str, str] = Field(
        description="Per module, its phase and V2 traffic then, e.g. 'progressing 25%'")


class RestoreResult(BaseModel):
    checkpoint: str
    decisions: list[DecisionView] = Field(
        description="One per module whose state changed (the others already matched)")
    phases: dict[str, Phase] = Field(
        description="Every module with a rollout, its phase after the restore")
