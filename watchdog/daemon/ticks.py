"""What the daemon adds around :meth:`Engine.tick`: the time of a tick, the last verdict
(for ``status``), notifications of decisions, and the one-line status for systemd."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from watchdog.clock import Clock
from watchdog.config.loader import RuleSet
from watchdog.daemon.config import ClockConfig, Loaded
from watchdog.engine import TickResult
from watchdog.journal.base import Journal
from watchdog.journal.records import JournaledDecision
from watchdog.model import Action, Decision
from watchdog.notifiers import Notification
from watchdog.rollout.approval import is_approval_wait
from watchdog.rollout.state import Checkpoint
from watchdog.sourcestate import write_if_changed

VERDICT_KEY = "verdict:{module}"
EPS = 1e-9
# a step back is the failure policy's answer to a regression (or an operator's), as a
# rollback is: shown in the channel, not only in the rollout's thread
SEVERITY = {Action.ROLLBACK: "critical", Action.ABORT: "critical",
            Action.STEP_BACK: "critical", Action.HOLD: "warning", Action.PAUSE: "warning"}


def tick_time(config: ClockConfig, clock: Clock, cp: Checkpoint | None) -> float | None:
    """When this tick happens, or None when a replay is over.

    A replay's time is not the wall clock: each tick is one ``step`` after the module's
    last tick as its checkpoint records it (the rollout's start for the first one), so a
    replay killed at any point resumes at exactly the tick it had not committed. The
    last tick is one step before ``end``, as in ``backtest``.
    """
    if config.kind == "system":
        return clock.now()
    step = config.step or 0.0
    if cp is None:
        now = config.start
    else:
        now = (cp.last_tick_at if cp.last_tick_at is not None else cp.started_at) + step
    if config.end is not None and now > config.end - step + EPS:
        return None
    return now


def rules_with_intervals(loaded: Loaded) -> RuleSet:
    """The rules, with each configured module's evaluation interval as the config says
    (a replay: the rules' own, or its step where that is longer, as ``backtest`` does)."""
    rules = loaded.rules
    step = loaded.config.clock.step if loaded.config.clock.kind != "system" else None
    modules = dict(rules.modules)
    for name in loaded.module_names:
        module = rules.for_module(name)
        interval = loaded.interval_of(name) if step is None else max(module.interval, step)
        if interval != module.interval or (step is None and name not in modules):
            modules[name] = module.model_copy(update={"interval": interval})
    return RuleSet(modules=modules, files=rules.files, origins=rules.origins,
                   groups=rules.groups)


def record_verdict(journal: Journal, result: TickResult,
                   known: dict[str, Any] | None = None) -> None:
    """Keep the module's last verdict (kind, firing rules, since when) in the settings;
    ``known`` as for :func:`watchdog.sourcestate.write_if_changed`."""
    verdict = result.verdict
    if verdict is None:
        return
    firing = list(verdict.firing)
    write_if_changed(
        journal, VERDICT_KEY.format(module=result.module),
        {"kind": verdict.kind.value, "firing": firing, "since": verdict.at,
         "reasons": list(verdict.reasons)[:10]},
        lambda old: old is not None and old.get("kind") == verdict.kind.value
        and old.get("firing") == firing, known)


def stage_number(d: Decision) -> int | None:
    """The decision's stage as shown everywhere: counted from 1 (the target stage)."""
    index = d.to_stage if d.to_stage is not None else d.from_stage
    return None if index is None else index + 1




def approve_link(public_url: str, module: str) -> str:
    """The web view at ``module``'s Approve button (app.js reads the fragment)."""
    return f"{public_url.rstrip('/')}/ui/#approve={urllib.parse.quote(module, safe='')}"


def notification(jd: JournaledDecision, public_url: str | None = None) -> Notification:
    """The notification of an applied decision; a wait for approval links to the web
    view's Approve button when the web view's ``public_url`` is configured."""
    d = jd.decision
    waits = is_approval_wait(d.action.value, d.reasons)
    links = {"approve": approve_link(public_url, d.module)} if waits and public_url else {}
    verb = {Action.ADVANCE: f"advanced to {d.traffic_percent:g} %",
            Action.HOLD: f"held at {d.traffic_percent:g} %",
            Action.ROLLBACK: "rolled back to 0 %",
            Action.PROMOTE: "promoted to 100 %",
            Action.PAUSE: f"paused at {d.traffic_percent:g} %",
            Action.RESUME: f"resumed at {d.traffic_percent:g} %",
            Action.ABORT: "aborted (0 %)",
            Action.STEP_BACK: f"stepped back to {d.traffic_percent:g} %",
            Action.APPROVE: "approved for its next stage"}[d.action]
    by = "" if d.actor == "watchdog" else f" by {d.actor}"
    return Notification(
        key=f"decision:{jd.id}", module=d.module, kind="decision", action=d.action.value,
        severity=SEVERITY.get(d.action, "info"), title=f"{d.module} {verb}{by}",
        stage=stage_number(d),
        traffic_percent=d.traffic_percent, reasons=d.reasons, evidence=d.evidence, at=d.at,
        links=links)


def stuck_notification(d: Decision, key: str, waited: float, errors: str,
                       stuck: bool) -> Notification:
    """A safety action decided but not applied after ``waited`` seconds (``stuck``), or
    applied at last. ``errors`` is the actuators' own error text (they keep secrets out)."""
    what = d.action.value.replace("_", " ")
    title = (f"{d.module} {what} NOT APPLIED after {waited:.0f}s" if stuck
             else f"{d.module} {what} applied after {waited:.0f}s")
    reasons = (f"actuators: {errors}" if errors else "actuators: no answer yet",
               *d.reasons)[:10] if stuck else d.reasons[:10]
    return Notification(
        key=f"{'stuck' if stuck else 'unstuck'}:{key}", module=d.module,
        kind="actuation_stuck" if stuck else "actuation_applied", action=d.action.value,
        severity="critical" if stuck else "info", title=title,
        stage=stage_number(d),
        traffic_percent=d.traffic_percent, reasons=tuple(reasons), at=d.at)


@dataclass(frozen=True)
class ModuleLine:
    module: str
    traffic: float
    word: str

    def __str__(self) -> str:
        return f"{self.module} {self.traffic:g}% {self.word}"


def status_line(results: dict[str, TickResult]) -> str:
    parts = []
    for name in sorted(results):
        r = results[name]
        cp = r.checkpoint
        word = cp.phase.value if cp.phase.value != "progressing" else (
            r.verdict.kind.value if r.verdict is not None else "started")
        if cp.members:  # a module group: how many of its members are on
            on = sum(1 for state in cp.members.values() if state == "enabled")
            word += f" ({on} of {len(cp.members)} members on)"
        parts.append(str(ModuleLine(name, cp.traffic_percent, word)))
    return f"{len(results)} modules: " + ", ".join(parts)
