#!/usr/bin/env python3
"""Score our judge and the reference judges on the real-noise development set.

    .venv/bin/python bench/realnoise.py [--out /tmp/realdata-dev] [--seed N] [-j 1]
        [--judges ours,threshold,kayenta,kayenta-critical] [--no-build] [--config RULES]
        [--save FILE] [--sweep [--synthetic SYNTH_DIR]]

1. builds the development set with ``../shared/realdata/build OUT`` (unless ``--no-build``
   and OUT already holds a set): real 1-minute host metrics (SMD) turned into recorded
   rollouts, see ``../shared/realdata/README.md``;
2. replays our backtest in process (as ``bench/calibrate.py --in-process -j N``: the same
   verdicts as ``rollout-watchdog backtest --json``);
3. runs the reference judges of ``../shared/scenarios/reference/judges.py`` (threshold,
   Kayenta-style Mann-Whitney, its all-critical variant);
4. prints, per judge, the figure line (detection, false rollback, early, median delay,
   healthy promoted) and a table per shape family (the realdata README's awk grouping).

``--sweep`` draws the trade-off curve instead: detection against false rollback as one
confidence setting of each judge is swept. Ours: every rule's ``alpha`` (and
``exact_alpha``, and the always-valid test's ``av_alpha``) times a factor, its
``scan_threshold`` scaled as log(1 / alpha) is (a CUSUM's threshold for a given
false-alarm rate grows like it) and the level-episode hold scaled as log(1 / av_alpha)
(healthy episodes outlast a hold with a chance falling about exponentially in its
length), and, as a second curve, every rollback rule's ``for``
(how long a breach must persist). The reference judges: Kayenta-style's Mann-Whitney
alpha (its all-critical variant, which rolls back on the first failing metric), the
threshold judge's number of failed checks in a row. It ends with a check that ours lies
above both: at every reference point, our best detection at
a false-rollback rate no higher than that point's is at least its detection.
``--synthetic DIR`` (a set from ``bench/synth.py``) replays each of our points there as
well and prints its false rollbacks, early rollbacks and median delay beside the real
figures: one setting, both kinds of noise, so the cost of the synthetic delay target on
real noise reads off one table.

The data stays under /tmp: nothing from ``../shared/realdata`` goes into the repository.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
BUILD = os.path.join(SHARED, "realdata", "build")
REFERENCE = os.path.join(SHARED, "scenarios", "reference")

sys.path.insert(0, HERE)
sys.path.insert(1, ROOT)  # this tree's watchdog, before any installed package of that name
import calibrate  # noqa: E402  (bench/calibrate.py: the same replay and verdicts)

OURS_FACTORS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3)
OURS_HOLDS = (0.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0)
KAYENTA_ALPHAS = (1e-6, 1e-4, 1e-3, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5)
THRESHOLD_RUNS = (1, 2, 3, 5, 10, 15, 20, 30, 45, 60)


def build(out: str, seed: int | None) -> None:
    cmd = [sys.executable, BUILD, out] + ([] if seed is None else ["--seed", str(seed)])
    t0 = time.time()
    subprocess.run(cmd, check=True, capture_output=True)
    print(f"built {out} in {time.time() - t0:.1f} s: {' '.join(cmd)}")


def truths_of(folder: str) -> list[dict[str, Any]]:
    with open(os.path.join(folder, "truth.json")) as fh:
        out: list[dict[str, Any]] = json.load(fh)
    return out


def run_ours(folder: str, jobs: int, config: str | None, factor: float | None = None,
             hold: float | None = None) -> list[calibrate.Row]:
    truths = truths_of(folder)
    with ProcessPoolExecutor(max_workers=max(1, jobs), initializer=_load_rules,
                             initargs=(config, factor, hold)) as procs:
        return list(procs.map(calibrate.judge_in_process, [folder] * len(truths), truths,
                              chunksize=4))


def _load_rules(config: str | None, factor: float | None, hold: float | None) -> None:
    calibrate._load_rules(config)
    if factor is not None or hold is not None:
        calibrate._RULES = scaled(calibrate._RULES, 1.0 if factor is None else factor, hold)
    if factor is not None:
        # the always-valid test's alpha (judge/tuning.py) is part of the same setting
        from dataclasses import replace

        from watchdog.judge.tuning import tuning, use
        # and so is the level-episode hold (judge/levelhold.py): healthy episodes outlast
        # a hold T with a chance falling about as exp(-T / their mean length), so the hold
        # for a false-alarm rate alpha grows like log(1 / alpha), as a scan threshold does
        base = tuning()
        av_alpha = min(base.av_alpha * factor, 0.45)
        hold = base.level_hold_seconds * math.log(1 / av_alpha) / math.log(1 / base.av_alpha)
        use(replace(base, av_alpha=av_alpha, level_hold_seconds=hold))


def scaled(rules: Any, factor: float, hold: float | None = None) -> Any:
    """The rule set with every alpha times ``factor`` (kept below 0.45) and every
    scan_threshold scaled as log(1 / alpha) is: one confidence setting for the judge.
    ``hold``: every rollback rule's ``for`` at least this many seconds (persistence)."""
    from dataclasses import replace

    def one(rule: Any) -> Any:
        update: dict[str, Any] = {}
        if hold is not None and str(rule.action) in ("rollback", "RuleAction.ROLLBACK"):
            update["for_"] = max(rule.for_, hold)
        alpha = getattr(rule, "alpha", None)
        if alpha is not None:
            update["alpha"] = min(alpha * factor, 0.45)
            scan = getattr(rule, "scan_threshold", None)
            if scan is not None:
                update["scan_threshold"] = max(scan * math.log(1 / update["alpha"])
                                               / math.log(1 / alpha), 0.5)
        exact = getattr(rule, "exact_alpha", None)
        if exact is not None:
            update["exact_alpha"] = min(exact * factor, 0.45)
        return rule.model_copy(update=update) if update else rule

    modules = {name: m.model_copy(update={"rules": [one(r) for r in m.rules]})
               for name, m in rules.modules.items()}
    return replace(rules, modules=modules)


