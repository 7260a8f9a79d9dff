"""``rollout-watchdog query MODULE [--metric M]``: each metric's query for both versions,
run now through the configured source, and what came back (series, last value and time,
the rendered PromQL). Also the empty-result warnings of ``run --check``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from watchdog.baseline import iso
from watchdog.cli.errors import exit_on_errors
from watchdog.clock import SystemClock
from watchdog.errors import PluginError, UnknownModule
from watchdog.sources.probe import Answer, probe


def _line(a: Answer) -> str:
    if a.error is not None and not a.empty:
        return f"{a.metric} {a.version}: ERROR {a.error}"
    if a.pending:
        return f"{a.metric} {a.version}: no sample yet (a counter needs a second read)"
    if a.empty:
        return (f"{a.metric} {a.version}: no series (empty result: check the metric name and "
                "the module/version labels)")
    last = "" if a.last is None else f", last {a.last[1]:.6g} at {iso(a.last[0])}"
    many = " (a template must give one series per version: aggregate it)" \
        if a.series > 1 else ""
    return f"{a.metric} {a.version}: {a.series} series{last}{many}"


def _json(a: Answer) -> dict[str, Any]:
    return {"metric": a.metric, "version": a.version, "query": a.query, "series": a.series,
            "last": None if a.last is None else {"t": a.last[0], "value": a.last[1]},
            "empty": a.empty, "error": None if a.error is None else str(a.error)}


@click.command()
@click.argument("module")
@click.option("--metric", "metrics", multiple=True, help="Only this metric (repeatable).")
@click.option("--config", "config_path", envvar="WATCHDOG_CONFIG",
              type=click.Path(dir_okay=False),
              help="Daemon config (WATCHDOG_CONFIG): its source and rules.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text",
              help="Output format (-o json is --json).")
def query(module: str, metrics: tuple[str, ...], config_path: str | None, as_json: bool,
          output: str) -> None:
    """Run MODULE's metric queries for v1 and v2 now and show what came back.

    Exit 0 when every query gave data, 1 when one found nothing or failed, 2 for bad
    input."""
    from watchdog.daemon.build import build_source, close_plugin
    from watchdog.daemon.config import load_config

    with exit_on_errors(UnknownModule, PluginError):
        loaded = load_config(config_path)
        spec = loaded.rules.for_module(module)
        source = build_source(loaded)
    try:
        with exit_on_errors(ValueError):
            answers = probe(source, spec, SystemClock().now(), metrics or None)
    finally:
        close_plugin(source)
    if as_json or output == "json":
        click.echo(json.dumps({"module": module, "source": loaded.config.source.plugin,
                               "answers": [_json(a) for a in answers]}))
    else:
        click.echo(f"{module} through the {loaded.config.source.plugin} source "
                   f"({loaded.file}):")
        for a in answers:
            click.echo(_line(a))
            if a.query is not None:
                click.echo(f"    {a.query}")
    if any(a.error is not None or a.empty for a in answers):
        sys.exit(1)


def check_queries(loaded: Any, source: object) -> list[str]:
    """``run --check``: a warning per query that finds nothing, for every module, when
    the source answers; one line when it cannot be reached (nothing judged then)."""
    if loaded.config.clock.kind != "system":
        return []  # a replay's source answers for its own times, not now
    now = SystemClock().now()
    warnings: list[str] = []
    for name in loaded.module_names:
        spec = loaded.rules.for_module(name)
        answers = probe(source, spec, now)
        down = [a for a in answers if a.unreachable]
        if down and len(down) == len(answers):
            return [f"warning: the {loaded.config.source.plugin} source could not be reached "
                    f"to try the queries ({down[0].error}); empty results not checked"]
        for a in answers:
            if a.empty:
                shown = f": {a.query}" if a.query else ""
                warnings.append(f"warning: module {name}: {a.metric} {a.version} finds no "
                                f"data now (empty result){shown} — see `rollout-watchdog "
                                f"query {name} --metric {a.metric}`")
    return warnings
