"""``python -m watchdog.demo`` (``make demo``): the daemon guarding a staged rollout of two
simulated services, on this machine, with nothing else installed. See docs/demo.md.

1. starts V1 and V2 of ``checkout`` (:mod:`watchdog.demo.service`) on 127.0.0.1:9101 and
   :9102 (other free ports if those are taken); V2 regresses from the 3rd stage;
2. writes ``demo-output/rules.yaml`` (the shipped default rules on a timescale of seconds)
   and ``demo-output/watchdog.yaml`` (the embedded default config with those ports), and
   checks both with ``rollout-watchdog check`` and ``run --check``;
3. captures V1's baseline from its endpoint into the journal;
4. runs ``rollout-watchdog run --config demo-output/watchdog.yaml`` and follows the journal
   while the rollout advances, until the regression is caught and rolled back;
5. prints the flag file before and after, the journal (``rollout-watchdog history``), and a
   summary. Exit 0 when the rollout went as expected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.demo import display
from watchdog.demo.files import MODULE, Timing, config_yaml, rules_yaml
from watchdog.demo.processes import (
    Child,
    Children,
    DemoError,
    cli_command,
    env_for_children,
    http_json,
    port_free,
    read_flags,
    service_argv,
    wait_for_port,
)
from watchdog.demo.service import DEFAULT_FACTOR, REGRESSIONS
from watchdog.journal.store import Journal, JournaledDecision
from watchdog.model import Action

PREFERRED_PORTS = {"v1": 9101, "v2": 9102}
GENERATED = ("watchdog.yaml", "rules.yaml", "journal.db", "journal.db-wal", "journal.db-shm",
             "journal.state", "logs", "ports")

HELP = """\
The daemon guarding a staged rollout of two simulated services, on this machine, with
nothing else installed (make demo runs this; docs/demo.md explains it):

  1. starts V1 and V2 of the service "checkout" on 127.0.0.1:9101 and :9102 (other free
     ports if those are taken); V2 regresses from the 3rd stage
  2. writes demo-output/rules.yaml (the shipped default rules on a timescale of seconds)
     and demo-output/watchdog.yaml, and checks both (rollout-watchdog check, run --check)
  3. captures V1's baseline from its endpoint into the journal
  4. runs rollout-watchdog run --config demo-output/watchdog.yaml and follows the journal
     while the rollout advances, until the regression is caught and rolled back
  5. prints the flag file before and after, the journal (rollout-watchdog history) and a
     summary

