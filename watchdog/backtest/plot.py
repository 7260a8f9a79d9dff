"""Drawing a backtest: V1 against V2 per metric, the stored baseline, stages and decisions.

One PNG: a traffic panel on top (the share of traffic V2 had, with every decision marked)
and one panel per metric below it on a shared time axis (minutes after the rollout start):

* V1 and V2 samples as recorded;
* the stored V1 baseline, captured from the scenario's baseline window exactly as the
  replay does: its mean and its p5-p95 band, with the baseline window shaded;
* each rule's limit against that baseline (relative rules) or its fixed limit (absolute);
* stage boundaries (the advances) as vertical lines labelled with the new traffic share;
* the rollback as a red line, annotated with the rule(s) that fired.

matplotlib is the optional ``plot`` extra: it is imported here, lazily, with the Agg
backend, so nothing else in the package needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from watchdog import baseline as baselines
from watchdog.backtest.replay import BacktestResult
from watchdog.backtest.scenario import Scenario
from watchdog.config.loader import RuleSet
from watchdog.config.schema import AbsoluteRule, Module, RelativeRule
from watchdog.durations import format_duration
from watchdog.errors import WatchdogError
from watchdog.judge import stats
from watchdog.model import Action, Decision, Direction, Version

INSTALL_HINT = "install the plot extra: pip install 'rollout-watchdog[plot]'"

DPI = 100
V1_COLOUR = "#4c72b0"
V2_COLOUR = "#dd8452"
V2_SMOOTH_COLOUR = "#a63d00"
BASELINE_COLOUR = "#4c72b0"
LIMIT_COLOUR = "#c44e52"
STAGE_COLOUR = "#555555"
WINDOW_SHADE = "#e9f0f9"
AFTER_SHADE = {Action.ROLLBACK: "#faeeee", Action.PROMOTE: "#eef6ea", Action.ABORT: "#eeeeee"}


@dataclass(frozen=True)
class Marker:
    label: str
    marker: str
    colour: str
    size: float


MARKERS: dict[Action, Marker] = {
    Action.ADVANCE: Marker("advance", "^", "#2ca02c", 9),
    Action.HOLD: Marker("hold", "D", "#9467bd", 7),
    Action.ROLLBACK: Marker("rollback", "X", "#d62728", 12),
    Action.PROMOTE: Marker("promote", "*", "#e0a800", 15),
    Action.PAUSE: Marker("pause", "s", "#7f7f7f", 7),
    Action.RESUME: Marker("resume", ">", "#7f7f7f", 8),
    Action.ABORT: Marker("abort", "x", "#000000", 9),
    Action.STEP_BACK: Marker("step back", "v", "#ff7f0e", 10),
    Action.APPROVE: Marker("approve", "P", "#17becf", 9),
}

_FINAL = (Action.ROLLBACK, Action.PROMOTE, Action.ABORT)
_DIRECTION_WORDS = {Direction.HIGHER_IS_WORSE: "higher is worse",
                    Direction.LOWER_IS_WORSE: "lower is worse",
                    Direction.GROWTH_IS_WORSE: "growth is worse"}


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or WatchdogError saying what to install."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise WatchdogError(f"--plot needs matplotlib, which is not installed: "
                            f"{INSTALL_HINT}") from err
    return plt


def fired_rules(decision: Decision) -> list[str]:
    """Rules named in a decision's reasons ("rule: summary"), in order; [] for none."""
    names = [str(e["rule"]) for e in decision.evidence if "rule" in e]
    return [n for n in names if any(r.startswith(f"{n}:") for r in decision.reasons)]


