"""One evaluation of a module group: judge each enabled member on its own rules, decide
for the group (groups/machine.py), journal and act through the :class:`Engine`'s commit
(the same compare-and-swap, journal-first advance and never-waiting rollback).

The kill switch applies globally (the journal's ``kill_switch``) and per group
(``kill_switch:group:<name>``, :func:`group_kill_key`): either holds the group and, set
through :mod:`watchdog.control`, switches every member's flag off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from watchdog.engine import DRIFT_LOOKBACK, NOISE_WINDOW, Engine, TickResult
from watchdog.errors import IllegalTransition, SourceError
from watchdog.groups import machine as group_machine
from watchdog.groups.model import Group
from watchdog.judge import gates
from watchdog.judge.alerts import AlertState
from watchdog.judge.gates import GateResult
from watchdog.judge.rules import EvalContext
from watchdog.judge.series import SeriesStore
from watchdog.judge.verdict import judge
from watchdog.model import Verdict
from watchdog.rollout import machine
from watchdog.rollout.state import ACTIVE

log = logging.getLogger(__name__)


def group_kill_key(group: str) -> str:
    return f"kill_switch:group:{group}"


@dataclass
class GroupEngine:
    engine: Engine
    group: Group

    def kill_switch(self) -> bool:
        return self.engine.kill_switch() or bool(
            self.engine.journal.setting(group_kill_key(self.group.name), False))

    def tick(self, now: float) -> tuple[TickResult, dict[str, Verdict]]:
        e, group = self.engine, self.group
        e.plans[group.name] = group.plan
        e._retry_journal(now)
        cp = e.checkpoint(group.name)
        if cp is None:
            if self.kill_switch():
                raise IllegalTransition(f"cannot start group {group.name!r}: the kill "
                                        "switch is on")
            cp, decisions = group_machine.start(group, now)
            done, cp = e._commit(group.name, decisions, cp, now, None, {})
            return TickResult(group.name, None, tuple(done), cp), {}
        verdicts: dict[str, Verdict] = {}
        alerts: dict[str, AlertState] = {}
        summaries: dict[str, str] = {}
        pending_gates = group.plan.gates_before(cp.stage + 1) if cp.phase in ACTIVE else []
        gate_results: dict[str, list[GateResult]] = {}
        for name in group.names:
            if cp.members.get(name) != group_machine.ENABLED:
                continue
            module = e.module(name)
            back = max([e.lookback(module), *(g.window for g in pending_gates)])
            try:
                store = e.source.fetch(module, now - back, now)
            except SourceError as err:
                log.warning("group %s member %s: source failed: %s", group.name, name, err)
                if e.on_source_error is not None:  # counted, and shown as the group's
                    e.on_source_error(err)        # source state (as a module's fetch is)
                store = SeriesStore()
            ctx = EvalContext(module=module, now=now, started_at=cp.started_at, series=store,
                              baselines=e.baselines(name, now), noise_window=NOISE_WINDOW,
                              drift_lookback=DRIFT_LOOKBACK,
                              traffic_percent=cp.traffic_percent,
                              stage_started_at=cp.stage_started_at,
                              rollout_plan=group.plan, carry=e.carry(name))
            prefix = f"{name}/"
            mine = {k[len(prefix):]: s for k, s in cp.alerts.items() if k.startswith(prefix)}
            verdict, states = judge(ctx, mine)
            verdicts[name] = verdict
            alerts.update({prefix + k: s for k, s in states.items()})
            summaries.update({prefix + r.rule: r.summary for r in verdict.results})
            judged = {r.metric for r in module.rules}
            directions = {m: s.direction for m, s in module.metrics.items()}
            for gate in pending_gates:
                if gate.metric in judged:
                    gate_results.setdefault(gate.name, []).append(gates.evaluate(
                        gate, directions[gate.metric], store, now, module.interval))
        interval = min(e.module(n).interval for n in group.names)
        new_cp, decisions = group_machine.on_verdicts(
            replace(cp, alerts=alerts), group, verdicts, now, kill_switch=self.kill_switch(),
            max_gap=machine.gap_limit(interval),
            gates=[_all_members(name, found) for name, found in gate_results.items()],
            check=e._check(cp, group.plan, now),
            pre_approved=e.pre_approved)
        done, new_cp = e._commit(group.name, decisions, new_cp, now, cp,
                                 summaries)
        return TickResult(group.name, None, tuple(done), new_cp), verdicts


def _all_members(name: str, results: list[GateResult]) -> GateResult:
    """A group's gate: met when it is met on every enabled member that has its metric,
    failed when it failed on one, pending otherwise."""
    failed = [r for r in results if r.state == "failed"]
    pending = [r for r in results if r.state == "pending"]
    worst = failed or pending
    state = "failed" if failed else ("pending" if pending else "met")
    first = (worst or results)[0]
    summary = "; ".join(r.summary for r in (worst or results))
    return replace(first, gate=name, state=state, summary=summary,
                   evidence={"members": len(results), **first.evidence})
