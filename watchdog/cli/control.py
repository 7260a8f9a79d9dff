"""Manual control: ``start|pause|resume|promote|rollback|abort|step-back``,
``set-stage MODULE PERCENT``, ``approve``,
``kill-switch on|off``, ``checkpoint create|list|restore``.

They work whether or not the daemon runs: the transition is written to the journal named
by the daemon's config (``--config``/``WATCHDOG_CONFIG``, ``--db`` to override) and the
running daemon applies the flags within a quarter of a second; ``--apply`` applies them
from here too. Every action needs ``--reason``; ``--actor`` defaults to $SUDO_USER/$USER.
An action the module's state does not allow exits 1 with the reason; bad input exits 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from watchdog.cli.errors import exit_on_errors
from watchdog.cli.options import output_options
from watchdog.clock import SystemClock
from watchdog.control import Control, apply_pending, default_actor
from watchdog.daemon.config import Loaded, load_config
from watchdog.durations import parse_duration
from watchdog.errors import IllegalTransition, UnknownModule, WatchdogError
from watchdog.journal import base, is_postgres, open_journal
from watchdog.journal.records import JournaledDecision
from watchdog.statusrows import configured_groups

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Ctx:
    loaded: Loaded
    journal: base.Journal
    control: Control
    where: str


def common(f: F) -> F:
    f = click.option("--db", help="Journal file (default: the config's db).")(f)
    f = click.option("--config", "config", envvar="WATCHDOG_CONFIG",
                     type=click.Path(dir_okay=False),
                     help="Daemon config file (WATCHDOG_CONFIG); default: embedded.")(f)
    return f


def acting(f: F) -> F:
    f = click.option("--apply", "apply_now", is_flag=True,
                     help="Also apply the flags from here (not only via the daemon).")(f)
    f = click.option("--actor", default=None, help="Who does this (default $SUDO_USER/$USER).")(f)
    f = click.option("--reason", required=True, help="Why (required; kept in the journal).")(f)
    return common(f)


@contextmanager
def opened(config: str | None, db: str | None, existing: bool = False) -> Iterator[Ctx]:
    """The config and its journal (``--db`` instead of its ``db``); with ``existing``, a
    journal file that does not exist yet is an error, not created (an action on a rollout
    needs one: a mistyped path would otherwise leave a new empty journal behind)."""
    with exit_on_errors(WatchdogError):
        loaded = load_config(config)
        where = db or loaded.db  # a file, or a PostgreSQL URL (with its password)
    if existing and not is_postgres(where) \
            and not Path(where.removeprefix("sqlite:///")).is_file():
        # no rollout at all: exit 1 as for a module without one (the state forbids it)
        click.echo(f"error: no rollout to act on: no journal at {where} yet (start one "
                   f"first, or check --db and the config's db)", err=True)
        sys.exit(1)
    with exit_on_errors(WatchdogError):
        journal = open_journal(where)
    try:
        yield Ctx(loaded, journal, Control(journal, loaded.rules), where)
    except IllegalTransition as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    except (UnknownModule, WatchdogError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    finally:
        journal.close()


def now_of(ctx: Ctx, module: str | None = None) -> float:
    """The time of a manual action: the wall clock, or in a replay (``clock: replay``) the
    simulated time the module (or the furthest module) has reached."""
    clock = ctx.loaded.config.clock
    if clock.kind != "replay":
        return SystemClock().now()
    cps = [c for c in ctx.journal.checkpoints() if module is None or c.module == module]
    times = [c.last_tick_at if c.last_tick_at is not None else c.started_at for c in cps]
    return max(times, default=clock.start)


def when(t: float | None) -> str:
    if t is None:
        return "-"
    if abs(t) < 1e9:  # a replay's simulated seconds
        return f"t={t:g}"
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    s = round(seconds)
    return f"{s // 86400}d{s % 86400 // 3600}h" if s >= 86400 else \
        f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def show(jd: JournaledDecision) -> str:
    d = jd.decision
    state = "applied" if jd.applied_at is not None else (
        f"PENDING ({jd.apply_error})" if jd.apply_error else "pending")
    return (f"#{jd.id} {when(d.at)} {d.module} {d.action.value} {d.traffic_percent:g}% "
            f"by {d.actor} [{state}]: {'; '.join(d.reasons)}")


def _apply(ctx: Ctx, apply_now: bool) -> None:
    if not apply_now:
        return
    from watchdog.daemon.build import build_actuators

    applied, pending = apply_pending(ctx.where, build_actuators(ctx.loaded))
    click.echo(f"applied {applied} decision(s) here; {pending} still pending")
    if pending:
        sys.exit(1)


def _configured(ctx: Ctx, module: str) -> None:
    """A rollout is started only for a module (or a group) the config names, as the HTTP
    API does: a typo would otherwise journal a rollout no daemon ever ticks."""
    names = ctx.loaded.module_names
    if module in names or module in configured_groups(ctx.loaded.rules, names):
        return
    known = ", ".join([*names, *configured_groups(ctx.loaded.rules, names)]) or "none"
    raise UnknownModule(f"no module {module!r} in the config (known: {known})")


def _action(name: str, doc: str) -> click.Command:
    @click.command(name=name, help=doc)
    @click.argument("module")
    @acting
    def command(module: str, reason: str, actor: str | None, apply_now: bool,
                config: str | None, db: str | None) -> None:
        with opened(config, db, existing=name != "start") as ctx:
            if name == "start":
                _configured(ctx, module)
            jd = ctx.control.act(name, module, now_of(ctx, module), actor or default_actor(),
                                 reason)
            click.echo(show(jd))
            _apply(ctx, apply_now)
    return command


start = _action("start", "Start MODULE's rollout at its plan's first stage.")
pause = _action("pause", "Pause MODULE's rollout: its traffic stays, verdicts are ignored.")
resume = _action("resume", "Resume MODULE (same stage; from stage 1 after a rollback).")
promote = _action("promote", "Promote MODULE to 100% now.")
rollback = _action("rollback", "Roll MODULE back to V1 (0%).")
abort = _action("abort", "Abort MODULE's rollout (V1, terminal).")
step_back = _action("step-back", "Step MODULE's rollout back one stage (not to 0%).")
approve = _action("approve", "Approve MODULE's step to its next stage (a stage with "
                             "approval: true); it is taken at the next healthy tick.")


@click.command(name="set-stage")
@click.argument("module")
@click.argument("percent", type=float)
@acting
def set_stage(module: str, percent: float, reason: str, actor: str | None, apply_now: bool,
              config: str | None, db: str | None) -> None:
    """Put MODULE's rollout at the stage of PERCENT (one of its plan's stages)."""
    with opened(config, db, existing=True) as ctx:
        jd = ctx.control.act("set-stage", module, now_of(ctx, module),
                             actor or default_actor(), reason, stage=percent)
        click.echo(show(jd))
        _apply(ctx, apply_now)


@click.command(name="kill-switch")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--group", default=None,
              help="Only this module group (every member's flag off), not every module.")
@acting
def kill_switch(state: str, group: str | None, reason: str, actor: str | None,
                apply_now: bool, config: str | None, db: str | None) -> None:
    """Force V1 everywhere (on), or give modules their traffic back (off)."""
    with opened(config, db) as ctx:
        if group is not None:
            done = ctx.control.set_group_kill_switch(group, state == "on", now_of(ctx, group),
                                                     actor or default_actor(), reason)
        else:
            done = ctx.control.set_kill_switch(state == "on", now_of(ctx),
                                               actor or default_actor(), reason,
                                               ctx.loaded.module_names)
        which = f"group {group} " if group else ""
        click.echo(f"{which}kill switch {state}; {len(done)} decision(s) journaled")
        for jd in done:
            click.echo("  " + show(jd))
        _apply(ctx, apply_now)


def parse_time(text: str | None, now: float) -> float | None:
    """Unix seconds, an ISO 8601 time, or a duration ago (``2h``)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: give unix seconds, an ISO time or a duration "
                                 "ago such as 2h") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@click.group()