def draw(result: BacktestResult, rules: RuleSet, path: str) -> None:
    """Write the replay in ``result`` to ``path`` as a PNG (see the module docstring)."""
    target = Path(path)
    if not target.parent.is_dir():
        raise WatchdogError(f"cannot write plot to {path}: no such directory {target.parent}")
    plt = require_matplotlib()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    sc = result.scenario
    module = rules.for_module(sc.module)
    metrics = [m for m in sc.metrics if len(sc.store.get(Version.V1, m))
               or len(sc.store.get(Version.V2, m))]
    decisions = [jd.decision for jd in result.decisions]
    heights = [1.3] + [2.0] * len(metrics)
    fig, axes = plt.subplots(len(heights), 1, sharex=True, figsize=(12, 1.2 + 1.9 * len(heights)),
                             gridspec_kw={"height_ratios": heights, "hspace": 0.12})
    try:
        axes = list(np.atleast_1d(axes))
        present = [sc.store.get(v, m) for v, m in list(sc.store.keys())]
        start = min([sc.baseline_from, *(float(s.t[0]) for s in present if len(s))])
        end = max(sc.end, *(d.at for d in decisions)) if decisions else sc.end
        _traffic_panel(axes[0], sc, decisions, start, end)
        for ax, metric in zip(axes[1:], metrics, strict=True):
            _metric_panel(ax, sc, module, metric, decisions)
        for ax in axes:
            _common(ax, sc, decisions)
        axes[-1].set_xlim(start / 60, end / 60)
        axes[-1].set_xlabel("minutes after the rollout start (baseline window before 0)")
        handles = [
            Line2D([], [], color=V1_COLOUR, lw=1.2, label="V1"),
            Line2D([], [], color=V2_COLOUR, lw=1.2, label="V2"),
            Line2D([], [], color=V2_SMOOTH_COLOUR, lw=1.8,
                   label="V2 as the rule sees it (robust level over its window)"),
            Line2D([], [], color=BASELINE_COLOUR, lw=1.4, ls="--", label="stored baseline mean"),
            Patch(facecolor=BASELINE_COLOUR, alpha=0.18, label="baseline p5–p95"),
            Line2D([], [], color=LIMIT_COLOUR, lw=1.1, ls=":", label="rule limit"),
            Line2D([], [], color=STAGE_COLOUR, lw=1, ls="--", label="stage boundary"),
        ]
        seen = {d.action for d in decisions} | {Action.ADVANCE, Action.HOLD,
                                                Action.ROLLBACK, Action.PROMOTE}
        handles += [Line2D([], [], ls="", marker=m.marker, color=m.colour, markersize=8,
                           markeredgecolor="black", markeredgewidth=0.5, label=m.label)
                    for a, m in MARKERS.items() if a in seen]
        height = fig.get_figheight()
        fig.suptitle(_title(result), x=0.5, y=1 - 0.08 / height, va="top", fontsize=12,
                     fontweight="bold")
        fig.legend(handles=handles, loc="upper center", ncol=(len(handles) + 1) // 2,
                   bbox_to_anchor=(0.5, 1 - 0.36 / height), fontsize=8.5, frameon=False,
                   handlelength=1.8, columnspacing=1.4)
        fig.subplots_adjust(left=0.07, right=0.985, top=1 - 0.98 / height,
                            bottom=0.45 / fig.get_figheight())
        _save(fig, path)
    finally:
        plt.close(fig)


def _save(fig: Any, path: str) -> None:
    """PNG with a 256-colour palette: a third of the bytes, no visible difference."""
    from PIL import Image

    fig.set_dpi(DPI)
    fig.canvas.draw()
    rendered = Image.fromarray(np.asarray(fig.canvas.buffer_rgba()))
    image = rendered.convert("RGB").quantize(256, method=Image.Quantize.MAXCOVERAGE,
                                             dither=Image.Dither.NONE)
    try:
        image.save(path, format="PNG", optimize=True)
    except OSError as err:
        raise WatchdogError(f"cannot write plot to {path}: {err.strerror or err}") from err


def _title(result: BacktestResult) -> str:
    sc = result.scenario
    outcome = result.outcome.replace("_", " ")
    if result.rollback_at is not None:
        outcome += f" at {format_duration(result.rollback_at)}"
    stages = "/".join(f"{s:g}" for s in sc.stages)
    return (f"backtest {sc.name}: {outcome}   (module {sc.module}, stages {stages}% "
            f"every {format_duration(sc.stage_seconds)})")