def _threshold_k(meta: dict[str, Any], series: Any, runs: int) -> dict[str, Any]:
    """The reference threshold judge (../shared/scenarios/reference/judges.py) with
    ``runs`` failed checks in a row instead of 3; its limits as they are there."""
    import judges  # type: ignore[import-not-found]

    base = {m: np.mean(judges.window(series, m, "v1", meta["baseline"]["from"],
                                     meta["baseline"]["to"])) for m in judges.WORSE}
    stages, stage_s = meta["plan"]["stages"], meta["plan"]["stage_seconds"]
    fails = 0
    for t in range(60, meta["end"] + 1, 60):
        bad = False
        for m in judges.WORSE:
            xs = judges.window(series, m, "v2", t - 60, t)
            if not xs:
                continue
            x = float(np.mean(xs))
            bad |= (m == "latency_p95_ms" and x > base[m] * 1.25) \
                or (m == "error_rate" and x > 0.02) \
                or (m == "throughput_rps" and x < base[m] * 0.85) \
                or (m == "parse_rate" and x < 0.90) \
                or (m == "memory_rss_bytes" and x > base[m] * 1.20)
        fails = fails + 1 if bad else 0
        if fails >= runs:
            return {"outcome": "rolled_back", "rollback_at": t}
        if t >= len(stages) * stage_s:
            return {"outcome": "promoted", "rollback_at": None}
    return {"outcome": "in_progress", "rollback_at": None}


def _swept_one(args: tuple[str, str, float, dict[str, Any]]) -> calibrate.Row:
    folder, who, setting, truth = args
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    sys.path.insert(0, REFERENCE)
    import judges

    meta, series = judges.load(os.path.join(folder, truth["scenario"] + ".jsonl"))
    if who == "kayenta-critical":
        res = judges.kayenta_judge(meta, series, alpha=setting, critical=True)
    elif who == "kayenta":
        res = judges.kayenta_judge(meta, series, alpha=setting)
    else:
        res = _threshold_k(meta, series, int(setting))
    return calibrate.classify(truth, res)


def run_swept(folder: str, who: str, setting: float, jobs: int) -> list[calibrate.Row]:
    work = [(folder, who, setting, tr) for tr in truths_of(folder)]
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as procs:
        return list(procs.map(_swept_one, work, chunksize=8))


Curve = list[tuple[float, float, float]]


