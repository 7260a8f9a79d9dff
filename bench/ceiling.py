#!/usr/bin/env python3
"""How far apart are healthy and regressed rollouts in a real-noise set, for any detector
that reads one window of V2 against a reference? A ceiling to hold our judge against.

    .venv/bin/python bench/ceiling.py [/tmp/realdata-dev] [--ours -j 2]

Needs a set built by ``../shared/realdata/build`` (bench/realnoise.py builds one). Per
metric a family of window detectors, each a number per window of V2 (one sample a
minute), worse is larger:

  latency, throughput   log(V2 / reference), sign flipped where lower is worse
  error rate            V2 - reference (points)
  memory                V2's least-squares slope (per hour, as a share of V1's baseline
                        level), less the reference's

over ``W`` minutes (15, 30, 60, 90), aggregated by the mean or the median (slopes: least
squares), against ``live`` V1 (the same minutes, while V1 serves), the ``baseline``
(V1's hour before the start: V2 is level-matched to it; it stands in for live V1 where
V1 misses a minute of the window, as ``against: auto`` does) or ``both`` (the smaller of the
two: V2 worse than both). A scenario's score is its largest window: on a healthy (A/A)
rollout over all of it, on a regression over the windows wholly at or after the onset
(an earlier window would be an early rollback). The threshold is the A/A scores' ``q``
quantile, so a detector rolls back ``1 - q`` of the healthy rollouts of that metric.

Printed per regression shape: the detection of the best detector of the family at
q = 0.95 (the whole 5 % false-rollback budget spent on that one metric) and at 0.99,
and with ``--ours`` our judge's detection on the same scenarios (bench/realnoise.py's
replay). Then the whole set: one rule per metric (a detector and its threshold, or
none), chosen for the most regressions caught with at most 5 % of the healthy rollouts
rolled back by any of them, and the detection over all regressions. Thresholds are set
on the very scenarios they are scored on and the best detector is picked after the fact,
so every figure is an upper bound for the family: where it is below a target, no
detector of this kind meets the target on this set.
The data stays under /tmp: nothing from ``../shared/realdata`` goes into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

HERE = os.path.dirname(os.path.abspath(__file__))
STEP = 60
WINDOWS = (15, 30, 60, 90)
METRICS = {  # scenario metric -> (shape prefix, kind, sign: +1 higher is worse)
    "latency_p95_ms": ("reg-latency", "ratio", 1.0),
    "throughput_rps": ("reg-throughput", "ratio", -1.0),
    "error_rate": ("reg-errors", "diff", 1.0),
    "memory_rss_bytes": ("reg-memleak", "slope", 1.0),
}


@dataclass(frozen=True)
class Detector:
    metric: str
    ref: str  # live | baseline | both
    agg: str  # mean | median | slope
    width: int  # minutes

    def __str__(self) -> str:
        return f"{self.ref} {self.agg} {self.width} min"


@dataclass
class Series:
    v1: np.ndarray  # per minute from t = 0, NaN where V1 does not report
    v2: np.ndarray
    base: np.ndarray  # V1's baseline hour (t < 0)


def load(path: str) -> dict[str, Series]:
    rows: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    end = 0
    with open(path) as fh:
        for line in fh:
            r = json.loads(line)
            if r.get("kind") == "meta":
                end = int(r["end"])
                continue
            rows[r["metric"]][r["version"]][int(r["t"])] = float(r["value"])
    n = end // STEP
    out = {}
    for metric, by in rows.items():
        v1, v2 = (_per_minute(by.get(version, {}), n, end) for version in ("v1", "v2"))
        base = np.array([x for t, x in by.get("v1", {}).items() if t < 0])
        if len(base) and not np.isnan(v2).all():
            out[metric] = Series(v1, v2, base)
    return out


def _per_minute(samples: dict[int, float], n: int, end: int) -> np.ndarray:
    """One version's samples from t = 0 on, one a minute (NaN where it did not report)."""
    out = np.full(n, np.nan)
    for t, x in samples.items():
        if 0 <= t < end:
            out[t // STEP] = x
    return out


def _agg(w: np.ndarray, agg: str) -> np.ndarray:
    if agg == "median":
        return np.asarray(np.median(w, axis=1))
    if agg == "mean":
        return np.asarray(w.mean(axis=1))
    t = np.arange(w.shape[1], dtype=float) - (w.shape[1] - 1) / 2  # least squares slope
    return np.asarray((w * t).sum(axis=1) / (t * t).sum() * 60.0)  # per hour


def window_scores(s: Series, d: Detector, first: int) -> np.ndarray:
    """The detector's value for every window of ``d.width`` minutes starting at or after
    minute ``first`` (NaN where a sample it needs is missing)."""
    kind, sign = METRICS[d.metric][1], METRICS[d.metric][2]
    if len(s.v2) - first < d.width:
        return np.array([])
    w2 = sliding_window_view(s.v2[first:], d.width)
    w1 = sliding_window_view(s.v1[first:], d.width)
    a2 = _agg(w2, d.agg)
    b = float(np.median(s.base)) if d.agg != "mean" else float(np.mean(s.base))
    level = max(b, 1e-12)
    if kind == "slope":
        b = 0.0  # against the baseline, a slope is compared with none

    def worse(x: np.ndarray, ref: np.ndarray | float) -> np.ndarray:
        if kind == "ratio":
            return np.asarray(sign * np.log(np.maximum(x, 1e-12) / np.maximum(ref, 1e-12)))
        return np.asarray(sign * (x - ref) / (level if kind == "slope" else 1.0))

    vs_base = worse(a2, b)
    if d.ref == "baseline":
        return vs_base
    # where V1 misses a minute of the window (the 100 % stage), the baseline stands in for
    # it, as the judge's ``against: auto`` does
    vs_live = np.where(np.isnan(w1).any(axis=1), vs_base, worse(a2, _agg(w1, d.agg)))
    return np.asarray(vs_live if d.ref == "live" else np.minimum(vs_live, vs_base))


def score(s: Series, d: Detector, first: int) -> float:
    v = window_scores(s, d, first)
    v = v[~np.isnan(v)]
    return float(v.max()) if len(v) else -np.inf


def detectors(metric: str) -> list[Detector]:
    aggs = ("slope",) if METRICS[metric][1] == "slope" else ("mean", "median")
    widths = tuple(w for w in WINDOWS if w >= 30) if aggs == ("slope",) else WINDOWS
    return [Detector(metric, ref, agg, w) for ref in ("live", "baseline", "both")
            for agg in aggs for w in widths]


@dataclass
class Scored:
    """A set's scenarios and every detector's scores on them."""

    folder: str
    healthy: list[dict[str, Any]]
    regressed: list[dict[str, Any]]
    aa: dict[Detector, np.ndarray]  # per healthy rollout (-inf where it has no such metric)
    reg: dict[Detector, np.ndarray]  # per regression, its windows after the onset only


def scored(folder: str) -> Scored:
    with open(os.path.join(folder, "truth.json")) as fh:
        truths = json.load(fh)
    data = {t["scenario"]: load(os.path.join(folder, t["scenario"] + ".jsonl"))
            for t in truths}
    healthy = [t for t in truths if t["expect"] == "no_rollback"]
    regressed = [t for t in truths if t["expect"] == "rollback"]

    def of(t: dict[str, Any], metric: str, d: Detector, first: int) -> float:
        series = data[t["scenario"]].get(metric)
        return -np.inf if series is None else score(series, d, first)

    aa, reg = {}, {}
    for metric in METRICS:
        for d in detectors(metric):
            aa[d] = np.array([of(t, metric, d, 0) for t in healthy])
            reg[d] = np.array([of(t, metric, d, int(t["onset"]) // STEP) for t in regressed])
    return Scored(folder, healthy, regressed, aa, reg)


Rules = dict[str, tuple[Detector, float] | None]  # per metric: a detector > a threshold


@dataclass
class Choice:
    rules: Rules
    fired: np.ndarray  # per healthy rollout: some metric's rule fired
    hits: np.ndarray  # per regression: some metric's rule fired at or after the onset

    def describe(self) -> str:
        return "; ".join(f"{m} off" if r is None else f"{m} {r[0]} > {r[1]:.3g}"
                         for m, r in self.rules.items())


def apply(rules: Rules, s: Scored) -> Choice:
    """The rules on a set (the same thresholds, wherever they were chosen)."""
    fired = np.zeros(len(s.healthy), bool)
    hits = np.zeros(len(s.regressed), bool)
    for rule in rules.values():
        if rule is not None:
            fired |= s.aa[rule[0]] > rule[1]
            hits |= s.reg[rule[0]] > rule[1]
    return Choice(rules, fired, hits)


def whole_set(s: Scored, budget: float) -> Choice:
    """One rule per metric (a detector and a threshold, or none), chosen by coordinate
    ascent for the most regressions caught with at most ``budget`` of the healthy
    rollouts rolled back. A regression counts as caught when any metric's rule fires on
    it at or after the onset (its windows before the onset are not scored: optimistic)."""
    options: dict[str, list[tuple[Detector, float] | None]] = {}
    for metric in METRICS:
        options[metric] = [None]
        for d in detectors(metric):
            a = s.aa[d][np.isfinite(s.aa[d])]
            if len(a):  # (no healthy rollout has the metric: no threshold to set)
                options[metric] += [(d, float(t)) for t in np.unique(a[a >= np.quantile(a, 0.5)])]

    def ascend(rules: Rules) -> Choice:
        best = apply(rules, s)
        improved = True
        while improved:
            improved = False
            for metric in METRICS:
                for option in options[metric]:
                    trial = apply({**rules, metric: option}, s)
                    more = trial.hits.sum() > best.hits.sum()
                    cheaper = trial.hits.sum() == best.hits.sum() \
                        and trial.fired.sum() < best.fired.sum()
                    if np.mean(trial.fired) <= budget and (more or cheaper):
                        rules, best, improved = {**rules, metric: option}, trial, True
        return best

    # coordinate ascent finds a local best: start it from nothing, and from each metric's
    # best rule alone, and keep the best of those
    nothing: Rules = dict.fromkeys(METRICS)
    starts = [nothing]
    for metric in METRICS:
        alone = [apply({**nothing, metric: o}, s) for o in options[metric]]
        starts.append(max((c for c in alone if np.mean(c.fired) <= budget),
                          key=lambda c: int(c.hits.sum())).rules)
    return max((ascend(r) for r in starts), key=lambda c: (c.hits.sum(), -c.fired.sum()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default="/tmp/realdata-dev")
    ap.add_argument("--ours", action="store_true", help="also replay our judge (minutes)")
    ap.add_argument("-j", "--jobs", type=int, default=1)
    ap.add_argument("--budget", type=float, default=0.05, help="whole-set false rollbacks")
    ap.add_argument("--tune-on", metavar="DIR", help="also choose the whole-set rules on "
                    "this other set and score them here (held out)")
    args = ap.parse_args(argv)
    for folder in (args.folder, args.tune_on):
        if folder is not None and not os.path.exists(os.path.join(folder, "truth.json")):
            print(f"ceiling: {folder} holds no truth.json: build a set first "
                  f"(../shared/realdata/build {folder})", file=sys.stderr)
            return 2
    s = scored(args.folder)
    ours: dict[str, float] = {}
    if args.ours:
        sys.path.insert(0, HERE)
        import realnoise  # a bench sibling, imported only when asked
        by: dict[str, list[bool]] = defaultdict(list)
        for r in realnoise.run_ours(args.folder, args.jobs, None):
            by[r.shape].append(r.verdict == "detected")
        ours = {shape: float(np.mean(v)) for shape, v in by.items()}

    def detection(d: Detector, q: float, shape: str) -> float:
        a = s.aa[d][np.isfinite(s.aa[d])]
        if not len(a):
            return float("nan")
        threshold = np.quantile(a, q)
        hits = [v > threshold for t, v in zip(s.regressed, s.reg[d], strict=True)
                if t["shape"] == shape]
        return float(np.mean(hits))

    print(f"{args.folder}: {len(s.healthy)} healthy, {len(s.regressed)} regressions; best "
          f"window detector per shape, threshold at the healthy scores' quantile q")
    print(f"  {'shape':<22}{'n':>4}{'ours':>7}   {'q=0.95 (5 % false on it)':<36}"
          f"{'q=0.99 (1 %)':<36}")
    shapes = sorted({t["shape"] for t in s.regressed})
    for shape in shapes:
        metric = next(m for m, v in METRICS.items() if shape.startswith(v[0]))
        cells = []
        for q in (0.95, 0.99):
            found, best = max(((detection(d, q, shape), d) for d in detectors(metric)),
                              key=lambda fd: fd[0])
            cells.append(f"{found:.2f} ({best})")
        n = sum(t["shape"] == shape for t in s.regressed)
        mine = f"{ours[shape]:.2f}" if shape in ours else "-"
        print(f"  {shape:<22}{n:>4}{mine:>7}   {cells[0]:<36}{cells[1]:<36}")

    chosen = whole_set(s, args.budget)
    print(f"whole set, one rule per metric chosen here, false rollbacks <= {args.budget:g}: "
          f"detection {np.mean(chosen.hits):.3f} (false {np.mean(chosen.fired):.3f}) with "
          f"{chosen.describe()}")
    if args.tune_on:
        held = apply(whole_set(scored(args.tune_on), args.budget).rules, s)
        print(f"whole set, the rules chosen on {args.tune_on}: detection "
              f"{np.mean(held.hits):.3f} false {np.mean(held.fired):.3f} with "
              f"{held.describe()}")
    if ours:
        detected = [ours[shape] for shape in shapes if shape in ours]
        print(f"ours: detection {np.mean(detected):.3f} (mean over the {len(detected)} "
              f"shapes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
