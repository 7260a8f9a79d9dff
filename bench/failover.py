#!/usr/bin/env python3
"""Failover: two and three daemon instances on one PostgreSQL, the guard killed mid-rollout.

    .venv/bin/python bench/failover.py [--kills 50] [--stops 10] [--pace 0.5] [--seed 1]
    .venv/bin/python bench/failover.py --quick      # 4 kills, 2 stops

Real parts: a PostgreSQL server started here (Debian's binaries, as tests/journal does),
``rollout-watchdog run`` processes (replay clock: one simulated 10-s step every ``pace``
real seconds, which is the tick interval here; lease time to live 1.5 paces), the
``command`` actuator of tests/daemon writing a flags file and an actuation log. Each run
replays a recorded scenario (a clean one, which promotes, or one with a regression, which
rolls back) with a 3-stage plan; the instances start one after the other, the guard is
SIGKILLed (``--kills`` runs, half with two instances, half with three) or SIGSTOPped
for 4 intervals then continued (``--stops`` runs) after a random number (1-4) of its
decisions. Per run:

* takeover: from the signal to the new guard's first tick (its log line ``first tick under
  lease epoch``), in intervals; target <= 2;
* lost: decisions (not holds) never applied, or a rollout that did not finish; target 0;
* twice: a stage advanced to twice, or two rollbacks, in the journal; target 0 (a decision
  applied again by the new guard under the same decision id is idempotent and counted
  apart, as ``re-applied``);
* stale writes (SIGSTOP runs): decisions the paused guard journaled after it was
  continued (target 0) and its fenced writes the journal refused; it must log the loss;
* final flags: the flags file holds the journal's last decision.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name("rollout-watchdog")
SCENARIOS = ROOT / "tests" / "data" / "scenarios"
RUNS = [("aa-clean-1000.jsonl", "promoted"), ("reg-errors-3pct-1582.jsonl", "rolled_back")]


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


PG = _load(ROOT / "tests" / "journal" / "conftest.py", "bench_pg")  # PgServer
DK = _load(ROOT / "tests" / "daemon" / "conftest.py", "bench_daemon")  # ACT_SH, READ_SH


@dataclass
class Run:
    kind: str  # kill | stop
    instances: int
    scenario: str
    after: int  # decisions journaled before the signal
    takeover: float | None = None  # seconds, signal -> first tick of the new guard
    outcome: str = ""
    lost: int = 0
    twice: int = 0
    reapplied: int = 0
    stale_journaled: int = 0
    stale_refused: int = 0
    stale_logged_loss: bool = True
    flags_ok: bool = False
    notes: list[str] = field(default_factory=list)


def log_time(line: str) -> float:
    """The time of a log line (the daemon logs local time)."""
    naive = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")  # noqa: DTZ007
    return naive.timestamp()


class Instance:
    def __init__(self, root: Path, name: str) -> None:
        self.name, self.log_path = name, root / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(EXE), "run", "--config", str(root / "watchdog.yaml")], cwd=root,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            env={**os.environ, "WATCHDOG_INSTANCE": name})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError(f"{self.name}: no {text!r}:\n{self.log()[-2000:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def prepare(root: Path, url: str, scenario: str, pace: float) -> None:
    root.mkdir(parents=True)
    (root / "act.sh").write_text(DK.ACT_SH)
    (root / "read.sh").write_text(DK.READ_SH)
    setup = DK.Setup(root, SCENARIOS / scenario)
    setup.write_rules(plan="[20, 50, 100]", hold="20s")
    setup.write_config(pace=f"{int(pace * 1000)}ms",
                       extra=f"lease: {{ttl: {int(1.5 * pace * 1000)}ms}}\n")
    text = setup.config.read_text().replace("end: 3600", "end: 600")
    setup.config.write_text(text)
    setup.use_journal(url)


def journal_state(url: str) -> tuple[list[Any], Any, list[Any]]:
    from watchdog.journal import open_journal

    j = open_journal(url)
    try:
        return j.decisions(), j.checkpoint("checkout"), j.leases()
    finally:
        j.close()


def guard_of(url: str) -> tuple[str, int] | None:
    leases = [lease for lease in journal_state(url)[2] if lease.module == "checkout"]
    return (leases[0].holder, leases[0].epoch) if leases and leases[0].holder else None


def first_tick_after(inst: Instance, epoch: int) -> float | None:
    for line in inst.log().splitlines():
        if f"first tick under lease epoch {epoch}" in line:
            return log_time(line)
    return None


def one(server: Any, base: Path, k: int, kind: str, n: int, pace: float,
        rng: random.Random) -> Run:
    scenario, expected = RUNS[k % len(RUNS)]
    url = server.new_schema()
    root = base / f"run{k:03d}"
    prepare(root, url, scenario, pace)
    # the regression rolls back after 2 or 3 decisions: kill before the end
    run = Run(kind, n, scenario, rng.randint(1, 4 if expected == "promoted" else 2))
    insts = [Instance(root, "i0")]
    try:
        insts[0].wait_for("module checkout: guarded by this instance (i0)")
        for i in range(1, n):
            insts.append(Instance(root, f"i{i}"))
            insts[-1].wait_for("standby for module checkout")
        end = time.monotonic() + 60
        while len(journal_state(url)[0]) < run.after:
            if time.monotonic() > end:
                raise RuntimeError("the rollout does not start")
            time.sleep(pace / 10)
        found = guard_of(url)
        assert found is not None
        holder, epoch = found
        leader = next(i for i in insts if i.name == holder)
        t0 = time.time()
        leader.proc.send_signal(signal.SIGKILL if kind == "kill" else signal.SIGSTOP)
        others = [i for i in insts if i is not leader]
        end = time.monotonic() + 30
        first = None
        while first is None and time.monotonic() < end:
            first = min((t for i in others if (t := first_tick_after(i, epoch + 1))
                         is not None), default=None)
            time.sleep(0.01)
        run.takeover = None if first is None else first - t0
        resumed_at = None
        if kind == "stop":
            time.sleep(max(0.0, t0 + 4 * pace - time.time()))
            resumed_at = time.time()
            leader.proc.send_signal(signal.SIGCONT)
        end = time.monotonic() + 90
        while time.monotonic() < end:
            cp = journal_state(url)[1]
            if cp is not None and cp.phase.value in ("promoted", "rolled_back"):
                break
            time.sleep(pace / 2)
        time.sleep(3 * pace)  # the outbox applies the last decision
        decisions, cp, _ = journal_state(url)
        run.outcome = "in_progress" if cp is None else cp.phase.value
        if run.outcome != expected:
            run.notes.append(f"outcome {run.outcome}, expected {expected}")
        acts = [d for d in decisions if d.decision.action.value != "hold"]
        run.lost = sum(1 for d in acts if d.applied_at is None) + int(
            run.outcome not in ("promoted", "rolled_back"))
        keys = [(d.decision.action.value, d.decision.to_stage) for d in acts
                if d.decision.action.value in ("advance", "rollback", "promote")]
        run.twice = len(keys) - len(set(keys))
        setup = DK.Setup(root, SCENARIOS / scenario)
        ids = [a[0] for a in setup.actuations()]
        run.reapplied = len(ids) - len(set(ids))
        flags = setup.flags() or {}
        last = acts[-1] if acts else None
        run.flags_ok = last is not None and flags.get("decision_id") == str(last.id)
        if resumed_at is not None:
            lines = [ln for ln in leader.log().splitlines()
                     if ln[:4].isdigit() and log_time(ln) >= resumed_at - 0.01]
            run.stale_journaled = sum(f"under lease epoch {epoch}" in ln and "journaled" in ln
                                      for ln in lines)
            run.stale_refused = sum("write refused" in ln for ln in lines)
            run.stale_logged_loss = any("lost its lease" in ln for ln in lines)
    finally:
        for inst in insts:
            inst.stop()
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--stops", type=int, default=10)
    ap.add_argument("--pace", type=float, default=0.5, help="tick interval, seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="4 kills and 2 stops")
    args = ap.parse_args()
    if args.quick:
        args.kills, args.stops = 4, 2
    rng = random.Random(args.seed)
    server = PG.PgServer()
    import tempfile

    started = time.monotonic()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="failover-") as tmp:
        try:
            plan = [("kill", 2 + k % 2) for k in range(args.kills)] + \
                   [("stop", 2 + k % 2) for k in range(args.stops)]
            for k, (kind, n) in enumerate(plan):
                run = one(server, Path(tmp), k, kind, n, args.pace, rng)
                runs.append(run)
                took = "none" if run.takeover is None else f"{run.takeover / args.pace:.2f}"
                print(f"run {k + 1:3d}/{len(plan)} {kind:4s} x{n} after {run.after} "
                      f"decision(s): takeover {took} intervals, {run.outcome}, lost "
                      f"{run.lost}, twice {run.twice}, re-applied {run.reapplied}, flags "
                      f"{'ok' if run.flags_ok else 'WRONG'}"
                      + (f", stale journaled {run.stale_journaled} refused "
                         f"{run.stale_refused} loss logged {run.stale_logged_loss}"
                         if kind == "stop" else "")
                      + (f" ({'; '.join(run.notes)})" if run.notes else ""), flush=True)
        finally:
            server.stop()
    report(runs, args.pace, time.monotonic() - started)
    return 0


def report(runs: list[Run], pace: float, wall: float) -> None:
    print(f"\nfailover: {len(runs)} runs in {wall:.0f} s, interval {pace:g} s, lease ttl "
          f"{1.5 * pace:g} s")
    for kind in ("kill", "stop"):
        for n in (2, 3):
            sel = [r for r in runs if r.kind == kind and r.instances == n]
            if not sel:
                continue
            took = sorted(r.takeover / pace for r in sel if r.takeover is not None)
            missing = sum(r.takeover is None for r in sel)
            line = (f"  SIG{kind.upper():4s} {n} instances, {len(sel):2d} runs: takeover "
                    f"median {statistics.median(took):.2f}, max {max(took):.2f} intervals"
                    if took else f"  SIG{kind.upper()} {n} instances: no takeover")
            print(line + f" (target <= 2; over: {sum(t > 2 for t in took)}, none: {missing});"
                  f" lost {sum(r.lost for r in sel)}, twice {sum(r.twice for r in sel)}, "
                  f"re-applied {sum(r.reapplied for r in sel)}, flags = last decision "
                  f"{sum(r.flags_ok for r in sel)}/{len(sel)}")
    stops = [r for r in runs if r.kind == "stop"]
    if stops:
        print(f"  stale guards: journaled after continue {sum(r.stale_journaled for r in stops)}"
              f" (target 0), fenced writes refused {sum(r.stale_refused for r in stops)}, "
              f"loss logged {sum(r.stale_logged_loss for r in stops)}/{len(stops)}")


if __name__ == "__main__":
    sys.exit(main())