def _traffic_panel(ax: Any, sc: Scenario, decisions: list[Decision], start: float,
                   end: float) -> None:
    times = [start] + [d.at for d in decisions] + [end]
    traffic = [0.0] + [d.traffic_percent for d in decisions]
    ax.step(np.array(times) / 60, [*traffic, traffic[-1]], where="post", color="#333333",
            lw=1.6, zorder=3)
    for d in decisions:
        m = MARKERS.get(d.action)
        if m is None:
            continue
        ax.plot(d.at / 60, d.traffic_percent, ls="", marker=m.marker, color=m.colour,
                markersize=m.size, markeredgecolor="black", markeredgewidth=0.6, zorder=5,
                clip_on=False)
        if d.action in (Action.ADVANCE, Action.STEP_BACK):  # the new stage's share
            ax.annotate(f"{d.traffic_percent:g}%", (d.at / 60, 124), xytext=(3, 0),
                        textcoords="offset points", ha="left", va="center", fontsize=9,
                        fontweight="bold", color=STAGE_COLOUR if d.action is Action.ADVANCE
                        else m.colour, zorder=6)
        if d.action in _FINAL or d.action is Action.STEP_BACK:
            what = m.label
            fired = fired_rules(d)
            if fired:
                what += ": " + ", ".join(fired)
            left = (d.at - start) / max(end - start, 1e-9) > 0.7
            ax.annotate(f"{what}  (t={format_duration(d.at)})", (d.at / 60, d.traffic_percent),
                        xytext=(-10 if left else 10, 16 if d.traffic_percent < 50 else -18),
                        textcoords="offset points", ha="right" if left else "left",
                        va="center", fontsize=9.5, fontweight="bold",
                        color=m.colour, zorder=6,
                        bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": m.colour,
                              "lw": 0.8, "alpha": 0.9})
    ax.set_ylim(-10, 136)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_ylabel("V2 traffic %", fontsize=9)
    ax.set_title("traffic to V2 and decisions", loc="left", fontsize=10, pad=3)
    lo, hi = sc.baseline_from / 60, sc.baseline_to / 60
    ax.text((lo + hi) / 2, 55, "baseline window\n(V1 only)", ha="center", va="center",
            fontsize=9, color=BASELINE_COLOUR, alpha=0.9)
    last = decisions[-1] if decisions else None
    if last is not None and last.action in _FINAL and end - last.at > 0.2 * (end - start):
        after = "V2 serves everything" if last.action is Action.PROMOTE else "V1 serves everything"
        ax.text((last.at + end) / 120, 55, f"after the {MARKERS[last.action].label}: {after}\n"
                "(the recorded samples are still drawn)", ha="center", va="center",
                fontsize=8.5, style="italic", color="#666666")


