"""``rollout-watchdog baseline capture|list|show|pin``: stored V1 baselines."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from watchdog import baseline as baselines
from watchdog.backtest.scenario import load_scenario
from watchdog.cli.errors import exit_on_errors
from watchdog.cli.options import output_options
from watchdog.clock import SystemClock
from watchdog.durations import parse_duration
from watchdog.errors import (
    JournalError,
    PluginError,
    ScenarioError,
    SourceError,
    UnknownModule,
    WatchdogError,
)
from watchdog.journal.store import Journal, SqliteJournal
from watchdog.judge.domain import Domain, domain_of
from watchdog.model import Version
from watchdog.settings import load_settings

F = TypeVar("F", bound=Callable[..., Any])


def _journal(config: str | None, db: str | None) -> Journal:
    """The journal a command writes to: --db, else the config's db, else WATCHDOG_DB or
    the default file (the daemon's own rule)."""
    if db is None and config is not None:
        from watchdog.daemon.config import load_config

        with exit_on_errors(WatchdogError):
            db = load_config(config).db
    try:
        return Journal(load_settings(db=db).db)
    except JournalError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)


def _read_only(config: str | None, db: str | None) -> SqliteJournal:
    from watchdog.cli.readonly import open_read_only, view

    return open_read_only(view(config, db))


def where_options(f: F) -> F:
    f = click.option("--db", help="Journal file (default: the config's db, else "
                                  "WATCHDOG_DB, else rollout-watchdog.db).")(f)
    return click.option("--config", "config_path", envvar="WATCHDOG_CONFIG",
                        type=click.Path(dir_okay=False),
                        help="Daemon config file (WATCHDOG_CONFIG): its journal, and the "
                             "source a live capture reads.")(f)


@click.group()
def baseline() -> None:
    """Capture, list, show and pin stored V1 baselines."""


@baseline.command()
@where_options
@click.option("--scenario", "scenario_path", type=click.Path(),
              help="Capture from a recorded scenario file (its V1 samples). Without it: "
                   "live, through the config's source (one range query per metric for "
                   "Prometheus).")
@click.option("--module", help="Module name (default: the scenario's; required live).")
@click.option("--window", "window", default="30m", show_default=True,
              help="Live: how far back from now to capture.")
@click.option("--from", "window_from", type=float, help="Window start (default: scenario's).")
@click.option("--to", "window_to", type=float, help="Window end (default: scenario's).")
@click.option("--min-samples", type=click.IntRange(min=1), default=baselines.MIN_SAMPLES,
              show_default=True,
              help="Refuse (store nothing, exit 1) when a metric has fewer V1 samples.")
@click.option("--expires-in", help="Expire after this long, e.g. 7d.")
@click.option("--pin", is_flag=True, help="Make the new baselines the reference.")
def capture(config_path: str | None, db: str | None, scenario_path: str | None,
            module: str | None, window: str, window_from: float | None,
            window_to: float | None, min_samples: int, expires_in: str | None,
            pin: bool) -> None:
    """Capture V1 over a window and store a baseline per metric.

    When any metric has some V1 samples in the window but fewer than --min-samples,
    nothing is stored and the exit status is 1 (a metric with none is skipped with a
    warning; none at all for every metric: exit 1)."""
    if scenario_path is None and config_path is None:
        click.echo("error: give --scenario FILE, or a daemon config (--config FILE or "
                   "WATCHDOG_CONFIG) to capture live through its source", err=True)
        sys.exit(2)
    try:
        ttl = parse_duration(expires_in) if expires_in else None
    except ValueError as err:
        click.echo(f"error: --expires-in: {err}", err=True)
        sys.exit(2)
    now = SystemClock().now()
    domains: dict[str, Domain]  # a metric's values (its declared domain)
    if scenario_path is None:
        assert config_path is not None
        found = _live(config_path, module, window, now)
        name, start, end, points, source, domains = found[1:]
        journal = _journal(None, db or found[0])
    else:
        try:
            sc = load_scenario(scenario_path)
        except ScenarioError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(2)
        name = module or sc.module
        start = sc.baseline_from if window_from is None else window_from
        end = sc.baseline_to if window_to is None else window_to
        points = {m: list(zip(sc.store.get(Version.V1, m).t.tolist(),
                              sc.store.get(Version.V1, m).v.tolist(), strict=True))
                  for m in sc.metrics}
        source = f"scenario:{scenario_path}"
        journal = _journal(config_path, db)
        domains = {}
    made, refused = [], []
    for metric, pts in points.items():
        try:
            made.append(baselines.capture(
                name, metric, pts, start, end, source, captured_at=now,
                expires_at=None if ttl is None else now + ttl, domain=domains.get(metric),
                min_samples=min_samples))
        except baselines.TooFewSamples as err:
            refused.append(str(err))
        except baselines.EmptyBaseline as err:  # the metric is not there at all
            click.echo(f"warning: {err}", err=True)
    if refused:
        for text in refused:
            click.echo(f"error: {text}", err=True)
        click.echo(f"error: nothing stored for module {name}: a baseline from so few "
                   "samples cannot be trusted (widen the window, or lower --min-samples "
                   "knowingly)", err=True)
    elif not made:
        click.echo("error: no baseline captured: no V1 samples in the window", err=True)
    if refused or not made:
        journal.close()
        sys.exit(1)
    click.echo(f"window {baselines.iso(start)} .. {baselines.iso(end)} ({source})")
    for b in made:
        stored = journal.save_baseline(b)
        if pin and stored.id is not None:
            stored = journal.pin_baseline(stored.id)
        click.echo(f"#{stored.id} {stored.module}/{stored.metric}: n={stored.count} "
                   f"mean={stored.mean:.6g} p95={stored.p95:.6g}{' (pinned)' if pin else ''}")
    journal.close()


