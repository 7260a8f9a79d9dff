"""``python -m watchdog.demo --plan group``: plan 002's rollout of the DWCP v3 components
as one module group (rules/protocol_v3.yaml), replayed on a generated recording.

It shows: components joining the shared percentage at their stage (transport and
compression at 10 %, prediction and state sync at 50 %, consensus and placement at
100 %); HDE v3 compression failing at 50 % and rolled back alone (the group's policy
``member``) while the others carry on; then the group kill switch (ForceV1Mode) turning
every member's flag off. Weeks are shortened to half an hour and the promotion gates'
day to 20 minutes, so the replay takes seconds; approvals are given as each is asked
for (as ``backtest --approve``). The recording is written to OUT/group-dwcp.jsonl (the
group extension of the scenario format: docs/scenario-format-groups.md) and can be
replayed with ``rollout-watchdog backtest OUT/group-dwcp.jsonl --rules <rules> --approve``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from watchdog.backtest.groupreplay import run_group
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import RuleSet, load_texts
from watchdog.engine import TickResult
from watchdog.groups.machine import ENABLED

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules" / "protocol_v3.yaml"
GROUP = "dwcp"
STEP = 15.0
STAGE_SECONDS = 1800.0
STAGES = (10, 25, 50, 100)
FAULT_AT = 3900.0   # HDE v3 compression starts failing (50 % since 3600 s)
KILL_AT = 6600.0    # the operator pulls the group kill switch (at 100 %)
END = 7200.0
# metric: (V1 level, noise sd); V2 the same unless a fault says otherwise
LEVELS = {"error_rate": (0.0005, 0.0001), "latency_p95_ms": (40.0, 2.0),
          "throughput_mbps": (500.0, 10.0), "migration_downtime_ms": (200.0, 20.0),
          "compression_ratio": (0.78, 0.005), "consensus_latency_ms": (60.0, 3.0)}
DIRECTIONS = {"error_rate": "higher_is_worse", "latency_p95_ms": "higher_is_worse",
              "throughput_mbps": "lower_is_worse",
              "migration_downtime_ms": "higher_is_worse",
              "compression_ratio": "lower_is_worse",
              "consensus_latency_ms": "higher_is_worse"}


def demo_rules(path: Path = RULES) -> RuleSet:
    """The shipped rules with the gates' 1-day windows shortened to 20 minutes."""
    text = path.read_text("utf-8").replace("window: 1d, before: 100", "window: 20m, "
                                                                          "before: 100")
    return load_texts([(str(path), text)])


def write_recording(rules: RuleSet, out: Path, seed: int = 2) -> Path:
    group = rules.groups[GROUP]
    rng = np.random.default_rng(seed)
    lines = [{"kind": "meta", "scenario": "group-dwcp", "module": GROUP,
              "members": group.names, "step_seconds": STEP,
              "baseline": {"from": -1800, "to": 0},
              "plan": {"stages": list(STAGES), "stage_seconds": STAGE_SECONDS},
              "end": END, "metrics": DIRECTIONS}]
    for t in np.arange(-1800.0, END + STEP / 2, STEP):
        for member in group.names:
            for metric in rules.for_module(member).metrics:
                level, sd = LEVELS[metric]
                for version in ("v1", "v2") if t >= 0 else ("v1",):
                    value = level + rng.normal(0, sd)
                    if (member == "dwcp.compression" and version == "v2"
                            and metric == "error_rate" and t >= FAULT_AT):
                        value = 0.03 + rng.normal(0, 0.002)  # 3 % of transfers fail
                    lines.append({"t": float(t), "version": version, "metric": metric,
                                  "module": member, "value": round(max(value, 0.0), 7)})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(x) + "\n" for x in lines), "utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m watchdog.demo --plan group",
                                description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plan", choices=["group"], required=True)
    p.add_argument("--out", type=Path, default=Path("demo-output"))
    a, _ = p.parse_known_args(argv)
    rules = demo_rules()
    path = write_recording(rules, a.out / "group-dwcp.jsonl")
    scenario = load_scenario(path)
    states: list[tuple[float, float, dict[str, str], bool]] = []

    def seen(result: TickResult) -> None:
        cp = result.checkpoint
        states.append((cp.last_tick_at or 0.0, cp.traffic_percent, dict(cp.members),
                       cp.paused_by_kill_switch))

    result = run_group(scenario, rules, approve=True, kill_at=KILL_AT, on_tick=seen)
    print(f"plan 002 as one module group: {GROUP} ({len(rules.groups[GROUP].members)} "
          f"members), stages {'/'.join(map(str, STAGES))} %, 30 min each (a week in "
          f"the plan)\n")
    for jd in result.decisions:
        d = jd.decision
        who = "GROUP " + d.module if d.module == GROUP else "  " + d.module
        kill = " [kill switch]" if d.kill_switch else ""
        print(f"t={d.at:>6.0f}s  {who:<22} {d.action.value:<9} {d.traffic_percent:>5g}%"
              f"{kill}  {d.reasons[0][:90]}")
    print("\nflags at the end:")
    _, _, members, killed = states[-1]
    for name, state in members.items():
        on = state == ENABLED and not killed
        print(f"  {name:<20} {'on ' if on else 'off'}  {state}"
              + (" (kill switch)" if killed and state == ENABLED else ""))
    print(f"\nrecording: {path}")
    return 0
