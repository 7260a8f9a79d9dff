#!/usr/bin/env python3
"""Healthy rollouts moved to a rule's limit: where the false-rollback bound is tight.

    .venv/bin/python bench/synth.py --out /tmp/synaa --seed 20000 --per-shape 30 --shapes 'aa-*'
    .venv/bin/python bench/atlimit.py /tmp/synaa /tmp/lim-lat --metric latency_p95_ms --factor 1.05
    .venv/bin/python bench/calibrate.py /tmp/lim-lat --in-process -j 2

Copies the healthy recordings of SHAPES (default: those without a V2 warm-up, spikes or
gaps, which the bound does not speak for) from SRC to DST with V2's METRIC multiplied by
FACTOR: V2 then sits at the shipped rule's limit (latency +5 %, throughput -5 %), the
least favourable healthy case. Every rollback there is a false one; the always-valid test
bounds them at 1 % per rule and rollout (docs/judge.md, "The false-rollback bound").
Rates of counts (error, parse) are not scaled here: their noise depends on the rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

SHAPES = ("aa-clean", "aa-low-traffic", "aa-very-low-traffic", "aa-high-traffic",
          "aa-ar1-noise", "aa-heavy-tails", "aa-other-levels", "aa-diurnal", "aa-load-step")


def move(line: str, metric: str, factor: float) -> str:
    """One line of a recording, with V2's ``metric`` scaled by ``factor``."""
    row = json.loads(line)
    if row.get("metric") == metric and row.get("version") == "v2":
        row["value"] = round(row["value"] * factor, 6)
        return json.dumps(row) + "\n"
    return line if line.endswith("\n") else line + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--metric", required=True, choices=("latency_p95_ms", "throughput_rps"))
    ap.add_argument("--factor", type=float, required=True)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    args = ap.parse_args(argv)
    shapes = set(args.shapes.split(","))
    with open(os.path.join(args.src, "truth.json")) as fh:
        truths = [t for t in json.load(fh)
                  if t["expect"] == "no_rollback" and t["shape"] in shapes]
    if not truths:
        ap.error(f"no healthy recordings of {sorted(shapes)} in {args.src}")
    os.makedirs(args.dst, exist_ok=True)
    for truth in truths:
        name = truth["scenario"] + ".jsonl"
        with open(os.path.join(args.src, name)) as src, \
                open(os.path.join(args.dst, name), "w") as dst:
            dst.writelines(move(line, args.metric, args.factor) for line in src)
    with open(os.path.join(args.dst, "truth.json"), "w") as fh:
        json.dump(truths, fh, indent=1)
    print(f"{len(truths)} healthy recordings, V2's {args.metric} x{args.factor:g}, in {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
