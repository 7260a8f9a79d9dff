"""``rollout-watchdog record MODULE --from T --to T --out FILE.jsonl``: a past rollout,
read from the configured source and journal, as a recorded-rollout file for ``backtest``
(see :mod:`watchdog.backtest.record`)."""

from __future__ import annotations

import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

import click

from watchdog.backtest import record as rec
from watchdog.baseline import iso
from watchdog.cli.errors import exit_on_errors
from watchdog.clock import SystemClock
from watchdog.durations import parse_duration
from watchdog.errors import JournalError, PluginError, SourceError, UnknownModule, WatchdogError
from watchdog.journal.records import JournaledDecision

_EPOCH = re.compile(r"^\d+(\.\d+)?$")


def parse_time(text: str, now: float) -> float:
    """Unix seconds from ``now``, a number (Unix seconds), an ISO 8601 time (UTC unless it
    says otherwise) or ``-DURATION`` (that long ago, e.g. ``-2h``)."""
    text = text.strip()
    if text == "now":
        return now
    if _EPOCH.match(text):
        return float(text)
    if text.startswith("-"):
        return now - parse_duration(text[1:])
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: give Unix seconds, an ISO 8601 time "
                         "(2026-05-04T10:00:00Z), 'now' or -DURATION (e.g. -2h)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.command()
@click.argument("module")
@click.option("--from", "time_from", required=True,
              help="Window start: Unix seconds, ISO 8601 (UTC by default), or -DURATION ago.")
@click.option("--to", "time_to", default="now", show_default=True, help="Window end.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The recording to write (JSON Lines; replaced atomically).")
@click.option("--config", "config_path", envvar="WATCHDOG_CONFIG", required=True,
              type=click.Path(dir_okay=False),
              help="Daemon config (WATCHDOG_CONFIG): its source, rules and journal.")
@click.option("--baseline", "baseline_window", default="30m", show_default=True,
              help="V1's baseline window before the rollout start, included.")
@click.option("--name", help="Scenario name (default: MODULE-<start time>).")
def record(module: str, time_from: str, time_to: str, out: str, config_path: str,
           baseline_window: str, name: str | None) -> None:
    """Record MODULE's rollout between --from and --to for `backtest`.

    Both versions' metrics come from the configured source; t = 0 is the first advance
    the journal holds for MODULE in the window (else --from); the plan's stages are the
    journal's advances, then the configured plan's higher stages."""
    from watchdog.daemon.build import build_source, close_plugin
    from watchdog.daemon.config import load_config

    now = SystemClock().now()
    try:
        start, until = parse_time(time_from, now), parse_time(time_to, now)
        baseline = parse_duration(baseline_window)
    except ValueError as err:
        _fail(str(err))
    if until <= start:
        _fail(f"--to ({iso(until)}) must be after --from ({iso(start)})")
    with exit_on_errors(UnknownModule, PluginError):
        loaded = load_config(config_path)
        spec = loaded.rules.for_module(module)
        spec = spec.model_copy(update={"interval": loaded.interval_of(module)})
    decisions = _decisions(loaded.db, module, start, until)
    first = rec.rollout_start(decisions)
    if first is None:
        click.echo(f"note: the journal {loaded.db} holds no advance of {module} in the "
                   "window: t = 0 is --from, and the plan is the configured one", err=True)
    else:
        start = first.decision.at
    stages = rec.plan_stages(decisions, [s.traffic for s in spec.plan.stages])
    try:
        span = rec.window(start, until, baseline, spec.interval)
    except ValueError as err:
        _fail(str(err))
    with exit_on_errors(PluginError):
        source = build_source(loaded)
    try:
        store = source.fetch(spec, span.fetch_from, span.end)
    except SourceError as err:
        _fail(f"{loaded.config.source.plugin} source: {err}", code=1)
    finally:
        close_plugin(source)
    stamp = datetime.fromtimestamp(start, UTC).strftime("%Y%m%dT%H%M%SZ")
    made = rec.recording(name or f"{module}-{stamp}", spec, store, span, stages,
                         spec.plan.hold)
    if not made.samples:
        _fail(f"no samples of {module} in {iso(span.start - baseline)} .. {iso(span.end)}",
              code=1)
    for metric in made.missing:
        click.echo(f"warning: no samples of {metric}: not in the recording", err=True)
    _write(Path(out), made.text())
    origin = "--from" if first is None else f"decision #{first.id}"
    click.echo(f"recorded {module}: {len(made.samples)} samples of "
               f"{len(made.meta['metrics'])} metrics every {span.step:g}s, "
               f"baseline {iso(span.start - baseline)} .. {iso(span.start)}, rollout "
               f"{iso(span.start)} ({origin}) .. {iso(span.end)}; stages "
               f"{', '.join(f'{s:g}' for s in stages)} %, hold {spec.plan.hold:g}s -> {out}")


def _decisions(db: str, module: str, start: float, until: float) -> list[JournaledDecision]:
    """The module's journaled decisions in the window; none when there is no journal
    (a read-only command creates none)."""
    from watchdog.journal import is_postgres, open_journal

    if not is_postgres(db) and not Path(db.removeprefix("sqlite:///")).exists():
        return []
    try:
        journal = open_journal(db)
    except (JournalError, ValueError) as err:
        _fail(f"journal {db}: {err}")
    try:
        return list(journal.decisions(module=module, since=start, until=until))
    except WatchdogError as err:
        _fail(f"journal {db}: {err}")
    finally:
        journal.close()


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        _fail(f"cannot write {path}: {err.strerror or err}")

