#!/usr/bin/env python3
"""Offline study: would "V2's mean differs from its reference by more than the tolerance",
decided by the mixture SPRT (watchdog/judge/sequential.py) on the HAC variance
(watchdog/judge/hac.py), hold up on the real-noise development set?

    .venv/bin/python bench/realnoise_study.py [--data /tmp/realdata-dev] [--timing]

Needs the set built by bench/realnoise.py (or ``../shared/realdata/build /tmp/realdata-dev``).
Only latency (higher is worse) and throughput (lower is worse) are judged. Every minute,
from V2's first sample, the test looks at the evidence so far. The reference, per variant:

  live      V2 minus live V1 at the same instants (paired differences), V1's baseline-hour
            mean once V1 stops reporting; tolerance = tol x V1's baseline mean
  baseline  V2 minus V1's baseline-hour mean

and the evidence, per variant: ``cum`` = everything since V2's start (one test, alpha);
``stage`` = since the current stage's start, the test restarted each stage with alpha / 6
(Bonferroni over the 6 stage-long windows keeps the whole rollout's bound at alpha).

A scenario counts as rolled back at its first crossing on either metric. Printed per
setting: false rollbacks on aa-* (crosshost, weeklag), early rollbacks on reg-*, detection on
the regressions this rule can see (reg-latency-*, reg-throughput-*), the median delay, and
the Kayenta-style reference judge swept over its own alpha for comparison, on all metrics
and on latency and throughput only (the same metrics as this rule).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections import defaultdict
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
REFERENCE = os.path.join(os.path.dirname(ROOT), "shared", "scenarios", "reference")

from watchdog.judge import hac  # noqa: E402
from watchdog.judge import sequential as sq  # noqa: E402

METRICS = {"latency_p95_ms": 1.0, "throughput_rps": -1.0}  # sign: worse direction positive
ALPHAS = (0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.001)
TOLS = (0.05, 0.10, 0.15, 0.25)
WINDOWS = 6  # stage restarts: 5 stages + 1 after promotion (end 10800 / 1800 s)


def load(path: str) -> tuple[dict[str, Any], dict[tuple[str, str], dict[int, float]]]:
    meta: dict[str, Any] = {}
    series: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    with open(path) as fh:
        for line in fh:
            r = json.loads(line)
            if r.get("kind") == "meta":
                meta = r
            else:
                series[(r["metric"], r["version"])][int(r["t"])] = float(r["value"])
    return meta, series


def trajectory(meta: dict[str, Any], series: dict[tuple[str, str], dict[int, float]],
               metric: str, ref: str, tol_rel: float, per_stage: bool
               ) -> list[tuple[int, float, float]]:
    """(t, log Lambda, effective n) at every V2 sample: alpha-free, swept afterwards."""
    v1, v2 = series.get((metric, "v1"), {}), series.get((metric, "v2"), {})
    b0, b1 = meta["baseline"]["from"], meta["baseline"]["to"]
    base = [v for t, v in v1.items() if b0 <= t < b1]
    if not base or not v2:
        return []
    level = float(np.mean(base))
    tol, sign, tau = tol_rel * abs(level), METRICS[metric], 0.5 * tol_rel * abs(level)
    stage_s = meta["plan"]["stage_seconds"]
    times = sorted(t for t in v2 if t >= 0)
    diffs = np.array([sign * (v2[t] - (v1[t] if ref == "live" and t in v1 else level))
                      for t in times])
    out, start = [], 0
    for i, t in enumerate(times):
        if per_stage and t // stage_s != times[start] // stage_s:
            start = i
        ev = sq.evidence(diffs[start:i + 1], tol)
        if ev is None:
            continue
        out.append((t, sq.log_mixture_lr(ev.excess_sum, ev.n, ev.long_run_var, tau),
                    ev.effective_n))
    return out


def first_cross(traj: list[tuple[int, float, float]], alpha: float) -> int | None:
    bound = sq.threshold(alpha)
    for t, log_lr, eff in traj:
        if eff >= sq.MIN_EFFECTIVE_N and log_lr >= bound:
            return t
    return None


def score(truths: list[dict[str, Any]], rollback: dict[str, int | None]) -> str:
    fam: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    early = 0
    delays: list[int] = []
    seen = det = 0
    for tr in truths:
        at, shape = rollback[tr["scenario"]], tr["shape"]
        if tr["expect"] != "rollback":
            fam[shape][0] += at is not None
            fam[shape][1] += 1
            continue
        if at is not None and at < tr["onset"]:
            early += 1
        if shape.startswith(("reg-latency", "reg-throughput")):
            seen += 1
            hit = at is not None and at >= tr["onset"]
            det += hit
            fam[shape][0] += hit
            fam[shape][1] += 1
            if hit and at is not None:
                delays.append(at - tr["onset"])
    aa = [k for k in fam if k.startswith("aa-")]
    false = sum(fam[k][0] for k in aa) / max(1, sum(fam[k][1] for k in aa))
    med = sorted(delays)[len(delays) // 2] if delays else None
    per = " ".join(f"{k.replace('reg-', '')} {fam[k][0]}/{fam[k][1]}" for k in sorted(fam))
    return (f"false {false:.3f} early {early:>3} detection {det / max(1, seen):.3f} "
            f"med_delay {med}  | {per}")


def kayenta_curve(folder: str, truths: list[dict[str, Any]]) -> None:
    sys.path.insert(0, REFERENCE)
    import judges  # type: ignore[import-not-found]

    warnings.filterwarnings("ignore", category=RuntimeWarning)
    loaded = {tr["scenario"]: judges.load(os.path.join(folder, tr["scenario"] + ".jsonl"))
              for tr in truths}
    everything = dict(judges.WORSE)
    for label, keep in (("all metrics", everything), ("latency + throughput only", {
            m: w for m, w in everything.items() if m in METRICS})):
        judges.WORSE = keep  # kayenta_judge reads the module's table (the file is not edited)
        print(f"\nkayenta ({label}, Mann-Whitney per stage) swept over its alpha:")
        for alpha in (0.2, 0.05, 0.02, 0.005, 0.001, 1e-4):
            rb = {}
            for name, (meta, series) in loaded.items():
                res = judges.kayenta_judge(meta, series, alpha=alpha)
                rb[name] = res["rollback_at"] if res["outcome"] == "rolled_back" else None
            print(f"  alpha {alpha:<7} {score(truths, rb)}")
    judges.WORSE = everything


def timing() -> None:
    rng = np.random.default_rng(0)
    for n in (30, 180, 360):
        d = rng.standard_normal(n)
        reps = 2000
        t0 = time.perf_counter()
        for _ in range(reps):
            ev = sq.evidence(d, 0.5)
            assert ev is not None
            sq.look(sq.SequentialState(), ev.excess_sum, ev.n, ev.long_run_var, 0.25, 0.05,
                    ev.effective_n)
        per = (time.perf_counter() - t0) / reps * 1e6
        t0 = time.perf_counter()
        for _ in range(reps):
            hac.huber(d)
        hub = (time.perf_counter() - t0) / reps * 1e6
        print(f"n {n:>3}: evidence + look {per:6.1f} us; huber {hub:6.1f} us")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/tmp/realdata-dev")
    ap.add_argument("--timing", action="store_true", help="only time one rule evaluation")
    ap.add_argument("--no-kayenta", action="store_true")
    args = ap.parse_args()
    if args.timing:
        timing()
        return 0
    with open(os.path.join(args.data, "truth.json")) as fh:
        truths = json.load(fh)
    loaded = {tr["scenario"]: load(os.path.join(args.data, tr["scenario"] + ".jsonl"))
              for tr in truths}
    t0 = time.time()
    for ref in ("live", "baseline"):
        for per_stage in (False, True):
            for tol in TOLS:
                trajs = {name: [trajectory(meta, series, m, ref, tol, per_stage)
                                for m in METRICS] for name, (meta, series) in loaded.items()}
                print(f"\nreference {ref}, evidence {'stage' if per_stage else 'cum'}, "
                      f"tolerance {tol:.0%}:", flush=True)
                for alpha in ALPHAS:
                    a = alpha / WINDOWS if per_stage else alpha
                    rb: dict[str, int | None] = {}
                    for name, tr in trajs.items():
                        hits = [h for h in (first_cross(x, a) for x in tr) if h is not None]
                        rb[name] = min(hits) if hits else None
                    print(f"  alpha {alpha:<6} {score(truths, rb)}")
    print(f"\n(study: {time.time() - t0:.0f} s)")
    if not args.no_kayenta:
        kayenta_curve(args.data, truths)
    return 0


if __name__ == "__main__":
    sys.exit(main())
