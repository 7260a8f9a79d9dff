#!/usr/bin/env python3
"""How soon could any judge roll back a synthetic regression? A clairvoyant delay bound.

    .venv/bin/python bench/delaybound.py /tmp/syn961 [--ours ROWS.json | -j 2] [--alpha 0.01]

For each regression of a set made by ``bench/synth.py`` and each metric a shipped
relative rule judges against a limit (latency +5 %, error rate +50 % and at least 0.3
points, throughput -5 %, parse rate -3 %), the excess of each V2 sample over the limit,
``x = s (V2 - limit)`` with ``s`` the sign that makes worse positive. The limit is set on
V1's mean over the same stage: the clairvoyant knows V1's level exactly.

After the onset the clairvoyant also knows what the regression does: the mean of ``x``
over the onset's stage (a step) or its least-squares line there (a ramp, for creeps), and
the noise around it, all read in hindsight from the very samples it then tests. It runs
Wald's sequential probability ratio test of "V2 at the limit" (mean 0) against "V2 as it
is" at ``alpha``, our always-valid test's budget per rule and rollout; its delay is the
first crossing. For independent Gaussian samples no test whose chance of a rollback at
the limit is at most ``alpha`` has a shorter expected delay against that alternative
(Wald and Wolfowitz 1948). A judge must also learn the size and the noise, tell a
warm-up from a regression, survive heavy tails, and split ``alpha`` over several rules;
so this is a lower bound in spirit: where the bound itself is above 60 s, no judge at
this false-rollback budget gets there. A regression's bound is its fastest metric and
model. Memory leaks (growth rules) and shapes whose mean is not a step or a ramp (bursts,
intermittent failures) are shown, but not bounded: there the stage's mean dilutes the
effect, and the "bound" can come after our judge.

Printed per shape: our median delay (``--ours``: rows saved by ``bench/calibrate.py
--save``, else a replay, as calibrate does), the bound's, and how many of each come
within 60 s; then the share within 60 s over the bounded regressions and over all.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
STAGE_S = 600
MIN_SEGMENT = 6  # fewer samples after the onset in its stage: the next stage too


def _shipped_limits() -> tuple[dict[str, tuple[float, float, float]], tuple[str, ...]]:
    """Per metric a shipped relative rule limits: (sign, +1 where higher is worse;
    relative tolerance; least absolute margin), and the metrics judged as counts (``noise:
    binomial``), read off the default rules so the bound follows them."""
    from watchdog.config.loader import load_default_rules
    from watchdog.config.schema import RelativeRule
    from watchdog.model import Direction

    module = load_default_rules().for_module("*")
    limits: dict[str, tuple[float, float, float]] = {}
    counted: list[str] = []
    for rule in module.rules:
        if not isinstance(rule, RelativeRule) or rule.metric in limits:
            continue
        higher = module.metrics[rule.metric].direction is not Direction.LOWER_IS_WORSE
        tolerance = rule.max_increase if rule.max_increase is not None else rule.max_decrease
        limits[rule.metric] = (1.0 if higher else -1.0, float(tolerance or 0.0),
                               float(rule.min_effect or 0.0))
        if rule.noise == "binomial":
            counted.append(rule.metric)
    return limits, tuple(counted)


LIMITS, COUNTS = _shipped_limits()  # COUNTS: for parse rates the events are the failures
UNBOUNDED = ("reg-memory-leak", "reg-error-bursts", "-intermittent")


@dataclass(frozen=True)
class Bound:
    delay: float  # seconds after the onset; inf: the test never crosses
    metric: str
    model: str  # step | ramp


@dataclass(frozen=True)
class Segment:
    """One metric after the onset: times, V2's excess over the limit, the limit."""

    t: np.ndarray
    x: np.ndarray
    limit: float

    def aligned(self, t: np.ndarray) -> np.ndarray:
        """The excess at the instants ``t`` (NaN where this metric has no sample)."""
        at = dict(zip(self.t.tolist(), self.x.tolist(), strict=True))
        return np.array([at.get(s, math.nan) for s in t.tolist()])


