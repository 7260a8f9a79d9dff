#!/usr/bin/env python3
"""Synthetic rollout scenarios in the public recorded-rollout format (see bench/README.md).

    python bench/synth.py --out DIR --seed N [--per-shape K] [--shapes a,b,...]
    python bench/synth.py --list

Writes DIR/<scenario>.jsonl and DIR/truth.json, readable by
``../shared/scenarios/score DIR -- rollout-watchdog backtest --json`` and by
``bench/calibrate.py``. Scenario ``i`` of a shape is named ``<shape>-<N+i>`` and drawn
from ``numpy.random.default_rng([N+i, crc32(shape)])``, so a scenario does not change
when other shapes are added or left out. Seeds N and N+1 therefore share all but one
scenario per shape: for a set independent of one you tuned on, take a seed at least
``--per-shape`` away (seed 2 and seed 20 with 6 per shape share nothing).

The generative model was inferred from the public scenarios (numbers in README.md):
requests per 10 s window are Poisson(rate * load * share * 10); p95 latency is the
linear-interpolated 95th percentile of that many lognormal (sigma 0.5) request latencies;
error and parse rates are binomial counts over the window's requests / messages (3 per
request); throughput per replica is Poisson(50 rps * 10 s) / 10 whatever the share;
memory is a 300 s GC sawtooth (420 MB + 14.5 MB ramp) with 2 MB white noise, and V2
starts 90 MB low and fills up over its first 300 s.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

Arr = npt.NDArray[np.float64]
BArr = npt.NDArray[np.bool_]
Rng = np.random.Generator

STEP = 10
T_FROM = -1800
END = 3600
STAGES = (5, 25, 50, 75, 100)
STAGE_S = 600
MODULE = "checkout"
LAT, ERR, PARSE, TPUT, MEM = (
    "latency_p95_ms",
    "error_rate",
    "parse_rate",
    "throughput_rps",
    "memory_rss_bytes",
)
FILE_ORDER = (LAT, ERR, PARSE, TPUT, MEM)  # order of a sample's lines in the public files
DIRECTIONS = {
    LAT: "higher_is_worse",
    ERR: "higher_is_worse",
    TPUT: "lower_is_worse",
    PARSE: "lower_is_worse",
    MEM: "growth_is_worse",
}
MB = 1e6
Z95 = 1.6448536269514722  # standard normal 95th percentile
GRID: Arr = np.arange(T_FROM, END, STEP, dtype=float)


def v2_share(t: Arr) -> Arr:
    """V2's traffic share (0..1) at each time of the plan; 0 before the rollout."""
    idx = np.clip((t // STAGE_S).astype(int), 0, len(STAGES) - 1)
    return np.where(t >= 0, np.asarray(STAGES, dtype=float)[idx] / 100.0, 0.0)


def stage_start(k: int) -> int:
    return k * STAGE_S


# --------------------------------------------------------------------------- model


@dataclass
class Track:
    """One version's latent state over the grid: the means the noisy samples are drawn from."""

    share: Arr
    lat: Arr  # true p95 of the request-latency distribution, ms
    err: Arr  # failure probability per request
    parse: Arr  # parse probability per message
    tput: Arr  # mean requests/s per replica
    mem: Arr  # mean resident bytes (noise is added when sampling)


@dataclass
class WarmUp:
    """V2 start-up transient (V1 has been running for days)."""

    lat_amp: float = 0.0  # extra latency factor at t=0 (public aa-warmup: ~1.1, i.e. x2.1)
    lat_dur: float = 90.0  # seconds until it is gone
    lat_shape: str = "linear"  # "linear" ramp down, or "exp" (decay with tau = dur / 3)
    err_add: float = 0.0  # extra error probability at t=0, linear to 0 over err_dur
    err_dur: float = 60.0
    tput_deficit: float = 0.0  # fraction of throughput missing at t=0, linear over tput_dur
    tput_dur: float = 60.0
    mem_deficit: float = 90 * MB  # RSS below steady state at t=0, linear to 0 over mem_dur
    mem_dur: float = 300.0


@dataclass
class AR:
    """AR(1) multiplicative (log-scale) noise: a component shared by both versions (load,
    upstreams) plus one per version (its own pods). sd is the stationary standard deviation."""

    shared_sd: float = 0.0
    shared_phi: float = 0.9
    own_sd: float = 0.0
    own_phi: float = 0.9


@dataclass
class Noise:
    lat_sigma: float = 0.5  # lognormal sigma of single-request latency
    lat_t: float = 0.0  # scale of extra Student-t(3) per-sample log-noise on latency
    tput_t: float = 0.0  # same on throughput
    mem_sd: float = 2 * MB
    mem_t: bool = False  # Student-t(3) instead of normal memory noise
    err_conc: float = 0.0  # beta-binomial concentration for errors (0 = binomial)
    parse_conc: float = 0.0  # same for parse failures
    ar: dict[str, AR] = field(default_factory=dict)  # metric -> AR(1) component


@dataclass
class Spike:
    version: str
    metric: str
    rate: float  # probability per sample
    size: float  # lat/tput: factor; error: failure prob.; parse: drop; memory: +bytes


@dataclass
class Gap:
    version: str | None  # None: both
    metric: str | None  # None: every metric (a failed scrape)
    start: int  # seconds
    length: int  # samples


Gate = Callable[["Scenario"], BArr]
Effect = Callable[["Scenario", Track], None]


@dataclass
class Scenario:
    name: str
    shape: str
    rng: Rng
    expect: str = "no_rollback"
    onset: int | None = None
    rate: float = 200.0  # requests/s to the module (all versions)
    msgs_per_req: float = 3.0
    load: Arr = field(default_factory=lambda: np.ones_like(GRID))
    lat_load_exp: float = 0.0  # latency ~ load ** exp
    tput_load_exp: float = 1.0  # throughput per replica ~ load ** exp
    err_load_exp: float = 0.0
    lat_p95: float = 182.0
    err: float = 0.005
    err_v1: float | None = None  # V1's own error level when it differs (zero-error baseline)
    parse: float = 0.98
    tput: float = 50.0
    mem_base: float = 420 * MB  # sawtooth trough
    gc_period: float = 300.0
    gc_amp: float = 14.5 * MB  # sawtooth height (linear ramp between collections)
    gc_jitter: float = 0.0  # +- fraction of period per cycle
    gc_phase_v1: float = 0.0  # V1 collects at t = phase + k * period
    warm: WarmUp = field(default_factory=WarmUp)
    noise: Noise = field(default_factory=Noise)
    spikes: list[Spike] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    drop: float = 0.0  # isolated missing samples, probability per (version, metric, t)
    effects: list[Effect] = field(default_factory=list)  # changes to V2 (regressions etc.)
    notes: list[str] = field(default_factory=list)

    def regress(self, onset: float, *effects: Effect, note: str = "") -> None:
        self.expect = "rollback"
        self.onset = int(onset)
        self.effects.extend(effects)
        if note:
            self.notes.append(note)


# ----------------------------------------------------------------------- sampling


def ar1(rng: Rng, n: int, sd: float, phi: float) -> Arr:
    if sd <= 0:
        return np.zeros(n)
    eps = rng.normal(0.0, sd * math.sqrt(1 - phi * phi), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sd)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + eps[i]
    return out


def sample_p95(rng: Rng, n: npt.NDArray[np.int64], p95: Arr, sigma: float) -> Arr:
    """p95 (numpy 'linear') of n lognormal latencies with true p95 ``p95``, exactly, from
    the two order statistics it interpolates (no need to draw the n requests)."""
    n = np.maximum(n, 1)
    h = (n - 1) * 0.95
    j = np.floor(h).astype(np.int64)
    f = h - j
    u1 = rng.beta(j + 1, n - j)
    rest = n - j - 1
    u2 = u1 + (1 - u1) * np.where(rest > 0, rng.beta(1, np.maximum(rest, 1)), 0.0)
    u1, u2 = (np.clip(u, 1e-12, 1 - 1e-12) for u in (u1, u2))
    q = (1 - f) * np.exp(sigma * ndtri(u1)) + f * np.exp(sigma * ndtri(u2))
    return np.asarray(p95 * q / math.exp(Z95 * sigma), dtype=float)


def sawtooth(s: Scenario, t: Arr, phase: float, rng: Rng) -> Arr:
    """GC sawtooth: trough mem_base, linear ramp of gc_amp, collection every ~gc_period."""
    lo, hi = t.min() - 2 * s.gc_period, t.max() + s.gc_period
    starts = [phase - math.ceil((phase - lo) / s.gc_period) * s.gc_period]
    while starts[-1] < hi:
        jitter = 1 + s.gc_jitter * rng.uniform(-1, 1) if s.gc_jitter else 1.0
        starts.append(starts[-1] + s.gc_period * jitter)
    st = np.asarray(starts)
    k = np.searchsorted(st, t, side="right") - 1
    length = st[k + 1] - st[k]
    return np.asarray(s.mem_base + s.gc_amp * (t - st[k]) / length, dtype=float)


def build_tracks(s: Scenario) -> dict[str, Track]:
    t, rng = GRID, s.rng
    sh2 = v2_share(t)
    tracks: dict[str, Track] = {}
    for v, share in (("v1", 1.0 - sh2), ("v2", sh2)):
        err = s.err_v1 if (v == "v1" and s.err_v1 is not None) else s.err
        tracks[v] = Track(
            share=share,
            lat=s.lat_p95 * s.load**s.lat_load_exp,
            err=err * s.load**s.err_load_exp,
            parse=np.full_like(t, s.parse),
            tput=s.tput * s.load**s.tput_load_exp,
            mem=sawtooth(s, t, s.gc_phase_v1 if v == "v1" else 0.0, rng),
        )
    v2 = tracks["v2"]
    for eff in s.effects:
        eff(s, v2)
    w, age = s.warm, np.maximum(t, 0.0)
    if w.lat_amp:
        if w.lat_shape == "exp":
            extra = w.lat_amp * np.exp(-age / (w.lat_dur / 3.0))
        else:
            extra = w.lat_amp * np.clip(1 - age / w.lat_dur, 0, 1)
        v2.lat = v2.lat * (1 + extra)
    v2.err = v2.err + w.err_add * np.clip(1 - age / w.err_dur, 0, 1)
    v2.tput = v2.tput * (1 - w.tput_deficit * np.clip(1 - age / w.tput_dur, 0, 1))
    v2.mem = v2.mem - w.mem_deficit * np.clip(1 - age / w.mem_dur, 0, 1)
    for metric, ar in s.noise.ar.items():
        shared = ar1(rng, len(t), ar.shared_sd, ar.shared_phi)
        for tr in tracks.values():
            x = shared + ar1(rng, len(t), ar.own_sd, ar.own_phi)
            if metric == LAT:
                tr.lat = tr.lat * np.exp(x)
            elif metric == TPUT:
                tr.tput = tr.tput * np.exp(x)
            elif metric == ERR:
                tr.err = tr.err * np.exp(x)
            elif metric == MEM:
                tr.mem = tr.mem + x * s.mem_base  # sd given as a fraction of the level
    for sp in s.spikes:
        tr = tracks[sp.version]
        hit = rng.random(len(t)) < sp.rate
        if sp.metric == LAT:
            tr.lat = np.where(hit, tr.lat * sp.size, tr.lat)
        elif sp.metric == TPUT:
            tr.tput = np.where(hit, tr.tput * sp.size, tr.tput)
        elif sp.metric == ERR:
            tr.err = np.where(hit, np.maximum(tr.err, sp.size), tr.err)
        elif sp.metric == PARSE:
            tr.parse = np.where(hit, tr.parse - sp.size, tr.parse)
        elif sp.metric == MEM:
            tr.mem = np.where(hit, tr.mem + sp.size, tr.mem)
    return tracks


def _rate_draw(rng: Rng, n: npt.NDArray[np.int64], p: Arr, conc: float) -> Arr:
    p = np.clip(p, 0.0, 1.0)
    if conc > 0:
        a = np.maximum(p * conc, 1e-9)
        b = np.maximum((1 - p) * conc, 1e-9)
        p = np.where((p > 0) & (p < 1), rng.beta(a, b), p)
    k = rng.binomial(np.maximum(n, 0), p)
    return np.asarray(k / np.maximum(n, 1), dtype=float)


def sample(s: Scenario) -> dict[tuple[str, str], dict[int, float | int]]:
    """Noisy observed samples {(version, metric): {t: value}} with gaps applied."""
    t, rng, nz = GRID, s.rng, s.noise
    tracks = build_tracks(s)
    out: dict[tuple[str, str], dict[int, float | int]] = {}
    for v, tr in tracks.items():
        alive = (t >= 0) if v == "v2" else (tr.share > 0)
        lam = np.maximum(s.rate * s.load * tr.share * STEP, 0.0)
        n = rng.poisson(lam)
        m = rng.poisson(lam * s.msgs_per_req)
        lat_scale = tr.lat * (np.exp(nz.lat_t * rng.standard_t(3, len(t))) if nz.lat_t else 1.0)
        tput_mean = tr.tput * (np.exp(nz.tput_t * rng.standard_t(3, len(t))) if nz.tput_t else 1.0)
        mem_noise = (
            rng.standard_t(3, len(t)) / math.sqrt(3) if nz.mem_t else rng.normal(size=len(t))
        )
        values = {
            LAT: np.round(sample_p95(rng, n, lat_scale, nz.lat_sigma), 2),
            ERR: np.round(_rate_draw(rng, n, tr.err, nz.err_conc), 6),
            PARSE: np.round(1.0 - _rate_draw(rng, m, 1.0 - tr.parse, nz.parse_conc), 6),
            TPUT: rng.poisson(np.maximum(tput_mean, 0) * STEP) / 10.0,
            MEM: np.round(tr.mem + nz.mem_sd * mem_noise),
        }
        has = {LAT: alive & (n > 0), ERR: alive & (n > 0), PARSE: alive & (m > 0)}
        for metric in FILE_ORDER:
            keep = has.get(metric, alive).copy()
            if s.drop:
                keep &= rng.random(len(t)) >= s.drop
            for g in s.gaps:
                if g.version in (None, v) and g.metric in (None, metric):
                    keep &= ~((t >= g.start) & (t < g.start + g.length * STEP))
            vals = values[metric]
            if metric == MEM:
                out[(v, metric)] = {
                    int(ti): int(x) for ti, x, k in zip(t, vals, keep, strict=True) if k
                }
            else:
                out[(v, metric)] = {
                    int(ti): float(x) for ti, x, k in zip(t, vals, keep, strict=True) if k
                }
    return out


def write(s: Scenario, folder: str) -> dict[str, Any]:
    data = sample(s)
    meta = {
        "kind": "meta",
        "scenario": s.name,
        "module": MODULE,
        "step_seconds": STEP,
        "baseline": {"from": T_FROM, "to": 0},
        "plan": {"stages": list(STAGES), "stage_seconds": STAGE_S},
        "end": END,
        "metrics": DIRECTIONS,
    }
    lines = [json.dumps(meta, separators=(",", ":"))]
    for ti in GRID.astype(int):
        for v in ("v1", "v2"):
            for metric in FILE_ORDER:
                val = data[(v, metric)].get(int(ti))
                if val is not None:
                    rec = {"t": int(ti), "version": v, "metric": metric, "value": val}
                    lines.append(json.dumps(rec, separators=(",", ":")))
    with open(os.path.join(folder, s.name + ".jsonl"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return {"scenario": s.name, "expect": s.expect, "onset": s.onset, "shape": s.shape}


# ------------------------------------------------------------ gates and effects


def on_grid(x: float) -> int:
    return int(round(x / STEP) * STEP)


def after(onset: float) -> Gate:
    return lambda s: onset <= GRID


def share_from(pct: int) -> Gate:
    return lambda s: v2_share(GRID) >= pct / 100.0 - 1e-9


def load_above(thr: float) -> Gate:
    return lambda s: s.load >= thr


def periodic(start: float, period: float, on: float) -> Gate:
    """On for ``on`` seconds every ``period`` seconds from ``start``."""
    return lambda s: (start <= GRID) & (((GRID - start) % period) < on)


def lat_factor(factor: float, gate: Gate) -> Effect:
    def apply(s: Scenario, tr: Track) -> None:
        tr.lat = np.where(gate(s), tr.lat * factor, tr.lat)

    return apply


def err_level(p: float | None, gate: Gate, add: float = 0.0) -> Effect:
    """Failure probability set to ``p`` (absolute) or raised by ``add`` where the gate is on."""

    def apply(s: Scenario, tr: Track) -> None:
        new = np.full_like(tr.err, p) if p is not None else tr.err + add
        tr.err = np.where(gate(s), new, tr.err)

    return apply


def tput_factor(factor: float, gate: Gate) -> Effect:
    def apply(s: Scenario, tr: Track) -> None:
        tr.tput = np.where(gate(s), tr.tput * factor, tr.tput)

    return apply


def parse_level(q: float, gate: Gate) -> Effect:
    def apply(s: Scenario, tr: Track) -> None:
        tr.parse = np.where(gate(s), q, tr.parse)

    return apply


def mem_leak(per_hour: float, onset: float) -> Effect:
    """RSS grows by ``per_hour`` of the sawtooth's mean level per hour from ``onset``."""

    def apply(s: Scenario, tr: Track) -> None:
        level = s.mem_base + s.gc_amp / 2
        tr.mem = tr.mem + per_hour * level * np.maximum(GRID - onset, 0.0) / 3600.0

    return apply


def lat_creep(per_min: float, onset: float) -> Effect:
    def apply(s: Scenario, tr: Track) -> None:
        tr.lat = tr.lat * (1 + per_min * np.maximum(GRID - onset, 0.0) / 60.0)

    return apply


def mem_level(factor: float) -> Effect:
    def apply(s: Scenario, tr: Track) -> None:
        tr.mem = tr.mem * factor

    return apply


# -------------------------------------------------------------- realism modifiers


def u(rng: Rng, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def logu(rng: Rng, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def load_elasticity(s: Scenario) -> None:
    s.lat_load_exp = u(s.rng, 0.2, 0.5)
    s.tput_load_exp = u(s.rng, 0.7, 1.0)
    s.err_load_exp = u(s.rng, 0.0, 0.8)


def mod_load_ramp(s: Scenario, up: bool | None = None) -> None:
    rng = s.rng
    up = bool(rng.random() < 0.6) if up is None else up
    level = u(rng, 1.25, 1.6) if up else u(rng, 0.6, 0.8)
    a = u(rng, -900, 900)
    b = a + u(rng, 1500, 3600)
    s.load = 1 + (level - 1) * np.clip((GRID - a) / (b - a), 0, 1)
    load_elasticity(s)
    s.notes.append(f"load ramp to x{level:.2f} over {a:.0f}..{b:.0f}s")


def mod_load_step(
    s: Scenario,
    level: float | None = None,
    at: float | None = None,
    back_after: float | None = None,
    fixed: bool = False,
) -> tuple[float, float]:
    """Load x``level`` from ``at``; back to normal after ``back_after`` s (drawn unless fixed)."""
    rng = s.rng
    if level is None:
        level = u(rng, 1.3, 1.7) if rng.random() < 0.6 else u(rng, 0.6, 0.8)
    at = on_grid(u(rng, 300, 3000) if at is None else at)
    if not fixed and rng.random() < 0.5:
        back_after = u(rng, 300, 1200)
    stop = at + back_after if back_after is not None else math.inf
    s.load = np.where((at <= GRID) & (stop > GRID), level, 1.0) * s.load
    load_elasticity(s)
    s.notes.append(
        f"load step x{level:.2f} at {at}s" + (f" until {stop:.0f}s" if back_after else "")
    )
    return level, at


def _load_step(s: Scenario) -> None:
    mod_load_step(s)


def mod_diurnal(s: Scenario) -> None:
    rng = s.rng
    amp, period, phase = u(rng, 0.2, 0.4), u(rng, 2 * 3600, 8 * 3600), u(rng, 0, 2 * math.pi)
    s.load = s.load * (1 + amp * np.sin(2 * math.pi * GRID / period + phase))
    load_elasticity(s)
    s.notes.append(f"diurnal +-{amp:.0%} period {period / 3600:.1f}h")


def mod_heavy_tails(s: Scenario) -> None:
    rng, nz = s.rng, s.noise
    nz.lat_sigma = u(rng, 0.6, 0.8)
    nz.lat_t = u(rng, 0.02, 0.04)
    nz.tput_t = u(rng, 0.02, 0.04)
    nz.err_conc = u(rng, 400, 1500)
    nz.parse_conc = u(rng, 1500, 6000)
    nz.mem_t = True
    nz.mem_sd = u(rng, 2, 3) * MB
    s.notes.append("heavy tails")


def mod_ar1(s: Scenario) -> None:
    rng, nz = s.rng, s.noise
    nz.ar[LAT] = AR(u(rng, 0.03, 0.06), u(rng, 0.9, 0.98), u(rng, 0.01, 0.025), u(rng, 0.8, 0.95))
    nz.ar[TPUT] = AR(u(rng, 0.02, 0.05), u(rng, 0.9, 0.98), u(rng, 0.01, 0.02), u(rng, 0.8, 0.95))
    nz.ar[ERR] = AR(u(rng, 0.15, 0.3), u(rng, 0.85, 0.97), u(rng, 0.05, 0.15), u(rng, 0.7, 0.9))
    nz.ar[MEM] = AR(0.0, 0.9, u(rng, 0.003, 0.006), u(rng, 0.7, 0.9))
    s.notes.append("AR(1) noise")


def mod_warmup(s: Scenario, long: bool) -> None:
    rng, w = s.rng, s.warm
    if long:
        w.lat_amp, w.lat_dur = u(rng, 0.5, 2.0), u(rng, 150, 360)
        w.lat_shape = "exp" if rng.random() < 0.5 else "linear"
        if rng.random() < 0.6:
            w.err_add, w.err_dur = u(rng, 0.01, 0.04), u(rng, 30, 90)
        if rng.random() < 0.5:
            w.tput_deficit, w.tput_dur = u(rng, 0.1, 0.25), u(rng, 30, 120)
        w.mem_dur = u(rng, 300, 600)
    else:
        w.lat_amp, w.lat_dur = u(rng, 1.0, 3.0), u(rng, 20, 50)
        w.lat_shape = "linear"
        w.mem_dur = u(rng, 60, 200)
    s.notes.append(f"warm-up x{1 + w.lat_amp:.1f} over {w.lat_dur:.0f}s")


def mod_gc(s: Scenario) -> None:
    rng = s.rng
    s.gc_period = float(rng.choice([60, 120, 180, 240, 450, 600]))
    s.gc_amp = u(rng, 5, 40) * MB
    s.gc_jitter = u(rng, 0.0, 0.15)
    s.gc_phase_v1 = u(rng, 0, s.gc_period)
    s.mem_base = u(rng, 300, 600) * MB
    s.warm.mem_deficit = u(rng, 0.1, 0.3) * s.mem_base
    s.notes.append(f"GC every {s.gc_period:.0f}s +{s.gc_amp / MB:.0f}MB")


def mod_spikes(s: Scenario, frequent: bool) -> None:
    rng = s.rng
    if not frequent:  # the public aa-spikes: V2 only, latency x3 and errors at 5 %
        s.spikes += [
            Spike("v2", LAT, u(rng, 1 / 80, 1 / 45), 3.0),
            Spike("v2", ERR, u(rng, 1 / 400, 1 / 120), 0.05),
        ]
        return
    for v in ("v1", "v2"):
        s.spikes += [
            Spike(v, LAT, u(rng, 0.015, 0.04), u(rng, 2, 4)),
            Spike(v, ERR, u(rng, 0.01, 0.03), u(rng, 0.03, 0.1)),
            Spike(v, TPUT, u(rng, 0.01, 0.03), u(rng, 0.4, 0.7)),
            Spike(v, PARSE, u(rng, 0.01, 0.03), u(rng, 0.03, 0.08)),
            Spike(v, MEM, u(rng, 0.005, 0.02), u(rng, 20, 80) * MB),
        ]
    s.notes.append("frequent spikes, all metrics, both versions")


def mod_gaps(s: Scenario, heavy: bool) -> None:
    rng = s.rng
    if not heavy:  # the public aa-gaps: 1-2 whole-scrape gaps of 8-25 samples per version
        for v, lo, hi in (("v1", T_FROM, 2400), ("v2", 0, END)):
            for _ in range(int(rng.integers(1, 3))):
                s.gaps.append(Gap(v, None, on_grid(u(rng, lo, hi - 250)), int(rng.integers(8, 26))))
        return
    # Heavier than public, but V2's whole-scrape gaps stay mostly within the 600 s of slack
    # between promotion (3000 s) and the end of the recording, so promotion stays possible.
    for v, lo, hi in (("v1", T_FROM, 2400), ("v2", 0, END)):
        for _ in range(int(rng.integers(1, 3))):
            s.gaps.append(Gap(v, None, on_grid(u(rng, lo, hi - 100)), int(rng.integers(3, 26))))
        for _ in range(int(rng.integers(1, 3))):
            metric = str(rng.choice(FILE_ORDER))
            s.gaps.append(Gap(v, metric, on_grid(u(rng, lo, hi - 100)), int(rng.integers(3, 16))))
    for _ in range(int(rng.integers(1, 3))):  # around a stage change
        k = int(rng.integers(1, 5))
        s.gaps.append(
            Gap(
                str(rng.choice(["v1", "v2", "v2"])),
                None,
                on_grid(stage_start(k) - u(rng, 0, 60)),
                int(rng.integers(3, 13)),
            )
        )
    s.drop = u(rng, 0.005, 0.02)
    s.notes.append("heavy gaps")


def mod_traffic(s: Scenario, lo: float, hi: float) -> None:
    s.rate = logu(s.rng, lo, hi)
    s.notes.append(f"{s.rate:.0f} rps")


def mod_levels(s: Scenario) -> None:
    rng = s.rng
    s.lat_p95 = logu(rng, 20, 1500)
    s.err = logu(rng, 0.0005, 0.02)
    s.parse = u(rng, 0.9, 0.999)
    s.tput = logu(rng, 5, 500)
    s.mem_base = logu(rng, 80, 4000) * MB
    s.gc_amp = s.mem_base * u(rng, 0.02, 0.06)
    s.warm.mem_deficit = s.mem_base * u(rng, 0.1, 0.3)
    s.noise.mem_sd = 2 * MB * s.mem_base / (420 * MB)  # the public 2 MB is 0.5 % of the level
    s.rate = logu(rng, 30, 2000)
    s.notes.append(
        f"levels p95 {s.lat_p95:.0f}ms err {s.err:.2%} tput {s.tput:.0f} "
        f"rss {s.mem_base / MB:.0f}MB {s.rate:.0f}rps"
    )


REALISM: dict[str, Callable[[Scenario], None]] = {
    "load_ramp": lambda s: mod_load_ramp(s),
    "load_step": lambda s: _load_step(s),
    "diurnal": mod_diurnal,
    "heavy_tails": mod_heavy_tails,
    "ar1": mod_ar1,
    "warmup": lambda s: mod_warmup(s, long=bool(s.rng.random() < 0.5)),
    "gc": mod_gc,
    "spikes": lambda s: mod_spikes(s, frequent=bool(s.rng.random() < 0.5)),
    "gaps": lambda s: mod_gaps(s, heavy=bool(s.rng.random() < 0.5)),
    "traffic": lambda s: mod_traffic(s, 20, 3000),
}


def mod_mixed(s: Scenario, k_lo: int = 3, k_hi: int = 5, exclude: tuple[str, ...] = ()) -> None:
    names = [n for n in REALISM if n not in exclude]
    picks = s.rng.choice(names, size=int(s.rng.integers(k_lo, k_hi + 1)), replace=False)
    if "load_step" in picks and "load_ramp" in picks:
        picks = np.asarray([p for p in picks if p != "load_step"])
    for name in picks:
        REALISM[str(name)](s)


# ----------------------------------------------------------------------- shapes


def onset_any(s: Scenario, lo: float = 0, hi: float = 2400) -> int:
    """Half of the time from the start, otherwise at a random moment."""
    return 0 if s.rng.random() < 0.5 else on_grid(u(s.rng, lo, hi))


def random_regression(s: Scenario, onset: float) -> None:
    """A clear regression on a random metric (for the mixed / noisy shapes)."""
    rng, g = s.rng, after(onset)
    kind = str(rng.choice(["latency", "errors", "throughput", "parse", "leak"]))
    if kind == "latency":
        f = u(rng, 1.25, 1.5)
        s.regress(onset, lat_factor(f, g), note=f"latency x{f:.2f}")
    elif kind == "errors":
        add = u(rng, 0.02, 0.04)
        s.regress(onset, err_level(None, g, add), note=f"errors +{add:.1%}")
    elif kind == "throughput":
        f = u(rng, 0.7, 0.8)
        s.regress(onset, tput_factor(f, g), note=f"throughput x{f:.2f}")
    elif kind == "parse":
        q = s.parse - u(rng, 0.05, 0.08)
        s.regress(onset, parse_level(q, g), note=f"parse {q:.3f}")
    else:
        rate = u(rng, 0.3, 0.6)
        s.regress(0, mem_leak(rate, 0), note=f"leak {rate:.0%}/h")


ShapeFn = Callable[[Scenario], None]
SHAPES: dict[str, tuple[str, ShapeFn]] = {}


def shape(name: str, doc: str) -> Callable[[ShapeFn], ShapeFn]:
    def deco(fn: ShapeFn) -> ShapeFn:
        SHAPES[name] = (doc, fn)
        return fn

    return deco


# healthy: the public shapes ------------------------------------------------------
shape("aa-clean", "public model, no difference")(lambda s: None)
shape("aa-spikes", "V2 single-sample latency x3 (~1/60) and error 5 % (~1/200) spikes")(
    lambda s: mod_spikes(s, frequent=False)
)
shape("aa-gaps", "1-2 whole-scrape gaps of 8-25 samples on each version")(
    lambda s: mod_gaps(s, heavy=False)
)
shape("aa-low-traffic", "20 rps instead of 200 (V2 at 5 %: ~10 requests / window)")(
    lambda s: setattr(s, "rate", 20.0)
)


@shape("aa-warmup", "V2 latency x2.1 at start, linear back to normal over 90 s")
def _aa_warmup(s: Scenario) -> None:
    s.warm.lat_amp, s.warm.lat_dur = u(s.rng, 0.9, 1.3), 90.0


# healthy: held-out-like variations ------------------------------------------------
shape("aa-high-traffic", "1000-3000 rps: little sampling noise")(
    lambda s: mod_traffic(s, 1000, 3000)
)
shape("aa-very-low-traffic", "4-10 rps: V2 at 5 % sees 2-5 requests per window, some empty")(
    lambda s: mod_traffic(s, 4, 10)
)
shape(
    "aa-load-ramp", "load ramps to x1.25-1.6 or x0.6-0.8 for both versions (latency ~load^0.2-0.5)"
)(lambda s: mod_load_ramp(s))
shape("aa-load-step", "load steps to x1.3-1.7 or x0.6-0.8 at a random time, maybe back later")(
    lambda s: _load_step(s)
)
shape("aa-diurnal", "sinusoidal load +-20-40 %, period 2-8 h, random phase")(mod_diurnal)
shape("aa-heavy-tails", "t(3) latency/throughput noise, sigma 0.6-0.8, beta-binomial errors/parse")(
    mod_heavy_tails
)
shape("aa-ar1-noise", "AR(1) log-noise shared (3-6 %, phi .9-.98) + per version (1-2.5 %)")(mod_ar1)
shape(
    "aa-warmup-long", "latency x1.5-3 decaying over 150-360 s; maybe error and throughput warm-up"
)(lambda s: mod_warmup(s, long=True))
shape("aa-warmup-short", "latency x2-4 gone within 20-50 s")(lambda s: mod_warmup(s, long=False))
shape("aa-gc-variants", "GC period 60-600 s, sawtooth 5-40 MB, jitter, other phases and levels")(
    mod_gc
)
shape("aa-frequent-spikes", "spikes on all metrics of both versions, 1-5 % of samples each")(
    lambda s: mod_spikes(s, frequent=True)
)
shape(
    "aa-gaps-heavy",
    "2-4 scrape gaps per version, per-metric gaps, gaps at stage changes, 1-3 % drops",
)(lambda s: mod_gaps(s, heavy=True))
shape(
    "aa-other-levels", "other module: p95 20-1500 ms, errors 0.05-2 %, tput 5-500, RSS 80 MB-4 GB"
)(mod_levels)
shape("aa-mixed", "3-5 of the variations above at once")(lambda s: mod_mixed(s))


@shape("aa-v2-better", "V2 slightly better: latency x0.85-0.95, errors x0.3-0.7, throughput +2-8 %")
def _aa_better(s: Scenario) -> None:
    rng, g = s.rng, after(0)
    s.effects += [
        lat_factor(u(rng, 0.85, 0.95), g),
        err_level(None, g, -s.err * u(rng, 0.3, 0.7)),
        tput_factor(u(rng, 1.02, 1.08), g),
        parse_level(min(0.999, s.parse + u(rng, 0.003, 0.01)), g),
        mem_level(u(rng, 0.93, 0.98)),
    ]


@shape(
    "aa-tiny-diff",
    "harmless: latency +1-3 %, errors +0-0.07 pp, throughput -1-3 %, parse -0.1-0.4 pp",
)
def _aa_tiny(s: Scenario) -> None:
    rng, g = s.rng, after(0)
    s.effects += [
        lat_factor(u(rng, 1.01, 1.03), g),
        err_level(None, g, u(rng, 0.0, 0.0007)),
        tput_factor(u(rng, 0.97, 0.99), g),
        parse_level(s.parse - u(rng, 0.001, 0.004), g),
        mem_level(u(rng, 1.005, 1.02)),
    ]


@shape("aa-zero-errors", "no errors at all on either version (rate 0 or 1e-4)")
def _aa_zero(s: Scenario) -> None:
    s.err = 0.0 if s.rng.random() < 0.5 else 1e-4


# regressions: the public shapes ------------------------------------------------------
shape("reg-latency-x1.4", "V2 latency x1.4 from the start")(
    lambda s: s.regress(0, lat_factor(1.4, after(0)))
)
shape("reg-latency-x1.25-at-25pct", "V2 latency x1.25 from the 25 % stage (600 s)")(
    lambda s: s.regress(600, lat_factor(1.25, after(600)))
)
shape("reg-errors-3pct", "V2 error rate 3 % from the start")(
    lambda s: s.regress(0, err_level(0.03, after(0)))
)
shape("reg-throughput-0.7", "V2 throughput x0.7 from the start")(
    lambda s: s.regress(0, tput_factor(0.7, after(0)))
)
shape("reg-parse-0.88", "V2 parse rate 0.88 from the start")(
    lambda s: s.regress(0, parse_level(0.88, after(0)))
)
shape("reg-memory-leak", "V2 RSS +200 MB/h (~47 %/h) from the start")(
    lambda s: s.regress(0, mem_leak(200 * MB / (427.25 * MB), 0))
)
shape("reg-latency-creep", "V2 latency +2 % of baseline per minute from 300 s")(
    lambda s: s.regress(300, lat_creep(0.02, 300))
)
shape("reg-error-bursts", "V2 error rate 12 % for 60 s every 300 s from 600 s")(
    lambda s: s.regress(600, err_level(0.12, periodic(600, 300, 60)))
)


# regressions: subtler ---------------------------------------------------------------
def _sustained(name: str, doc: str, make: Callable[[Scenario, Gate], Effect]) -> None:
    def fn(s: Scenario) -> None:
        on = onset_any(s)
        s.regress(on, make(s, after(on)))

    shape(name, doc + "; onset 0 or random in 0..2400 s")(fn)


_sustained("reg-latency-x1.15", "V2 latency x1.15", lambda s, g: lat_factor(1.15, g))
_sustained("reg-latency-x1.2", "V2 latency x1.2", lambda s, g: lat_factor(1.2, g))
_sustained("reg-errors-plus1pp", "V2 error rate +1 pp", lambda s, g: err_level(None, g, 0.01))
_sustained("reg-errors-plus1.5pp", "V2 error rate +1.5 pp", lambda s, g: err_level(None, g, 0.015))
_sustained("reg-throughput-0.85", "V2 throughput x0.85", lambda s, g: tput_factor(0.85, g))
_sustained("reg-parse-0.94", "V2 parse rate 0.94 (V1 0.98)", lambda s, g: parse_level(0.94, g))


# regressions: conditional -------------------------------------------------------------
@shape(
    "reg-from-50pct", "only from the 50 % stage on: latency x1.3, errors +2 pp or throughput x0.8"
)
def _reg_50(s: Scenario) -> None:
    g = share_from(50)
    kind = int(s.rng.integers(3))
    eff = [lat_factor(1.3, g), err_level(None, g, 0.02), tput_factor(0.8, g)][kind]
    s.regress(stage_start(2), eff, note=["latency", "errors", "throughput"][kind])


def _high_load(s: Scenario) -> tuple[float, int]:
    level = u(s.rng, 1.4, 1.8)
    back = u(s.rng, 600, 1200) if s.rng.random() < 0.5 else None
    level, at = mod_load_step(s, level=level, at=u(s.rng, 600, 2400), back_after=back, fixed=True)
    return 1 + (level - 1) / 2, int(at)


@shape(
    "reg-latency-high-load", "load steps to x1.4-1.8; V2 latency x1.3-1.5 only while load is high"
)
def _reg_hl_lat(s: Scenario) -> None:
    thr, at = _high_load(s)
    f = u(s.rng, 1.3, 1.5)
    s.regress(at, lat_factor(f, load_above(thr)), note=f"latency x{f:.2f} above load {thr:.2f}")


@shape("reg-errors-high-load", "load steps to x1.4-1.8; V2 errors +2-4 pp only while load is high")
def _reg_hl_err(s: Scenario) -> None:
    thr, at = _high_load(s)
    add = u(s.rng, 0.02, 0.04)
    s.regress(at, err_level(None, load_above(thr), add), note=f"errors +{add:.1%} above {thr:.2f}")


def _intermittent(s: Scenario) -> Gate:
    start = on_grid(u(s.rng, 0, 1200))
    period = on_grid(u(s.rng, 240, 600))
    on = on_grid(period * u(s.rng, 0.4, 0.6))
    s.onset = start
    s.notes.append(f"on {on}s every {period}s from {start}s")
    return periodic(start, period, on)


@shape("reg-latency-intermittent", "V2 latency x1.35-1.6, on 40-60 % of every 4-10 min")
def _reg_int_lat(s: Scenario) -> None:
    g = _intermittent(s)
    f = u(s.rng, 1.35, 1.6)
    s.regress(s.onset or 0, lat_factor(f, g), note=f"latency x{f:.2f}")


@shape("reg-errors-intermittent", "V2 errors +2-4 pp, on 40-60 % of every 4-10 min")
def _reg_int_err(s: Scenario) -> None:
    g = _intermittent(s)
    add = u(s.rng, 0.02, 0.04)
    s.regress(s.onset or 0, err_level(None, g, add), note=f"errors +{add:.1%}")


@shape("reg-error-bursts-short", "V2 errors 10-20 % for 20-30 s every 2-3 min")
def _reg_bursts_short(s: Scenario) -> None:
    start = on_grid(u(s.rng, 0, 1800))
    period, dur = on_grid(u(s.rng, 120, 180)), on_grid(u(s.rng, 20, 30))
    s.regress(
        start,
        err_level(u(s.rng, 0.10, 0.20), periodic(start, period, dur)),
        note=f"{dur}s every {period}s",
    )


@shape("reg-error-bursts-long", "V2 errors 4-8 % for 2-3 min every 8-12 min")
def _reg_bursts_long(s: Scenario) -> None:
    start = on_grid(u(s.rng, 0, 1800))
    period, dur = on_grid(u(s.rng, 480, 720)), on_grid(u(s.rng, 120, 180))
    s.regress(
        start,
        err_level(u(s.rng, 0.04, 0.08), periodic(start, period, dur)),
        note=f"{dur}s every {period}s",
    )


@shape("reg-memory-leak-slow", "V2 RSS grows 12-20 % of its level per hour from the start")
def _reg_leak_slow(s: Scenario) -> None:
    rate = u(s.rng, 0.12, 0.20)
    s.regress(0, mem_leak(rate, 0), note=f"{rate:.0%}/h")


@shape("reg-latency-creep-slow", "V2 latency +0.5-1 %/min from a random time in 0..1200 s")
def _reg_creep_slow(s: Scenario) -> None:
    on = on_grid(u(s.rng, 0, 1200))
    rate = u(s.rng, 0.005, 0.01)
    s.regress(on, lat_creep(rate, on), note=f"+{rate:.2%}/min")


@shape("reg-latency-creep-fast", "V2 latency +3-5 %/min from a random time in 0..2400 s")
def _reg_creep_fast(s: Scenario) -> None:
    on = on_grid(u(s.rng, 0, 2400))
    rate = u(s.rng, 0.03, 0.05)
    s.regress(on, lat_creep(rate, on), note=f"+{rate:.2%}/min")


@shape(
    "reg-mid-stage",
    "step regression 2-8 min into a random stage: latency x1.3 / errors +2.5 pp / "
    "throughput x0.8 / parse -5 pp",
)
def _reg_mid(s: Scenario) -> None:
    on = on_grid(stage_start(int(s.rng.integers(0, 5))) + u(s.rng, 120, 480))
    g = after(on)
    kind = int(s.rng.integers(4))
    eff = [
        lat_factor(1.3, g),
        err_level(None, g, 0.025),
        tput_factor(0.8, g),
        parse_level(s.parse - 0.05, g),
    ][kind]
    s.regress(on, eff, note=["latency", "errors", "throughput", "parse"][kind])


@shape("reg-zero-error-baseline", "V1 has no errors at all; V2 fails 0.5-1 % from the start")
def _reg_zero(s: Scenario) -> None:
    s.err_v1 = 0.0
    p = u(s.rng, 0.005, 0.01)
    s.regress(0, err_level(p, after(0)), note=f"V2 errors {p:.2%}")


@shape("reg-low-traffic-latency", "10-30 rps, V2 latency x1.4 from the start")
def _reg_lt_lat(s: Scenario) -> None:
    mod_traffic(s, 10, 30)
    s.regress(0, lat_factor(1.4, after(0)))


@shape("reg-low-traffic-errors", "10-30 rps, V2 error rate 3 % from the start")
def _reg_lt_err(s: Scenario) -> None:
    mod_traffic(s, 10, 30)
    s.regress(0, err_level(0.03, after(0)))


@shape("reg-with-warmup", "long V2 warm-up on top of latency x1.25-1.4 from the start")
def _reg_warm(s: Scenario) -> None:
    mod_warmup(s, long=True)
    f = u(s.rng, 1.25, 1.4)
    s.regress(0, lat_factor(f, after(0)), note=f"latency x{f:.2f}")


@shape("reg-under-load-change", "load ramp/step/diurnal plus a clear regression at a random time")
def _reg_load(s: Scenario) -> None:
    kind = int(s.rng.integers(3))
    if kind == 0:
        mod_load_ramp(s)
    elif kind == 1:
        _load_step(s)
    else:
        mod_diurnal(s)
    random_regression(s, onset_any(s))


@shape("reg-noisy", "heavy tails + AR(1) noise plus a clear regression at a random time")
def _reg_noisy(s: Scenario) -> None:
    mod_heavy_tails(s)
    mod_ar1(s)
    random_regression(s, onset_any(s))


@shape("reg-other-levels", "another module's levels plus a clear regression")
def _reg_levels(s: Scenario) -> None:
    mod_levels(s)
    random_regression(s, onset_any(s))


@shape("reg-mixed", "3-5 realism variations plus a clear regression at a random time")
def _reg_mixed(s: Scenario) -> None:
    mod_mixed(s, exclude=("traffic",))
    mod_traffic(s, 40, 3000)
    random_regression(s, onset_any(s))


# ------------------------------------------------------------------------- main


def make(shape_name: str, seed: int) -> Scenario:
    rng = np.random.default_rng([seed, zlib.crc32(shape_name.encode())])
    s = Scenario(name=f"{shape_name}-{seed}", shape=shape_name, rng=rng)
    SHAPES[shape_name][1](s)
    if s.expect == "rollback":
        assert s.onset is not None and s.onset < 3000, (s.name, s.onset)
    return s


def select(spec: str | None) -> list[str]:
    if not spec:
        return list(SHAPES)
    chosen: list[str] = []
    for pat in (p.strip() for p in spec.split(",") if p.strip()):
        hits = [n for n in SHAPES if fnmatch.fnmatch(n, pat) or n in (f"aa-{pat}", f"reg-{pat}")]
        if not hits:
            raise SystemExit(f"no shape matches {pat!r}; see --list")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", help="output folder (created)")
    ap.add_argument("--seed", type=int, default=1,
                    help="first scenario seed of each shape; seeds N..N+per_shape-1 are used")
    ap.add_argument("--per-shape", type=int, default=6)
    ap.add_argument("--shapes", help="comma-separated names or globs (reg-*, aa-load-*)")
    ap.add_argument("--list", action="store_true", help="list the shapes and exit")
    ap.add_argument("--verbose", action="store_true", help="print each scenario's draw")
    args = ap.parse_args(argv)
    if args.list:
        for name, (doc, _) in SHAPES.items():
            print(f"{name:<28} {doc}")
        return 0
    if not args.out:
        ap.error("--out is required")
    os.makedirs(args.out, exist_ok=True)
    truth = []
    for name in select(args.shapes):
        for i in range(args.per_shape):
            s = make(name, args.seed + i)
            truth.append(write(s, args.out))
            if args.verbose:
                print(f"{s.name:<36} {s.expect:<12} onset={s.onset} {'; '.join(s.notes)}")
    with open(os.path.join(args.out, "truth.json"), "w") as fh:
        json.dump(truth, fh, indent=1)
        fh.write("\n")
    print(f"wrote {len(truth)} scenarios to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
