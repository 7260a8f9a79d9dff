"""A readable timeline of a backtest: one line per decision, then the outcome."""

from __future__ import annotations

from watchdog.backtest.replay import BacktestResult
from watchdog.durations import format_duration


def render(result: BacktestResult) -> str:
    sc = result.scenario
    lines = [f"scenario {sc.name}  module {sc.module}  stages "
             f"{'/'.join(f'{s:g}' for s in sc.stages)}%  every {format_duration(sc.stage_seconds)}"
             f"  ({sc.samples} samples)", ""]
    for jd in result.decisions:
        d = jd.decision
        who = f"{d.module:<18} " if sc.members else ""
        head = f"  t={d.at:>6g}s  {who}{d.action.value:<9} {d.traffic_percent:>5g}%  "
        reasons = list(d.reasons) or [""]
        lines.append(head + reasons[0])
        lines.extend(" " * len(head) + r for r in reasons[1:])
    lines.append("")
    outcome = result.outcome.replace("_", " ")
    if result.rollback_at is not None:
        outcome += f" at t={result.rollback_at:g}s"
    lines.append(f"outcome: {outcome}")
    if result.not_judged:
        lines.append(f"not judged (their metric is not in the recording): "
                     f"{', '.join(result.not_judged)}")
    return "\n".join(lines)
