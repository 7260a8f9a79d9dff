#!/usr/bin/env python3
"""Figures pooled over several sets: one seed's median moves by a tick or three.

    .venv/bin/python bench/calibrate.py /tmp/syn977 --in-process -j 2 --save /tmp/syn977.json
    ...
    .venv/bin/python bench/pool.py /tmp/syn977.json /tmp/syn961.json ... [--judge ours]

Reads the rows ``bench/calibrate.py --save`` or ``bench/realnoise.py --save`` wrote (for
the latter, the judge named by ``--judge``), and prints the score line over all of them
(calibrate.figures: detection, false rollbacks, early, median delay, healthy promoted)
with the counts behind each share and the share of detections within 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import calibrate  # bench/calibrate.py: the same figures

WITHIN = 60  # seconds: the synthetic median delay target


def rows_of(path: str, judge: str) -> list[calibrate.Row]:
    """The rows saved in ``path`` (a calibrate file, or a realnoise one's ``judge``)."""
    with open(path) as fh:
        data: Any = json.load(fh)
    if isinstance(data, dict) and "rows" not in data:
        if judge not in data:
            raise SystemExit(f"{path}: no judge {judge!r} (has {', '.join(sorted(data))})")
        data = data[judge]
    rows = data["rows"] if isinstance(data, dict) else data
    return [calibrate.Row(**row) for row in rows]


def summary(rows: list[calibrate.Row]) -> str:
    figures = calibrate.figures(rows)
    reg = sum(r.expect == "rollback" for r in rows)
    healthy = len(rows) - reg
    delays = [r.delay for r in rows if r.verdict == "detected" and r.delay is not None]
    false = sum(r.verdict == "false_rollback" for r in rows)
    within = sum(d <= WITHIN for d in delays) / len(delays) if delays else None
    return (f"{calibrate.fmt(figures['detection'])} detection ({len(delays)} of {reg}), "
            f"{calibrate.fmt(figures['false_rollback'])} false rollbacks ({false} of "
            f"{healthy}), early {figures['early']}, median delay {figures['median_delay_s']} s, "
            f"{calibrate.fmt(within)} of detections within {WITHIN} s, healthy promoted "
            f"{calibrate.fmt(figures['aa_promoted'])}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", help="rows saved by calibrate.py or realnoise.py")
    ap.add_argument("--judge", default="ours", help="which judge of a realnoise.py file")
    args = ap.parse_args(argv)
    rows = [row for path in args.files for row in rows_of(path, args.judge)]
    print(f"{len(args.files)} sets, {len(rows)} rollouts: {summary(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