def _metric_panel(ax: Any, sc: Scenario, module: Module, metric: str,
                  decisions: list[Decision]) -> None:
    v1 = sc.store.get(Version.V1, metric)
    v2 = sc.store.get(Version.V2, metric)
    ax.plot(*_gapped(v1.t, v1.v, sc.step_seconds), color=V1_COLOUR, lw=0.9, alpha=0.8,
            zorder=3)
    ax.plot(*_gapped(v2.t, v2.v, sc.step_seconds), color=V2_COLOUR, lw=0.9, alpha=0.75,
            zorder=4)
    window = _rule_window(module, metric)
    if window is not None and len(v2):
        smooth = _windowed(v2.t, v2.v, *window)
        ax.plot(*_gapped(v2.t, smooth, sc.step_seconds), color=V2_SMOOTH_COLOUR, lw=1.8,
                zorder=4.5)
    spec = module.metrics.get(metric)
    direction = spec.direction if spec is not None else sc.metrics[metric]
    unit = spec.unit if spec is not None else ""
    points = zip(v1.t.tolist(), v1.v.tolist(), strict=True)
    try:
        base: baselines.Baseline | None = baselines.capture(
            sc.module, metric, points, sc.baseline_from, sc.baseline_to,
            f"scenario:{sc.name}", captured_at=sc.baseline_to)
    except baselines.EmptyBaseline:
        base = None
    shown = [v1.v, v2.v]
    if base is not None:
        p5, p95 = np.percentile(base.values(), [5, 95])
        ax.axhspan(p5, p95, color=BASELINE_COLOUR, alpha=0.13, lw=0, zorder=1)
        ax.axhline(base.mean, color=BASELINE_COLOUR, lw=1.4, ls="--", zorder=2)
        shown.append(np.array([p5, p95]))
    for label, value in _limits(module, metric, base):
        ax.axhline(value, color=LIMIT_COLOUR, lw=1.1, ls=":", zorder=2)
        ax.annotate(label, (1, value), xycoords=("axes fraction", "data"), xytext=(-3, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=7.5,
                    color=LIMIT_COLOUR, zorder=8,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none",
                          "alpha": 0.75})
        shown.append(np.array([value]))
    _ylim(ax, np.concatenate(shown))
    title = f"{metric}" + (f" [{unit}]" if unit else "") + f"  ({_DIRECTION_WORDS[direction]})"
    if base is not None:
        title += f"   baseline: n={base.count}, mean {_fmt(base.mean, unit)}"
    ax.set_title(title, loc="left", fontsize=10, pad=3)
    _format_axis(ax, unit)
    for d in decisions:
        if d.action is Action.ROLLBACK and metric in _fired_metrics(d):
            i = int(np.searchsorted(v2.t, d.at, side="right")) - 1
            if i >= 0:
                ax.annotate(", ".join(r for r in fired_rules(d)
                                      if _metric_of(d, r) == metric) + " fired",
                            (d.at / 60, float(v2.v[i])), xytext=(-14, 0),
                            textcoords="offset points", ha="right", va="center", fontsize=9,
                            fontweight="bold", color=MARKERS[Action.ROLLBACK].colour,
                            arrowprops={"arrowstyle": "->", "color": "#d62728", "lw": 1.2},
                            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#d62728",
                                  "lw": 0.8, "alpha": 0.9}, zorder=7)


def _common(ax: Any, sc: Scenario, decisions: list[Decision]) -> None:
    ax.axvspan(sc.baseline_from / 60, sc.baseline_to / 60, color=WINDOW_SHADE, lw=0, zorder=0)
    ax.grid(True, axis="both", color="#dddddd", lw=0.6, zorder=0)
    ax.tick_params(labelsize=8.5)
    for d in decisions:
        if d.action is Action.ADVANCE:
            ax.axvline(d.at / 60, color=STAGE_COLOUR, lw=1.0, ls="--", alpha=0.7, zorder=2.5)
        elif d.action is Action.STEP_BACK:  # a stage boundary too, down (the failure policy)
            ax.axvline(d.at / 60, color=MARKERS[Action.STEP_BACK].colour, lw=1.2, ls="--",
                       alpha=0.8, zorder=2.5)
        elif d.action is Action.HOLD:
            ax.axvline(d.at / 60, color=MARKERS[Action.HOLD].colour, lw=0.9, ls=":",
                       alpha=0.6, zorder=2.5)
        elif d.action in _FINAL:
            colour = MARKERS[d.action].colour
            ax.axvline(d.at / 60, color=colour, lw=1.8, alpha=0.9, zorder=2.6)
            ax.axvspan(d.at / 60, max(sc.end, d.at) / 60, color=AFTER_SHADE[d.action], lw=0,
                       zorder=0.5)