def sweep(folder: str, jobs: int, config: str | None,
          synthetic: str | None = None) -> dict[str, Curve]:
    """(setting, false rollback, detection) per judge, printed as it goes. With
    ``synthetic`` (a folder of synthetic recordings), each of our points is also replayed
    there, and its false rollback and median delay are printed beside the real ones: the
    same setting on white noise, where the synthetic targets (median delay <= 60 s,
    no false rollback) apply."""
    curves: dict[str, Curve] = {}
    plan: list[tuple[str, tuple[float, ...]]] = [
        ("ours (alpha x)", OURS_FACTORS), ("ours (for, s)", OURS_HOLDS),
        ("kayenta-critical (alpha)", KAYENTA_ALPHAS),
        ("kayenta (alpha)", KAYENTA_ALPHAS), ("threshold (failed checks in a row)",
                                              tuple(float(k) for k in THRESHOLD_RUNS))]
    for label, settings in plan:
        who = label.split(" ")[0]
        extra = synthetic is not None and who == "ours"
        print(f"\n{label}:\n  {'setting':>9} {'false':>6} {'detect':>6} {'early':>5} "
              f"{'promoted':>8} {'median_s':>8}"
              + (f" {'syn_false':>9} {'syn_early':>9} {'syn_median_s':>12}" if extra else ""),
              flush=True)
        points = []
        for setting in settings:
            hold = setting if label.startswith("ours (for") else None
            factor = setting if who == "ours" and hold is None else None
            if who == "ours":
                rows = run_ours(folder, jobs, config, factor=factor, hold=hold)
            else:
                rows = run_swept(folder, who, setting, jobs)
            f = calibrate.figures(rows)
            points.append((setting, f["false_rollback"], f["detection"]))
            line = (f"  {setting:>9g} {calibrate.fmt(f['false_rollback']):>6} "
                    f"{calibrate.fmt(f['detection']):>6} {f['early']:>5} "
                    f"{calibrate.fmt(f['aa_promoted']):>8} {f['median_delay_s']!s:>8}")
            if extra:
                assert synthetic is not None
                g = calibrate.figures(run_ours(synthetic, jobs, config, factor=factor,
                                               hold=hold))
                line += (f" {calibrate.fmt(g['false_rollback']):>9} {g['early']:>9} "
                         f"{g['median_delay_s']!s:>12}")
            print(line, flush=True)
        curves[label] = points
    ours = [p for label, points in curves.items() if label.startswith("ours")
            for p in points]
    print("\nours above the reference judges (at each of their points, our best detection "
          "with no more false rollbacks, over both of our settings):")
    for label, points in curves.items():
        if label.startswith("ours"):
            continue
        worse = []
        for setting, fr, det in points:
            best = max((d for _, f, d in ours if f <= fr + 1e-9), default=None)
            if best is None or best < det:
                worse.append(f"{setting:g} (false {fr:.3f}, detection {det:.3f} vs ours "
                             f"{'none' if best is None else f'{best:.3f}'})")
        print(f"  {label}: " + ("above everywhere" if not worse
                                else "NOT above at " + "; ".join(worse)))
    return curves


def _reference_one(args: tuple[str, str, dict[str, Any]]) -> calibrate.Row:
    folder, who, truth = args
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # threshold: mean of no baseline
    sys.path.insert(0, REFERENCE)
    import judges

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
    ap.add_argument("--sweep", action="store_true",
                    help="the trade-off curve of every judge (see above)")
    ap.add_argument("--synthetic", metavar="DIR",
                    help="with --sweep: replay each of our points on this synthetic set "
                         "too (its false rollback, early, median delay)")
    args = ap.parse_args(argv)
    if args.synthetic is not None:
        if not args.sweep:
            ap.error("--synthetic goes with --sweep")
        if not os.path.exists(os.path.join(args.synthetic, "truth.json")):
            ap.error(f"--synthetic {args.synthetic}: no truth.json there (build one with "
                     f"bench/synth.py --out {args.synthetic})")
    if not (args.no_build and os.path.exists(os.path.join(args.out, "truth.json"))):
        build(args.out, args.seed)
    if args.sweep:
        curves = sweep(args.out, args.jobs, args.config, args.synthetic)
        if args.save:
            with open(args.save, "w") as out:
                json.dump(curves, out, indent=1)
        return 0
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
