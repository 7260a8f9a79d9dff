"""``rollout-watchdog status [MODULE...] [--watch]`` and ``history``: read-only, from the
journal alone (see :mod:`watchdog.cli.readonly`).

``status`` exits by phase, so a script can wait on it: 0 when every module shown is
progressing, promoted or not started; 1 when one is rolled back or aborted; 3 when one is
paused (by an operator or the kill switch) and none failed; 4 when one waits for a
person's approval to go on (``awaiting_approval``) and none failed or is paused; 2 for bad
input or no journal. ``--watch`` redraws a detailed view (stage, time in stage, each rule's observed
value against its limit, the next step) every ``--interval`` until Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import click

from watchdog.cli.control import age, parse_time, show, when
from watchdog.cli.options import output_options
from watchdog.cli.readonly import View, open_read_only, view
from watchdog.clock import SystemClock
from watchdog.durations import parse_duration
from watchdog.errors import UnknownModule, WatchdogError
from watchdog.journal.store import SqliteJournal
from watchdog.sourcestate import source_note
from watchdog.statusrows import status

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PAUSED, EXIT_AWAITING = 0, 1, 2, 3, 4
MIN_INTERVAL = 0.1  # seconds between status --watch redraws, at least
FAILED = ("rolled_back", "aborted")


def exit_code(rows: Sequence[dict[str, Any]]) -> int:
    phases = {r["phase"] for r in rows}
    if phases & set(FAILED):
        return EXIT_FAILED
    if "paused" in phases:
        return EXIT_PAUSED
    return EXIT_AWAITING if "awaiting_approval" in phases else EXIT_OK


def now_of(where: View, journal: SqliteJournal) -> float:
    """The wall clock; for a replay's journal (simulated seconds), the furthest tick."""
    cps = journal.checkpoints()
    times = [c.last_tick_at if c.last_tick_at is not None else c.started_at for c in cps]
    if where.clock.kind == "replay" or (times and max(times) < 1e9):
        return max(times, default=where.clock.start)
    return SystemClock().now()


def rows_of(where: View, journal: SqliteJournal, modules: Sequence[str]) -> list[dict[str, Any]]:
    found = status(journal, where.rules, where.modules, now_of(where, journal))
    if modules:
        known = {r["module"] for r in found}
        missing = [m for m in modules if m not in known]
        if missing:
            raise UnknownModule(f"no module {', '.join(map(repr, missing))} in the config or "
                                f"the journal (known: {', '.join(sorted(known)) or 'none'})")
        found = [r for r in found if r["module"] in modules]
    return found


@click.command(name="status")
@click.argument("modules", nargs=-1)
@click.option("--config", envvar="WATCHDOG_CONFIG", type=click.Path(dir_okay=False),
              help="Daemon config file (WATCHDOG_CONFIG): its journal and modules.")
@click.option("--db", help="Journal file (default: the config's db).")
@output_options
@click.option("-w", "--watch", is_flag=True,
              help="Redraw a detailed view (rules, time in stage, next step) until Ctrl-C.")
@click.option("--interval", default="2s", show_default=True,
              help="With --watch: time between redraws.")
def status_cmd(modules: tuple[str, ...], config: str | None, db: str | None,
               as_json: bool, watch: bool, interval: str) -> None:
    """Per module: phase, stage, traffic, last verdict, last decision and why, baselines.

    Exit status: 0 every module progressing, promoted or not started; 1 one rolled back
    or aborted; 3 one paused; 4 one awaiting approval; 2 bad input or no journal."""
    try:
        pause = parse_duration(interval)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--interval") from None
    if watch and pause < MIN_INTERVAL:  # 0 redrew (and read the journal) in a busy loop
        raise click.BadParameter(f"at least {MIN_INTERVAL * 1000:g}ms between redraws, got "
                                 f"{interval!r}", param_hint="--interval")
    where = view(config, db)
    journal = open_read_only(where)
    try:
        if not watch:
            rows = _rows_or_exit(where, journal, modules)
            _print(journal, rows, as_json)
            sys.exit(exit_code(rows))
        code = EXIT_OK
        try:
            while True:
                rows = _rows_or_exit(where, journal, modules)
                code = exit_code(rows)
                if as_json:
                    click.echo(json.dumps(_watch_json(journal, rows)))
                else:
                    from watchdog.cli.watch import render

                    if sys.stdout.isatty():
                        click.echo("\033[H\033[2J", nl=False)
                    click.echo(render(journal, where, rows, now_of(where, journal)))
                sys.stdout.flush()
                time.sleep(pause)
        except KeyboardInterrupt:
            sys.exit(code)
    finally:
        journal.close()