Exit status 0 when the rollout went as expected, 1 otherwise."""


@dataclass
class Options:
    out: Path
    fast: bool
    regression: str
    factor: float | None
    regress_stage: int
    timeout: float

    @property
    def timing(self) -> Timing:
        return Timing.fast() if self.fast else Timing()

    @property
    def expect_rollback(self) -> bool:
        return self.regression != "none"


@dataclass
class Run:
    """What the demo saw, for the summary."""

    began: float = field(default_factory=time.monotonic)
    rollout_at: float | None = None  # the journal's time of the first decision
    regressed_at: float | None = None  # wall time V2 switched the regression on
    rollback: JournaledDecision | None = None
    promote: JournaledDecision | None = None
    applied_at: float | None = None  # wall time the flag file showed v1 / 0
    flags_before: str | None = None  # the file's text at the last stage with V2 traffic
    flags_after: dict[str, Any] | None = None
    flags_after_text: str | None = None
    decisions: list[JournaledDecision] = field(default_factory=list)


def parse_args(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="python -m watchdog.demo", description=HELP,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("demo-output"),
                   help="output folder (default ./demo-output; its generated files are "
                        "replaced)")
    p.add_argument("--fast", action="store_true",
                   help="1 s evaluations and 10 s holds (about half the time; for tests)")
    p.add_argument("--regression", choices=REGRESSIONS, default="latency",
                   help="what V2 gets wrong (default latency; none: it should promote)")
    p.add_argument("--factor", type=float,
                   help="size: latency/throughput multiplier, errors/parse probability, "
                        f"memory bytes/h (defaults {DEFAULT_FACTOR})")
    p.add_argument("--regress-stage", type=int, default=3,
                   help="the stage (1-based) from which V2 regresses (default 3)")
    p.add_argument("--timeout", type=float, default=150.0,
                   help="give up after this many seconds of rollout (default 150)")
    p.add_argument("--plan", choices=["group"],
                   help="instead: plan 002's module group replayed (components joining, "
                        "one rolled back alone, the kill switch); see watchdog/demo/group.py")
    a = p.parse_args(argv)
    stages = Timing().stages
    if not 1 <= a.regress_stage <= len(stages):
        p.error(f"--regress-stage must be 1..{len(stages)}")
    return Options(a.out, a.fast, a.regression, a.factor, a.regress_stage, a.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a == "--plan" or a.startswith("--plan=") for a in args):
        from watchdog.demo.group import main as group_main

        return group_main(args)
    opts = parse_args(argv)
    out = display.Output()
    try:
        with Children() as children:
            return _demo(opts, children, out)
    except DemoError as err:
        out.clear()
        out.line(f"\nFAILED: {err}")
        out.line(f"Logs and files: {opts.out}/ (logs/daemon.log, logs/v1.log, logs/v2.log)")
        return 1
    except KeyboardInterrupt:
        out.clear()
        out.line("\ninterrupted: every child process has been stopped")
        return 130


def _prepare(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in GENERATED:
        path = out_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    (out_dir / "logs").mkdir()
    (out_dir / "ports").mkdir()


def _check(argv: list[str], what: str, cwd: Path) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=60,
                          env=env_for_children(), check=False)
    if done.returncode != 0:
        raise DemoError(f"{what} failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return (done.stdout.strip().splitlines() or [""])[-1]


def _services(opts: Options, children: Children, flags: Path
              ) -> tuple[dict[str, Child], dict[str, int]]:
    stages = opts.timing.stages
    regress_at = float(stages[opts.regress_stage - 1])
    procs: dict[str, Child] = {}
    for version in ("v1", "v2"):
        preferred = PREFERRED_PORTS[version]
        port = preferred if port_free(preferred) else 0
        is_v2 = version == "v2"
        argv = service_argv(version, port, opts.out / "ports" / version,
                            regression=opts.regression if is_v2 else "none",
                            factor=opts.factor if is_v2 else None,
                            flags=flags if is_v2 else None,
                            regress_at=regress_at if is_v2 else None)
        procs[version] = children.start(version.upper(), argv, opts.out / "logs" /
                                        f"{version}.log", env=env_for_children())
    ports = {v: wait_for_port(c, opts.out / "ports" / v) for v, c in procs.items()}
    return procs, ports


def _demo(opts: Options, children: Children, out: display.Output) -> int:
    began = time.monotonic()
    t = opts.timing
    _prepare(opts.out)
    out_dir = opts.out.resolve()
    flags = out_dir / "journal.state" / f"{MODULE}.flags.json"
    regress_pct = t.stages[opts.regress_stage - 1]
    factor = DEFAULT_FACTOR[opts.regression] if opts.factor is None else opts.factor
    out.line("rollout-watchdog demo: the daemon guards a staged rollout of "
             f"`{MODULE}` (V2 beside V1)\n")

    out.step(1, "start the simulated services (real processes, Prometheus /metrics)")
    procs, ports = _services(opts, children, flags)
    urls = {v: f"http://127.0.0.1:{p}/metrics" for v, p in ports.items()}
    moved = [v for v, p in ports.items() if p != PREFERRED_PORTS[v]]
    for v in ("v1", "v2"):
        what = "healthy" if v == "v1" or opts.regression == "none" else \
            f"{display.regression_text(opts.regression, factor)} from stage " \
            f"{opts.regress_stage} ({regress_pct}%)"
        out.line(f"  {v.upper()}  {urls[v]:<34} pid {procs[v].pid:<7} {what}")
    if moved:
        out.line(f"  (port {', '.join(str(PREFERRED_PORTS[v]) for v in moved)} was taken: "
                 "the generated config uses the ports above)")

    out.step(2, "write and check the configuration")
    (out_dir / "rules.yaml").write_text(rules_yaml(t), "utf-8")
    (out_dir / "watchdog.yaml").write_text(config_yaml(urls["v1"], urls["v2"], t), "utf-8")
    cli = cli_command()
    config = str(out_dir / "watchdog.yaml")
    out.line(f"  {opts.out / 'rules.yaml'}: " + _check([*cli, "check", "rules.yaml"],
                                                      "rollout-watchdog check", out_dir))
    out.line("  " + _check([*cli, "run", "--config", config, "--check"],
                           "rollout-watchdog run --check", out_dir))
    out.line(f"  plan: {' -> '.join(f'{s}%' for s in t.stages)}, {t.hold:g}s healthy per "
             f"stage, evaluated every {t.interval:g}s; rules: windows {t.window:g}s/"
             f"{t.long_window:g}s, for {t.for_:g}s")

    out.step(3, "capture V1's baseline from its endpoint into the journal")
    from watchdog.config.loader import load_paths
    from watchdog.demo.capture import capture_live
    from watchdog.errors import SourceError

    module = load_paths([out_dir / "rules.yaml"]).for_module(MODULE)
    seconds = 5.0 if opts.fast else 10.0
    journal = Journal(out_dir / "journal.db")
    try:
        saved = capture_live(journal, module, urls["v1"], seconds, step=t.interval / 2,
                             progress=lambda f: out.status(f"  scraping V1 ... {f:4.0%}",
                                                           key="capture"))
    except SourceError as err:
        raise DemoError(str(err)) from err
    out.clear()
    for b in saved:
        out.line(f"  #{b.id} {b.module}/{b.metric:<17} n={b.count:<3} mean={b.mean:<12.6g} "
                 f"p95={b.p95:.6g}")

    out.step(4, f"run the daemon: rollout-watchdog run --config {opts.out / 'watchdog.yaml'}")
    daemon = children.start("daemon", [*cli, "run", "--config", config],
                            out_dir / "logs" / "daemon.log", env=env_for_children(),
                            cwd=out_dir)
    out.line(f"  pid {daemon.pid}, log {opts.out / 'logs' / 'daemon.log'}; following the "
             "journal (decisions as they are journaled, one status line while waiting)")
    run = Run()
    try:
        _follow(opts, run, journal, daemon, procs["v2"], ports["v2"], flags, out)
    finally:
        out.clear()
    code = children.stop(daemon)
    out.line(f"  daemon stopped (SIGTERM, exit status {code})")
    children.stop_all()

    out.step(5, "the flag file (what the file actuator wrote)")
    out.line(f"  {opts.out / 'journal.state' / flags.name}")
    if run.flags_before is not None:
        out.line("  before (the last stage with V2 traffic):")
        out.line(display.indent(run.flags_before, 4))
    out.line("  after:")
    out.line(display.indent(run.flags_after_text or "(no file)", 4))

    out.step(6, f"the journal: rollout-watchdog history --config {opts.out / 'watchdog.yaml'}")
    history = subprocess.run([*cli, "history", "--config", config], capture_output=True,
                             text=True, cwd=out_dir, timeout=60, env=env_for_children(),
                             check=False)
    for row in history.stdout.splitlines():
        out.line("  " + display.shorten(row, 220))
    journal.close()
    return display.summary(out, opts.out, run, t, opts.expect_rollback, regress_pct,
                           time.monotonic() - began)


def _follow(opts: Options, run: Run, journal: Journal, daemon: Child, v2: Child,
            v2_port: int, flags: Path, out: display.Output) -> None:
    """Follow the journal until the rollout ends as expected (or not), or time runs out."""
    deadline = time.monotonic() + opts.timeout
    seen = 0
    last_flags: dict[str, Any] | None = None
    while True:
        if not daemon.alive():
            raise DemoError(f"the daemon exited with status {daemon.popen.returncode}; "
                            f"the end of its log ({daemon.log}):\n{daemon.tail()}")
        if not v2.alive():
            raise DemoError(f"V2 exited; its log ({v2.log}):\n{v2.tail()}")
        current, text = read_flags(flags, MODULE)
        if current is not None and current != last_flags:
            if current.get("traffic_percent") != 0:
                run.flags_before = text
            last_flags = current
        if run.regressed_at is None and opts.expect_rollback:
            try:
                state = http_json(f"http://127.0.0.1:{v2_port}/state")
            except (OSError, ValueError):
                state = {}
            if state.get("regressed"):
                run.regressed_at = float(state["since"])
                out.event(run, run.regressed_at, "V2 regresses now",
                          f"{display.regression_text(opts.regression, state.get('factor'))}"
                          f" (it saw {state.get('traffic_percent_seen'):g}% in its flag "
                          "file)")
        found = journal.decisions(module=MODULE)
        for jd in found[seen:]:
            if run.rollout_at is None:
                run.rollout_at = jd.decision.at
            run.decisions.append(jd)
            out.decision(run, jd)
            if jd.decision.action is Action.ROLLBACK and run.rollback is None:
                run.rollback = jd
            if jd.decision.action is Action.PROMOTE:
                run.promote = jd
        seen = len(found)
        ended = run.rollback is not None or run.promote is not None
        if ended and current is not None and (
                (run.rollback is not None and current.get("traffic_percent") == 0)
                or (run.promote is not None and current.get("traffic_percent") == 100)):
            run.applied_at = time.time()
            run.flags_after, run.flags_after_text = current, text
            return
        if time.monotonic() > deadline:
            raise DemoError(f"no rollback or promotion within {opts.timeout:g}s; the daemon's "
                            f"log ({daemon.log}) ends with:\n{daemon.tail()}")
        text, key = display.status_line(run, journal, MODULE, opts.timing.hold)
        out.status(text, key)
        time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