@dataclass(frozen=True)
class Gaussian:
    """Samples of the excess ``x`` with noise ``sd`` around their mean."""

    sd: float

    def llr(self, x: np.ndarray, mean: np.ndarray, null: np.ndarray) -> np.ndarray:
        """Per sample, log p(x | mean) - log p(x | null)."""
        return ((x - null) ** 2 - (x - mean) ** 2) / (2.0 * self.sd * self.sd)


@dataclass(frozen=True)
class Counts:
    """A rate of events among ``n`` requests (or messages) a sample, binomial: the excess
    ``x`` is the events' share less ``share_at_limit``."""

    n: float
    share_at_limit: float

    def llr(self, x: np.ndarray, mean: np.ndarray, null: np.ndarray) -> np.ndarray:
        e = self.share_at_limit + x
        p1, p0 = (np.clip(self.share_at_limit + m, 1e-9, 1 - 1e-9) for m in (mean, null))
        return self.n * (e * np.log(p1 / p0) + (1 - e) * np.log((1 - p1) / (1 - p0)))


def evidence(
    x: np.ndarray, mean: np.ndarray, noise: Gaussian | Counts, nulls: np.ndarray
) -> np.ndarray:
    """After each sample, the least log likelihood ratio of ``mean`` against any null mean
    profile (a row of ``nulls``) over the samples so far; a NaN sample adds nothing; -inf
    without a null to reject."""
    if not len(nulls):
        return np.full(len(x), -np.inf)
    step = noise.llr(x, mean, nulls)
    return np.asarray(np.cumsum(np.nan_to_num(step), axis=1).min(axis=0))


def noise_of(metric: str, seg: Segment, mean: np.ndarray, ddof: int) -> Gaussian | Counts | None:
    """How the metric's samples scatter around ``mean``: binomial counts for the error and
    parse rates (requests a sample read off the scatter, in hindsight), else Gaussian."""
    resid = seg.x - mean
    var = float(np.var(resid, ddof=ddof)) if len(resid) > ddof else 0.0
    if not var > 0:
        return None
    if metric in COUNTS:
        at_limit = seg.limit if LIMITS[metric][0] > 0 else 1.0 - seg.limit
        share = float(np.clip(at_limit + np.mean(seg.x), 1e-6, 1 - 1e-6))
        return Counts(share * (1 - share) / var, at_limit)
    return Gaussian(math.sqrt(var))


def crossing(t: np.ndarray, stat: np.ndarray, alpha: float) -> float:
    """The first time ``stat`` reaches log(1 / alpha) (Wald's bound), else inf."""
    hit = np.nonzero(stat >= math.log(1.0 / alpha))[0]
    return float(t[hit[0]]) if len(hit) else math.inf


def decays(
    t: np.ndarray, sizes: np.ndarray, durations: np.ndarray, exponential: bool = False
) -> np.ndarray:
    """Transients that start at ``size`` when V2 starts (``t`` seconds since) and are gone
    after ``duration``: linearly, or exponentially with tau = duration / 3 (as
    ``bench/synth.py`` draws them); one row per size and duration."""
    rows = [size * np.clip(1 - t / dur, 0, 1) for size in sizes for dur in durations]
    if exponential:
        rows += [size * np.exp(-t / (dur / 3.0)) for size in sizes for dur in durations]
    return np.array(rows).reshape(-1, len(t))


# a healthy V2's start-up transients in bench/synth.py (aa-warmup, -long, -short): latency
# x1.5-3 over 150-360 s, linear or exponential, with errors +1-4 points over 30-90 s or
# throughput -10-25 % over 30-120 s in some; or latency x2-4 over 20-50 s alone
LONG = (np.arange(0.5, 2.01, 0.1), np.arange(150.0, 361.0, 15.0))
SHORT = (np.arange(1.0, 3.01, 0.1), np.arange(20.0, 51.0, 5.0))
ERRORS = (np.arange(0.01, 0.0401, 0.0025), np.arange(30.0, 91.0, 10.0))
THROUGHPUT = (np.arange(0.1, 0.251, 0.025), np.arange(30.0, 121.0, 10.0))