def _rows_or_exit(where: View, journal: SqliteJournal, modules: Sequence[str]
                  ) -> list[dict[str, Any]]:
    try:
        return rows_of(where, journal, modules)
    except WatchdogError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_USAGE)


def _watch_json(journal: SqliteJournal, rows: list[dict[str, Any]]) -> dict[str, Any]:
    from watchdog.api.live import module_live

    return {"kill_switch": bool(journal.setting("kill_switch", False)),
            "modules": [{**r, "rules": [x.model_dump() for x in
                                        module_live(journal, r["module"], None).rules]}
                        for r in rows]}


def _print(journal: SqliteJournal, rows: list[dict[str, Any]], as_json: bool) -> None:
    kill = bool(journal.setting("kill_switch", False))
    if as_json:
        click.echo(json.dumps({"kill_switch": kill, "modules": rows}))
        return
    click.echo(f"kill switch: {'ON (V1 everywhere)' if kill else 'off'}")
    if not rows:
        click.echo("no modules: none configured and none in the journal")
    for r in rows:
        stage = f"stage {r['stage']}/{r['stages'] or '?'}" if r["stage"] else "-"
        v = r["last_verdict"]
        verdict = "none" if v is None else f"{v['kind']} since {when(v['since'])}" + (
            f" ({', '.join(v['firing'])})" if v["firing"] else "")
        member = f" (member of group {r['group']}: {r['member']})" if r.get("group") else ""
        click.echo(f"{r['module']}: {r['phase']}{member} {stage} {r['traffic_percent']:g}% | "
                   f"verdict {verdict} | baselines {r['baselines']}, age "
                   f"{age(r['baseline_age_s'])} | pending {r['pending_decisions']}")
        if r.get("members"):
            click.echo("  members: " + ", ".join(f"{m} {s}" for m, s in r["members"].items()))
        guard = r.get("guard")  # who guards it: watchdog.daemon.leases
        if guard is not None:
            click.echo(f"  guarded by {guard['instance'] or 'nobody (released)'} (lease epoch "
                       f"{guard['epoch']}{'' if guard['live'] else ', expired'})")
        note = source_note(r.get("source"))  # the source down or a query finding nothing
        if note is not None:
            click.echo(f"  {note}")
        last = r["last_decision"]
        if last is not None:
            click.echo(f"  last decision #{last['id']} {last['action']} "
                       f"{last['traffic_percent']:g}% {when(last['at'])} by "
                       f"{last['actor']}: {'; '.join(last['reasons'])}")


@click.command()
@click.option("--config", envvar="WATCHDOG_CONFIG", type=click.Path(dir_okay=False),
              help="Daemon config file (WATCHDOG_CONFIG): its journal.")
@click.option("--db", help="Journal file (default: the config's db).")
@click.option("--module", help="Only this module.")
@click.option("--since", help="From (unix seconds, ISO time, or a duration ago: 2h).")
@click.option("--until", help="Until (same forms).")
@click.option("--limit", type=click.IntRange(1, 10**9), help="Only the last N.")
@output_options
def history(config: str | None, db: str | None, module: str | None, since: str | None,
            until: str | None, limit: int | None, as_json: bool) -> None:
    """The journaled decisions, oldest first."""
    now = SystemClock().now()
    start_at, end_at = parse_time(since, now), parse_time(until, now)
    journal = open_read_only(view(config, db))
    try:
        found = journal.decisions(module=module, since=start_at, until=end_at, limit=limit)
    except WatchdogError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(EXIT_USAGE)
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps([jd.to_dict() for jd in found]))
        return
    for jd in found:
        click.echo(show(jd))
