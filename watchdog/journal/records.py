"""The values the journal stores and returns, shared by every backend.

Rows are converted here, once, so SQLite and PostgreSQL return the same objects for the
same stored data.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from watchdog.baseline import Baseline
from watchdog.errors import FencingError
from watchdog.model import Action, Decision
from watchdog.rollout.state import Checkpoint


@dataclass(frozen=True)
class JournaledDecision:
    id: int
    decision: Decision
    journaled_at: float
    applied_at: float | None
    apply_error: str | None

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {"id": self.id, "module": d.module, "at": d.at, "action": d.action.value,
                "traffic_percent": d.traffic_percent, "from_stage": d.from_stage,
                "to_stage": d.to_stage, "kill_switch": d.kill_switch, "actor": d.actor,
                "reasons": list(d.reasons), "evidence": list(d.evidence),
                "journaled_at": self.journaled_at, "applied_at": self.applied_at,
                "apply_error": self.apply_error}


@dataclass(frozen=True)
class Lease:
    """Who guards ``module``: ``holder`` (an instance's name; "" once released) until
    ``expires_at`` (seconds since the epoch, the holders' clocks). ``epoch`` grows by one
    every time the lease changes hands and never goes back: it is the fencing token that
    a write carries (see :class:`watchdog.journal.base.Journal`)."""

    module: str
    holder: str
    epoch: int
    expires_at: float
    # a module group's lease also fences its members' flag decisions (daemon/groupjobs.py)
    covers: tuple[str, ...] = field(default=(), compare=False)

    def held(self, now: float) -> bool:
        return bool(self.holder) and self.expires_at > now


@dataclass(frozen=True)
class Renewals:
    """What :meth:`watchdog.journal.base.Journal.renew_leases` did, per module: the
    leases renewed (their new expiry), and the refusal of each one that had moved."""

    renewed: Mapping[str, Lease]
    lost: Mapping[str, FencingError]


@dataclass(frozen=True)
class Expected:
    """For a compare-and-swap: the checkpoint a write assumes is current (None: none)."""

    checkpoint: Checkpoint | None


def decision_row(row: Mapping[str, Any]) -> JournaledDecision:
    d = Decision(module=row["module"], at=row["at"], action=Action(row["action"]),
                 traffic_percent=row["traffic_percent"], from_stage=row["from_stage"],
                 to_stage=row["to_stage"], reasons=tuple(json.loads(row["reasons"])),
                 evidence=tuple(json.loads(row["evidence"])), actor=row["actor"],
                 kill_switch=bool(row["kill_switch"]))
    return JournaledDecision(row["id"], d, row["journaled_at"], row["applied_at"],
                             row["apply_error"])


def baseline_row(row: Mapping[str, Any]) -> Baseline:
    return Baseline(
        module=row["module"], metric=row["metric"], window_from=row["window_from"],
        window_to=row["window_to"], source=row["source"], captured_at=row["captured_at"],
        count=row["count"], mean=row["mean"], stddev=row["stddev"], p50=row["p50"],
        p90=row["p90"], p95=row["p95"], p99=row["p99"], min=row["min"], max=row["max"],
        samples=tuple((float(t), float(v)) for t, v in json.loads(row["samples"])),
        pinned=bool(row["pinned"]), expires_at=row["expires_at"], id=row["id"])


def choose_active(baselines: list[Baseline], now: float) -> dict[str, Baseline]:
    """Per metric: the pinned baseline if any, else the newest one not expired."""
    chosen: dict[str, Baseline] = {}
    for b in baselines:
        if b.expired(now) and not b.pinned:
            continue
        current = chosen.get(b.metric)
        if current is None or (b.pinned and not current.pinned) or (
                b.pinned == current.pinned and b.captured_at >= current.captured_at):
            chosen[b.metric] = b
    return chosen


def decision_values(d: Decision, journaled_at: float) -> tuple[Any, ...]:
    """The values of a ``decisions`` row, in the column order of :data:`DECISION_COLUMNS`."""
    from watchdog.journal import jsonsafe

    return (d.module, d.at, d.action.value, d.traffic_percent, d.from_stage, d.to_stage,
            int(d.kill_switch), d.actor, json.dumps(list(d.reasons)),
            jsonsafe.dumps(list(d.evidence)), journaled_at)


DECISION_COLUMNS = ("module, at, action, traffic_percent, from_stage, to_stage, kill_switch,"
                    " actor, reasons, evidence, journaled_at")

BASELINE_COLUMNS = ("module, metric, window_from, window_to, source, captured_at, count,"
                    " mean, stddev, p50, p90, p95, p99, min, max, samples, pinned, expires_at")


def baseline_values(b: Baseline) -> tuple[Any, ...]:
    return (b.module, b.metric, b.window_from, b.window_to, b.source, b.captured_at,
            b.count, b.mean, b.stddev, b.p50, b.p90, b.p95, b.p99, b.min, b.max,
            json.dumps(list(b.samples)), int(b.pinned), b.expires_at)