def _live(config_path: str, module: str | None, window: str, now: float
          ) -> tuple[str, str, float, float, dict[str, list[tuple[float, float]]], str,
                     dict[str, Domain]]:
    """V1's samples over the past ``window`` through the configured source."""
    from watchdog.daemon.build import build_source, close_plugin
    from watchdog.daemon.config import load_config

    if module is None:
        click.echo("error: --module is required with --config", err=True)
        sys.exit(2)
    try:
        span = parse_duration(window)
    except ValueError as err:
        click.echo(f"error: --window: {err}", err=True)
        sys.exit(2)
    with exit_on_errors(UnknownModule, PluginError):
        loaded = load_config(config_path)
        spec = loaded.rules.for_module(module)
        source = build_source(loaded)
    start = now - span
    try:
        store = source.fetch(spec, start, now)
    except SourceError as err:
        click.echo(f"error: {loaded.config.source.plugin} source: {err}", err=True)
        sys.exit(1)
    finally:
        close_plugin(source)
    points = {m: list(zip(store.get(Version.V1, m).t.tolist(),
                          store.get(Version.V1, m).v.tolist(), strict=True))
              for m in spec.metrics}
    label = f"{loaded.config.source.plugin}:{config_path}:{window}"
    # the window is (start, now]; capture() keeps start <= t < end
    domains = {m: domain_of(s) for m, s in spec.metrics.items()}  # drop what is no sample
    return loaded.db, module, start, now + 1e-6, points, label, domains


@baseline.command("list")
@where_options
@click.option("--module")
@output_options
def list_(config_path: str | None, db: str | None, module: str | None, as_json: bool) -> None:
    """List stored baselines (read-only)."""
    journal = _read_only(config_path, db)
    try:
        with exit_on_errors(WatchdogError):
            rows = journal.baselines(module=module)
    finally:
        journal.close()
    now = SystemClock().now()
    if as_json:
        click.echo(json.dumps([_summary(b, now) for b in rows], indent=1))
        return
    click.echo(f"{'id':>4}  {'module':<16} {'metric':<20} {'n':>6} {'mean':>12} {'p95':>12}  "
               f"{'captured (UTC)':<25} flags")
    for b in rows:
        flags = ",".join(f for f, on in (("pinned", b.pinned), ("expired", b.expired(now))) if on)
        click.echo(f"{b.id:>4}  {b.module:<16} {b.metric:<20} {b.count:>6} {b.mean:>12.6g} "
                   f"{b.p95:>12.6g}  {baselines.iso(b.captured_at):<25} {flags}")
    if not rows:
        click.echo(f"(no baselines{f' for module {module}' if module else ''} in "
                   f"{journal.path})")


@baseline.command()
@where_options
@click.argument("baseline_id", type=int)
@click.option("--samples", is_flag=True, help="Include the stored samples.")
def show(config_path: str | None, db: str | None, baseline_id: int, samples: bool) -> None:
    """Show one baseline as JSON (read-only)."""
    journal = _read_only(config_path, db)
    try:
        with exit_on_errors(WatchdogError):
            b = journal.baseline(baseline_id)
    finally:
        journal.close()
    if b is None:
        click.echo(f"error: no baseline with id {baseline_id}", err=True)
        sys.exit(1)
    data = _summary(b, SystemClock().now())
    if samples:
        data["samples"] = [list(p) for p in b.samples]
    click.echo(json.dumps(data, indent=1))


@baseline.command()
@where_options
@click.argument("baseline_id", type=int)
def pin(config_path: str | None, db: str | None, baseline_id: int) -> None:
    """Make a baseline the reference for its module and metric."""
    try:
        b = _journal(config_path, db).pin_baseline(baseline_id)
    except JournalError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    click.echo(f"#{b.id} {b.module}/{b.metric} is now the pinned baseline")


def _summary(b: baselines.Baseline, now: float) -> dict[str, object]:
    return {"id": b.id, "module": b.module, "metric": b.metric, "source": b.source,
            "window": [b.window_from, b.window_to], "captured_at": b.captured_at,
            "window_utc": [baselines.iso(b.window_from), baselines.iso(b.window_to)],
            "captured_at_utc": baselines.iso(b.captured_at),
            "expires_at_utc": None if b.expires_at is None else baselines.iso(b.expires_at),
            "count": b.count, "mean": b.mean, "stddev": b.stddev, "p50": b.p50, "p90": b.p90,
            "p95": b.p95, "p99": b.p99, "min": b.min, "max": b.max, "pinned": b.pinned,
            "expires_at": b.expires_at, "expired": b.expired(now)}
