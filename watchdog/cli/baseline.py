"""``rollout-watchdog baseline capture|list|show|pin``: stored V1 baselines."""

from __future__ import annotations

import json
import sys

import click

from watchdog import baseline as baselines
from watchdog.backtest.scenario import load_scenario
from watchdog.cli.errors import exit_on_errors
from watchdog.clock import SystemClock
from watchdog.durations import parse_duration
from watchdog.errors import (
    JournalError,
    PluginError,
    ScenarioError,
    SourceError,
    UnknownModule,
)
from watchdog.journal.store import Journal
from watchdog.judge.domain import Domain, domain_of
from watchdog.model import Version
from watchdog.settings import load_settings


def _journal(db: str | None) -> Journal:
    try:
        return Journal(load_settings(db=db).db)
    except JournalError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)


db_option = click.option("--db", envvar="WATCHDOG_DB", help="Journal file (WATCHDOG_DB).")


@click.group()
def baseline() -> None:
    """Capture, list, show and pin stored V1 baselines."""


@baseline.command()
@db_option
@click.option("--scenario", "scenario_path", type=click.Path(),
              help="Capture from a recorded scenario file (its V1 samples).")
@click.option("--config", "config_path", type=click.Path(),
              help="Capture live, through the source that this watchdog.yaml configures "
                   "(one range query per metric for Prometheus).")
@click.option("--module", help="Module name (default: the scenario's; required with --config).")
@click.option("--window", "window", default="30m", show_default=True,
              help="With --config: how far back from now to capture.")
@click.option("--from", "window_from", type=float, help="Window start (default: scenario's).")
@click.option("--to", "window_to", type=float, help="Window end (default: scenario's).")
@click.option("--expires-in", help="Expire after this long, e.g. 7d.")
@click.option("--pin", is_flag=True, help="Make the new baselines the reference.")
def capture(db: str | None, scenario_path: str | None, config_path: str | None,
            module: str | None, window: str, window_from: float | None,
            window_to: float | None, expires_in: str | None, pin: bool) -> None:
    """Capture V1 over a window and store a baseline per metric."""
    if (scenario_path is None) == (config_path is None):
        click.echo("error: give exactly one of --scenario FILE or --config FILE", err=True)
        sys.exit(2)
    try:
        ttl = parse_duration(expires_in) if expires_in else None
    except ValueError as err:
        click.echo(f"error: --expires-in: {err}", err=True)
        sys.exit(2)
    now = SystemClock().now()
    domains: dict[str, Domain]  # a metric's values (its declared domain)
    if config_path is not None:
        found = _live(config_path, module, window, now)
        journal = _journal(db or found[0])
        name, start, end, points, source, domains = found[1:]
    else:
        assert scenario_path is not None
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
        journal = _journal(db)
        domains = {}
    saved = 0
    for metric, pts in points.items():
        try:
            b = baselines.capture(name, metric, pts, start, end, source, captured_at=now,
                                  expires_at=None if ttl is None else now + ttl,
                                  domain=domains.get(metric))
        except baselines.EmptyBaseline as err:
            click.echo(f"warning: {err}", err=True)
            continue
        stored = journal.save_baseline(b)
        if pin and stored.id is not None:
            stored = journal.pin_baseline(stored.id)
        saved += 1
        click.echo(f"#{stored.id} {stored.module}/{stored.metric}: n={stored.count} "
                   f"mean={stored.mean:.6g} p95={stored.p95:.6g}{' (pinned)' if pin else ''}")
    if not saved:
        click.echo("error: no baseline captured: no V1 samples in the window", err=True)
        sys.exit(1)


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
@db_option
@click.option("--module")
@click.option("--json", "as_json", is_flag=True)
def list_(db: str | None, module: str | None, as_json: bool) -> None:
    """List stored baselines."""
    journal = _journal(db)
    rows = journal.baselines(module=module)
    now = SystemClock().now()
    if as_json:
        click.echo(json.dumps([_summary(b, now) for b in rows], indent=1))
        return
    click.echo(f"{'id':>4}  {'module':<16} {'metric':<20} {'n':>6} {'mean':>12} {'p95':>12}  flags")
    for b in rows:
        flags = ",".join(f for f, on in (("pinned", b.pinned), ("expired", b.expired(now))) if on)
        click.echo(f"{b.id:>4}  {b.module:<16} {b.metric:<20} {b.count:>6} {b.mean:>12.6g} "
                   f"{b.p95:>12.6g}  {flags}")


@baseline.command()
@db_option
@click.argument("baseline_id", type=int)
@click.option("--samples", is_flag=True, help="Include the stored samples.")
def show(db: str | None, baseline_id: int, samples: bool) -> None:
    """Show one baseline as JSON."""
    b = _journal(db).baseline(baseline_id)
    if b is None:
        click.echo(f"error: no baseline with id {baseline_id}", err=True)
        sys.exit(1)
    data = _summary(b, SystemClock().now())
    if samples:
        data["samples"] = [list(p) for p in b.samples]
    click.echo(json.dumps(data, indent=1))


@baseline.command()
@db_option
@click.argument("baseline_id", type=int)
def pin(db: str | None, baseline_id: int) -> None:
    """Make a baseline the reference for its module and metric."""
    try:
        b = _journal(db).pin_baseline(baseline_id)
    except JournalError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    click.echo(f"#{b.id} {b.module}/{b.metric} is now the pinned baseline")


def _summary(b: baselines.Baseline, now: float) -> dict[str, object]:
    return {"id": b.id, "module": b.module, "metric": b.metric, "source": b.source,
            "window": [b.window_from, b.window_to], "captured_at": b.captured_at,
            "count": b.count, "mean": b.mean, "stddev": b.stddev, "p50": b.p50, "p90": b.p90,
            "p95": b.p95, "p99": b.p99, "min": b.min, "max": b.max, "pinned": b.pinned,
            "expires_at": b.expires_at, "expired": b.expired(now)}