def excess(
    v1: dict[float, float], v2: dict[float, float], metric: str, start: float, end: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """(times, V2's excess over the limit, the limit) in (start, end], the limit on V1's
    mean there."""
    sign, tol, margin = LIMITS[metric]
    ref = [x for t, x in v1.items() if start < t <= end]
    times = np.array(sorted(t for t in v2 if start < t <= end), dtype=float)
    if not ref or not len(times):
        return times, np.zeros(0), math.nan
    level = float(np.mean(ref))
    limit = level + sign * max(tol * abs(level), margin)
    return times, sign * (np.array([v2[t] for t in times]) - limit), limit


def segment(
    series: dict[str, dict[str, dict[float, float]]], metric: str, onset: float
) -> Segment | None:
    """The metric from the onset to the end of its stage (of the next one if that is
    too short); None without V1 and V2 samples there."""
    by = series.get(metric, {})
    if "v1" not in by or "v2" not in by:
        return None
    end = (math.floor(onset / STAGE_S) + 1) * STAGE_S
    for until in (end, end + STAGE_S):
        t, x, limit = excess(by["v1"], by["v2"], metric, onset, until)
        if len(x) >= MIN_SEGMENT:
            return Segment(t, x, limit)
    return None


def bound_of(
    series: dict[str, dict[str, dict[float, float]]], onset: float, alpha: float, warm: bool = True
) -> Bound:
    """The fastest clairvoyant SPRT over the metrics and models. With ``warm`` it must
    also rule out every healthy start-up transient: a latency excess may be a warm-up; an
    error or throughput one may be too, but only alongside a long latency warm-up, which
    the latency samples at the same instants must then rule out (as the shipped rules'
    ``settle_with: latency_p95_ms`` does)."""
    best = Bound(math.inf, "", "")
    latency = segment(series, "latency_p95_ms", onset)
    for metric in LIMITS:
        seg = segment(series, metric, onset)
        if seg is None:
            continue
        t, x = seg.t, seg.x
        for model, mean in models(t, x).items():
            noise = noise_of(metric, seg, mean, 2 if model == "ramp" else 1)
            if noise is None:
                continue
            stat = evidence(x, mean, noise, np.zeros((1, len(x))))
            if warm:
                stat = np.minimum(stat, _transients(metric, seg, mean, noise, latency))
            found = Bound(crossing(t, stat, alpha) - onset, metric, model)
            if found.delay < best.delay:
                best = found
    return best


def _transients(
    metric: str, seg: Segment, mean: np.ndarray, noise: Gaussian | Counts, latency: Segment | None
) -> np.ndarray:
    """The least evidence against V2 at the limit through a healthy start-up transient."""
    age = seg.t  # V2 starts at t = 0
    if metric == "latency_p95_ms":
        nulls = np.vstack([decays(age, *LONG, exponential=True), decays(age, *SHORT)])
        return evidence(seg.x, mean, noise, seg.limit * nulls)
    if metric not in ("error_rate", "throughput_rps"):
        return np.full(len(seg.x), np.inf)
    own = (
        decays(age, *ERRORS)
        if metric == "error_rate"
        else abs(seg.limit) * decays(age, *THROUGHPUT)
    )
    stat = evidence(seg.x, mean, noise, own)
    if latency is None:
        return stat
    # the latency that comes with it: V2 as it is, against V2 as it is plus a long warm-up
    lx = latency.aligned(seg.t)
    level = float(np.nanmean(lx))
    lsd = float(np.nanstd(lx, ddof=1))
    if not lsd > 0:
        return stat
    lat_nulls = level + (latency.limit + level) * decays(age, *LONG, exponential=True)
    return stat + evidence(lx, np.full(len(lx), level), Gaussian(lsd), lat_nulls)


def models(t: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """The regression's mean excess per sample, read in hindsight: a step (worse only if
    its mean is above the limit) and the least-squares line."""
    out: dict[str, np.ndarray] = {}
    if x.mean() > 0:
        out["step"] = np.full(len(x), x.mean())
    slope, icept = np.polyfit(t, x, 1)
    line = slope * t + icept
    if line[-1] > 0:
        out["ramp"] = line
    return out


def load(path: str) -> dict[str, dict[str, dict[float, float]]]:
    series: dict[str, dict[str, dict[float, float]]] = defaultdict(lambda: defaultdict(dict))
    with open(path) as fh:
        for line in fh:
            r = json.loads(line)
            if r.get("kind") != "meta":
                series[r["metric"]][r["version"]][float(r["t"])] = float(r["value"])
    return series


def our_rows(folder: str, saved: str | None, jobs: int) -> dict[str, float | None]:
    """Our judge's delay per detected regression (None: missed or early): from the rows
    ``bench/calibrate.py --save`` wrote, else a replay as calibrate makes it."""
    sys.path.insert(0, HERE)
    import calibrate
    import pool

    if saved:
        rows = pool.rows_of(saved, "ours")
    else:
        from concurrent.futures import ProcessPoolExecutor

        with open(os.path.join(folder, "truth.json")) as fh:
            truths = json.load(fh)
        with ProcessPoolExecutor(
            jobs, initializer=calibrate._load_rules, initargs=(None,)
        ) as workers:
            rows = list(workers.map(calibrate.judge_in_process, [folder] * len(truths), truths))
    return {r.scenario: (r.delay if r.verdict == "detected" else None) for r in rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", help="synthetic sets, pooled")
    ap.add_argument(
        "--ours", nargs="*", default=[], help="rows saved by bench/calibrate.py --save, per set"
    )
    ap.add_argument("-j", type=int, default=2, help="replay workers without --ours")
    ap.add_argument("--alpha", type=float, default=0.01)
    ap.add_argument(
        "--no-warmups",
        action="store_true",
        help="the bound need not rule out healthy start-up transients",
    )
    args = ap.parse_args(argv)
    if args.ours and len(args.ours) != len(args.folders):
        ap.error("--ours takes one file per set")
    shapes: dict[str, list[tuple[float | None, float | None]]] = defaultdict(list)
    for i, folder in enumerate(args.folders):
        with open(os.path.join(folder, "truth.json")) as fh:
            truths = [t for t in json.load(fh) if t["expect"] == "rollback"]
        ours = our_rows(folder, args.ours[i] if args.ours else None, args.j)
        for truth in truths:
            found = None
            if not any(u in truth["shape"] for u in UNBOUNDED):
                found = bound_of(
                    load(os.path.join(folder, truth["scenario"] + ".jsonl")),
                    float(truth["onset"]),
                    args.alpha,
                    not args.no_warmups,
                )
            shapes[truth["shape"]].append(
                (ours.get(truth["scenario"]), None if found is None else found.delay)
            )
    print(
        f"{'shape':32} {'n':>3} {'ours median':>11} {'bound median':>12} "
        f"{'ours<=60':>8} {'bound<=60':>9}"
    )
    pooled: dict[str, list[float]] = defaultdict(list)
    for shape, pairs in sorted(shapes.items()):
        us = [a if a is not None else math.inf for a, _ in pairs]
        bs = [b for _, b in pairs if b is not None]
        print(
            f"{shape:32} {len(pairs):3d} {_med(us):>11} {_med(bs) if bs else '-':>12} "
            f"{sum(a <= 60 for a in us):8d} "
            f"{sum(b <= 60 for b in bs) if bs else '-':>9}"
        )
        pooled["ours, all"] += us
        if bs:
            pooled["ours, bounded"] += us
            pooled["bound, bounded"] += bs
    for name, xs in pooled.items():
        print(
            f"{name:16} {len(xs):4d} regressions: median {_med(xs)}, "
            f"{sum(x <= 60 for x in xs) / len(xs):.3f} within 60 s"
        )
    return 0


def _med(xs: list[float]) -> str:
    m = sorted(xs)[len(xs) // 2]
    return "miss" if math.isinf(m) else f"{m:.0f} s"


if __name__ == "__main__":
    sys.exit(main())
