#!/usr/bin/env python3
"""Score our judge and the reference judges on the real-noise development set.

    .venv/bin/python bench/realnoise.py [--out /tmp/realdata-dev] [--seed N] [-j 1]
        [--judges ours,threshold,kayenta,kayenta-critical] [--no-build] [--config RULES]
        [--save FILE]

1. builds the development set with ``../shared/realdata/build OUT`` (unless ``--no-build``
   and OUT already holds a set): real 1-minute host metrics (SMD) turned into recorded
   rollouts, see ``../shared/realdata/README.md``;
2. replays our backtest in process (as ``bench/calibrate.py --in-process -j N``: the same
   verdicts as ``rollout-watchdog backtest --json``);
3. runs the reference judges of ``../shared/scenarios/reference/judges.py`` (threshold,
   Kayenta-style Mann-Whitney, its all-critical variant);
4. prints, per judge, the figure line (detection, false rollback, early, median delay,
   healthy promoted) and a table per shape family (the realdata README's awk grouping).

The data stays under /tmp: nothing from ``../shared/realdata`` goes into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
BUILD = os.path.join(SHARED, "realdata", "build")
REFERENCE = os.path.join(SHARED, "scenarios", "reference")

sys.path.insert(0, HERE)
import calibrate  # noqa: E402  (bench/calibrate.py: the same replay and verdicts)


def build(out: str, seed: int | None) -> None:
    cmd = [sys.executable, BUILD, out] + ([] if seed is None else ["--seed", str(seed)])
    t0 = time.time()
    subprocess.run(cmd, check=True, capture_output=True)
    print(f"built {out} in {time.time() - t0:.1f} s: {' '.join(cmd)}")


def truths_of(folder: str) -> list[dict[str, Any]]:
    with open(os.path.join(folder, "truth.json")) as fh:
        out: list[dict[str, Any]] = json.load(fh)
    return out


def run_ours(folder: str, jobs: int, config: str | None) -> list[calibrate.Row]:
    truths = truths_of(folder)
    with ProcessPoolExecutor(max_workers=max(1, jobs), initializer=calibrate._load_rules,
                             initargs=(config,)) as procs:
        return list(procs.map(calibrate.judge_in_process, [folder] * len(truths), truths,
                              chunksize=4))


def _reference_one(args: tuple[str, str, dict[str, Any]]) -> calibrate.Row:
    folder, who, truth = args
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # threshold: mean of no baseline
    sys.path.insert(0, REFERENCE)
    import judges  # type: ignore[import-not-found]

    meta, series = judges.load(os.path.join(folder, truth["scenario"] + ".jsonl"))
    return calibrate.classify(truth, judges.JUDGES[who](meta, series))


def run_reference(folder: str, who: str, jobs: int) -> list[calibrate.Row]:
    work = [(folder, who, tr) for tr in truths_of(folder)]
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as procs:
        return list(procs.map(_reference_one, work, chunksize=8))


def family_table(rows: list[calibrate.Row]) -> str:
    """Per shape family: n, detected, missed, early, false, promoted, held, median delay."""
    by: dict[str, list[calibrate.Row]] = defaultdict(list)
    for r in rows:
        by[r.shape].append(r)
    cols = ("detected", "missed", "early", "false_rollback", "promoted", "in_progress")
    head = f"  {'family':<22} {'n':>3} " + " ".join(f"{c[:8]:>8}" for c in cols) + "  med_delay"
    lines = [head]
    for shape in sorted(by, key=lambda s: (not s.startswith("aa-"), s)):
        rs = by[shape]
        counts = " ".join(f"{sum(r.verdict == c for r in rs):>8}" for c in cols)
        med = calibrate.median([r.delay for r in rs if r.delay is not None])
        lines.append(f"  {shape:<22} {len(rs):>3} {counts}  {'' if med is None else med:>9}")
    return "\n".join(lines)


def figure_line(who: str, rows: list[calibrate.Row], seconds: float) -> str:
    f = calibrate.figures(rows)
    fmt = calibrate.fmt
    return (f"{who}: scenarios {f['scenarios']} detection {fmt(f['detection'])} "
            f"false_rollback {fmt(f['false_rollback'])} early {f['early']} "
            f"median_delay_s {f['median_delay_s']} aa_promoted {fmt(f['aa_promoted'])} "
            f"errors {f['errors']} seconds {seconds:.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/realdata-dev")
    ap.add_argument("--seed", type=int, default=None, help="build seed (default: build's own)")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--judges", default="ours,threshold,kayenta,kayenta-critical")
    ap.add_argument("--no-build", action="store_true", help="reuse OUT if it holds a set")
    ap.add_argument("--config", help="our rules file instead of the defaults")
    ap.add_argument("--save", help="write every judge's rows and figures as JSON here")
    args = ap.parse_args(argv)
    if not (args.no_build and os.path.exists(os.path.join(args.out, "truth.json"))):
        build(args.out, args.seed)
    lines, saved = [], {}
    for who in args.judges.split(","):
        t0 = time.time()
        rows = (run_ours(args.out, args.jobs, args.config) if who == "ours"
                else run_reference(args.out, who, args.jobs))
        line = figure_line(who, rows, time.time() - t0)
        print(f"\n{line}\n{family_table(rows)}", flush=True)
        lines.append(line)
        saved[who] = {"figures": calibrate.figures(rows), "rows": [r.__dict__ for r in rows]}
    print("\nsummary (" + args.out + "):")
    for line in lines:
        print("  " + line)
    if args.save:
        with open(args.save, "w") as out:
            json.dump(saved, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