def _limits(module: Module, metric: str,
            base: baselines.Baseline | None) -> list[tuple[str, float]]:
    """Each rule's limit on this metric's scale: relative ones against the stored baseline."""
    out: list[tuple[str, float]] = []
    for rule in module.rules:
        if rule.metric != metric:
            continue
        if isinstance(rule, AbsoluteRule):
            for word, value in (("above", rule.above), ("below", rule.below)):
                if value is not None:
                    out.append((f"{rule.name}: {word} {value:g}", value))
        elif isinstance(rule, RelativeRule) and base is not None and rule.against != "live":
            spec = module.metrics[metric]
            worse_up = spec.direction is not Direction.LOWER_IS_WORSE
            tolerance = rule.max_increase if rule.max_increase is not None else rule.max_decrease
            assert tolerance is not None
            if rule.test == "none":
                reference = base.stat(rule.aggregate)
            else:
                values = base.values()  # the level the judge takes (relative.py)
                sd = stats.noise_sd(values) if len(values) >= 3 else base.stddev
                reference = stats.location(values, sd, rule.estimator)
            comp = stats.compare(reference, 0.0, 1, reference, 0.0, base.count, tolerance,
                                 rule.min_effect, worse_up)
            sign = "+" if worse_up else "−"
            out.append((f"{rule.name}: baseline {sign}{tolerance:.0%}", comp.limit))
    return out


def _gapped(t: np.ndarray, v: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Minutes and values with a NaN wherever samples are missing, so no line bridges a gap."""
    if len(t) < 2:
        return t / 60, v
    breaks = np.nonzero(np.diff(t) > 1.5 * step)[0] + 1
    return np.insert(t, breaks, np.nan) / 60, np.insert(v.astype(float), breaks, np.nan)


def _rule_window(module: Module, metric: str) -> tuple[float, int] | None:
    """(window, min_samples) of the first relative or absolute rule on ``metric``."""
    for rule in module.rules:
        if rule.metric == metric and isinstance(rule, RelativeRule | AbsoluteRule):
            return rule.window, rule.min_samples
    return None


def _windowed(t: np.ndarray, v: np.ndarray, window: float, min_samples: int) -> np.ndarray:
    """At each sample: the judge's robust level of the samples in (t - window, t] (see
    stats.location; noise from the whole series), NaN if too few."""
    lo = np.searchsorted(t, t - window, side="right")
    out = np.full(len(t), np.nan)
    sd = stats.noise_sd(v) if len(v) >= 3 else 0.0
    for i, start in enumerate(lo.tolist()):
        if i + 1 - start >= min_samples:
            out[i] = stats.location(v[start:i + 1], sd)
    return out


def _fired_metrics(d: Decision) -> set[str]:
    return {m for r in fired_rules(d) if (m := _metric_of(d, r)) is not None}


def _metric_of(d: Decision, rule: str) -> str | None:
    for e in d.evidence:
        if e.get("rule") == rule:
            return str(e.get("metric"))
    return None


def _ylim(ax: Any, values: np.ndarray) -> None:
    """Fit the bulk of the data (0.2-99.8 %), so one wild sample does not flatten the rest."""
    values = values[np.isfinite(values)]
    if not len(values):
        return
    if len(values) < 50:
        lo, hi = float(values.min()), float(values.max())
    else:
        lo, hi = (float(x) for x in np.percentile(values, [0.2, 99.8]))
    span = hi - lo or abs(hi) * 0.1 or 1.0
    ax.set_ylim(lo - 0.12 * span, hi + 0.12 * span)


def _format_axis(ax: Any, unit: str) -> None:
    from matplotlib.ticker import EngFormatter, PercentFormatter

    if unit == "ratio":
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
    elif unit == "bytes":
        ax.yaxis.set_major_formatter(EngFormatter(unit="B", places=0))
    ax.set_ylabel(unit or "value", fontsize=9)


def _fmt(value: float, unit: str) -> str:
    if unit == "ratio":
        return f"{value:.2%}"
    if unit == "bytes":
        return f"{value / 1e6:.0f} MB"
    return f"{value:.4g} {unit}".strip()
