"""Rule states over time, with Prometheus semantics for ``for`` and ``keep_firing_for``.

inactive --breach--> pending --held for `for`--> firing --clear for `keep_firing_for`--> inactive
An inconclusive evaluation (missing data) neither starts nor clears an alert (but see
``carry_for`` below). As in Prometheus, the ``keep_firing_for`` clock starts at the first
evaluation that finds the condition clear (``keep_firing_since``), and a new breach stops it.

Durations are compared with a ``jitter`` allowance (a tenth of the evaluation interval, as
the verdict passes it). Prometheus stamps evaluations on an exact grid; a live daemon's
ticks wake a few milliseconds off it, so without the allowance a breach held for exactly
``for`` (two ticks 1.0 s apart measured as 0.998 s) would wait one more interval about
half the time. A replay's ticks are exact, so the allowance changes nothing there.

Missing data after a breach (``carry_for``, issue 16): a pending alert whose data goes
missing keeps counting its ``for`` on the last evidence, the last breach, for at most
``carry_for`` after that breach, and fires when ``for`` has elapsed. So a regression that
takes V2's metrics endpoint down with it still fires. The judge passes it for rules with
action rollback only (a missing hold rule already holds). Evidence older than that (the
daemon was down, the outage is long) is stale: the alert freezes, as without it, until
data returns. A firing alert stays firing while data is missing, with or without it.

A ``bridge`` (the level-episode hold, levelhold.py) keeps a pending alert pending through
clear evaluations less than ``bridge`` after its last breach: it fires only on a breach,
``for`` after the first. Prometheus has no such thing; without a bridge (0, the default)
a clear evaluation resets a pending alert, as there.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class AlertPhase(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True)
class AlertState:
    phase: AlertPhase = AlertPhase.INACTIVE
    active_at: float | None = None
    fired_at: float | None = None
    last_breach_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    breach_summary: str | None = None  # the rule's summary at its last breach (for reasons)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "phase": self.phase.value, "active_at": self.active_at,
            "fired_at": self.fired_at, "last_breach_at": self.last_breach_at,
            "resolved_at": self.resolved_at, "keep_firing_since": self.keep_firing_since}
        if self.breach_summary is not None:
            out["breach_summary"] = self.breach_summary
        return out

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> AlertState:
        get = data.get
        return cls(AlertPhase(str(get("phase", "inactive"))), _num(get("active_at")),
                   _num(get("fired_at")), _num(get("last_breach_at")),
                   _num(get("resolved_at")), _num(get("keep_firing_since")),
                   None if get("breach_summary") is None else str(get("breach_summary")))


INACTIVE = AlertState()  # a rule that has never breached (immutable: shared)


def _num(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def carried(state: AlertState, now: float, carry_for: float, jitter: float = 0.0) -> bool:
    """Whether missing data at ``now`` still counts as the alert's last breach."""
    return (carry_for > 0 and state.phase is not AlertPhase.INACTIVE
            and state.last_breach_at is not None
            and now - state.last_breach_at <= carry_for + jitter)


def step(state: AlertState, breached: bool | None, now: float, hold_for: float,
         keep_firing_for: float, jitter: float = 0.0, carry_for: float = 0.0,
         bridge: float = 0.0) -> AlertState:
    if breached is None:
        if state.phase is AlertPhase.PENDING and carried(state, now, carry_for, jitter):
            active_at = state.active_at if state.active_at is not None else now
            if now - active_at >= hold_for - jitter:
                return replace(state, phase=AlertPhase.FIRING, fired_at=now)
        return state
    if breached:
        if state.phase is AlertPhase.INACTIVE:
            state = AlertState(AlertPhase.PENDING, active_at=now, last_breach_at=now,
                               resolved_at=state.resolved_at)
        else:
            state = replace(state, last_breach_at=now, keep_firing_since=None)
        active_at = state.active_at if state.active_at is not None else now
        if state.phase is AlertPhase.PENDING and now - active_at >= hold_for - jitter:
            state = replace(state, phase=AlertPhase.FIRING, fired_at=now)
        return state
    if state.phase is AlertPhase.PENDING:
        if bridge > 0 and state.last_breach_at is not None \
                and now - state.last_breach_at <= bridge + jitter:
            return state  # bridged: still pending, never fired on a clear evaluation
        return AlertState(resolved_at=state.resolved_at)
    if state.phase is AlertPhase.FIRING:
        since = state.keep_firing_since if state.keep_firing_since is not None else now
        if keep_firing_for > 0 and now - since < keep_firing_for - jitter:
            return replace(state, keep_firing_since=since)
        return AlertState(resolved_at=now)
    return state