def checkpoint() -> None:
    """Named snapshots of every module's rollout state."""


@checkpoint.command(name="create")
@click.argument("name")
@acting
def snapshot_create(name: str, reason: str, actor: str | None, apply_now: bool,
                    config: str | None, db: str | None) -> None:
    """Save the rollout state of every module as NAME."""
    with opened(config, db) as ctx:
        n = ctx.control.snapshot_create(name, SystemClock().now(), actor or default_actor(),
                                        reason)
        click.echo(f"checkpoint {name!r}: {n} module(s)")


@checkpoint.command(name="list")
@common
@output_options
def snapshot_list(config: str | None, db: str | None, as_json: bool) -> None:
    """The saved checkpoints (read-only: works from the journal alone)."""
    from watchdog.cli.readonly import open_read_only, view

    where = view(config, db)
    journal = open_read_only(where)
    try:
        with exit_on_errors(WatchdogError):
            rows = Control(journal, where.rules).snapshots()
    finally:
        journal.close()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for r in rows:
        mods = ", ".join(f"{m} {s}" for m, s in r["modules"].items()) or "no modules"
        click.echo(f"{r['name']}: {when(r['created_at'])} by {r['actor']} "
                   f"({r['reason']}): {mods}")


@checkpoint.command(name="restore")
@click.argument("name")
@acting
def snapshot_restore(name: str, reason: str, actor: str | None, apply_now: bool,
                     config: str | None, db: str | None) -> None:
    """Bring every module back to checkpoint NAME (a decision per module that changes)."""
    with opened(config, db) as ctx:
        done = ctx.control.snapshot_restore(name, now_of(ctx),
                                            actor or default_actor(), reason)
        click.echo(f"restored {name!r}: {len(done)} module(s) changed")
        for jd in done:
            click.echo("  " + show(jd))
        _apply(ctx, apply_now)


COMMANDS = [start, pause, resume, promote, rollback, abort, step_back, set_stage, approve,
            kill_switch, checkpoint]
