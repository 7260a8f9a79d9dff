#!/usr/bin/env python3
"""Backtest speed (``make bench``): two figures.

    .venv/bin/python bench/backtest_speed.py [--repeat 3]

1. Wall seconds to score every public scenario:
   ``../shared/scenarios/score -- .venv/bin/rollout-watchdog backtest --json`` (one process
   per scenario, run from the repository root). Target: under 30 s.
2. CPU seconds of one 90-minute backtest beyond interpreter start-up: the user + system
   CPU of ``rollout-watchdog backtest SCENARIO --json`` minus that of
   ``python -c "import watchdog.cli.main, watchdog.cli.backtest"`` (start-up: the
   interpreter and the modules the command imports; the best of ``--repeat`` runs of
   each). The 90-minute scenario is tests/data/scenarios/aa-clean-1000.jsonl extended: stages of
   1080 s instead of 600, each repeating its recorded samples (see
   ``extended``), end 5400 s: a healthy rollout evaluated every 10 s for 90 minutes
   (540 evaluations, unless it rolls back). Target: under 1 s.

With ``--instructions`` (needs ``valgrind``), also the instructions the same backtest
executes beyond start-up, counted by ``valgrind --tool=callgrind`` (about 2 minutes):
unlike CPU seconds, which move by 40 % with the machine's load here, the count moves by
about 0.2 % between runs, so it tells whether a change to the judge made it faster.
Where ``PYTHONDONTWRITEBYTECODE`` is set, byte-compile the tree first (``python -m
compileall watchdog``) when comparing two trees: a module imported after start-up is
otherwise compiled at every run, in both figures.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCORE = ROOT.parent / "shared" / "scenarios" / "score"
STARTUP = "import watchdog.cli.main, watchdog.cli.backtest"  # what start-up costs the command
SOURCE = ROOT / "tests" / "data" / "scenarios" / "aa-clean-1000.jsonl"
BIN = Path(sys.executable).parent


def extended(source: Path, out: Path, minutes: int = 90) -> int:
    """Write ``source`` extended to a rollout of ``minutes``; its length in seconds.

    Each stage lasts ``minutes / stages`` instead of the recording's ``stage_seconds``: its
    recorded samples, then the second half of them (300 s, one GC cycle of the recording,
    after V2's memory warm-up) again and again, so every sample keeps the share it was
    recorded at and no sample repeats within a rule's 5-minute window.
    """
    lines = source.read_text("utf-8").splitlines()
    meta = json.loads(lines[0])
    step = int(meta["step_seconds"])
    period = int(meta["plan"]["stage_seconds"])
    stages = len(meta["plan"]["stages"])
    stage = minutes * 60 // stages // step * step
    samples = [json.loads(line) for line in lines[1:]]
    by_time: dict[int, list[dict[str, object]]] = {}
    for s in samples:
        by_time.setdefault(int(s["t"]), []).append(s)
    rows = [s for s in samples if s["t"] < 0]
    for t in range(0, stage * stages, step):
        k, into = t // stage, t - stage * (t // stage)
        if into >= period:  # then the stage's second half (a whole GC cycle) again and again
            into = period // 2 + (into - period // 2) % (period // 2)
        original = period * k + into
        rows += [{**s, "t": t} for s in by_time.get(original, [])]
    meta.update(scenario=meta["scenario"] + f"-{minutes}min", end=stage * stages,
                plan={**meta["plan"], "stage_seconds": stage})
    with out.open("w", encoding="utf-8") as f:
        f.write(json.dumps(meta, separators=(",", ":")) + "\n")
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    return stage * stages


def cpu_of(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, done


def instructions_of(argv: list[str]) -> int:
    """The instructions ``argv`` executes (valgrind's callgrind; its own output discarded)."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                           *argv], capture_output=True, text=True, cwd=ROOT, check=False)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"callgrind failed (exit {done.returncode}): {done.stderr[-500:]}")
    return int(found.group(1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--instructions", action="store_true",
                   help="also count the instructions beyond start-up (valgrind's callgrind)")
    a = p.parse_args()
    cli = str(BIN / "rollout-watchdog")

    if SCORE.exists():
        began = time.monotonic()
        done = subprocess.run([str(SCORE), "--", cli, "backtest", "--json"], cwd=ROOT,
                              capture_output=True, text=True, check=False)
        wall = time.monotonic() - began
        n = sum(1 for _ in SCORE.parent.glob("*.jsonl"))
        if done.returncode != 0:
            print(f"score failed (exit {done.returncode}): {done.stderr[-500:]}")
            return 1
        summary = [line for line in done.stdout.splitlines() if line.strip()][-6:]
        print(f"score all public scenarios ({n}): {wall:.1f} s wall "
              f"(target < 30 s -> {'MET' if wall < 30 else 'NOT MET'})")
        for line in summary:
            print(f"    {line}")
    else:
        print(f"score: {SCORE} not found; skipped")

    with tempfile.TemporaryDirectory(prefix="bt90-") as tmp:
        scenario = Path(tmp) / "aa-clean-1000-90min.jsonl"
        seconds = extended(SOURCE, scenario)
        runs, imports = [], []
        result: dict[str, object] = {}
        for _ in range(a.repeat):
            cpu, done = cpu_of([cli, "backtest", str(scenario), "--json"])
            if done.returncode != 0:
                print(f"backtest failed (exit {done.returncode}): {done.stderr[-500:]}")
                return 1
            runs.append(cpu)
            result = json.loads(done.stdout)
            cpu, _ = cpu_of([sys.executable, "-c", STARTUP])
            imports.append(cpu)
        counted = None
        if a.instructions:
            if shutil.which("valgrind") is None:
                print("--instructions: valgrind not found (apt-get install valgrind)")
                return 1
            counted = (instructions_of([cli, "backtest", str(scenario), "--json"]),
                       instructions_of([sys.executable, "-c", STARTUP]))
    beyond = min(runs) - min(imports)
    decisions = result.get("decisions")
    print(f"one {seconds / 60:g}-minute backtest ({scenario.name}, outcome "
          f"{result.get('outcome')}, {len(decisions) if isinstance(decisions, list) else '?'} "
          f"decisions): {min(runs):.2f} s CPU, start-up ({STARTUP}) "
          f"{min(imports):.2f} s -> {beyond:.2f} s beyond start-up "
          f"(target < 1 s -> {'MET' if beyond < 1 else 'NOT MET'})")
    if counted is not None:
        run, startup = counted
        print(f"instructions (callgrind): {run:.4g}, start-up {startup:.4g} -> "
              f"{run - startup:.4g} beyond start-up")
    return 0


if __name__ == "__main__":
    sys.exit(main())
