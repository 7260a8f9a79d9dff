"""What the demo prints: steps, decisions as they are journaled, one status line refreshed in
place on a terminal (without one, e.g. in CI, a status line only when it changes or every
10 s), and the summary."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from watchdog.demo.files import Timing
from watchdog.journal.store import Journal, JournaledDecision
from watchdog.model import Action

if TYPE_CHECKING:
    from watchdog.demo.run import Run

QUIET_REPEAT = 10.0


class Output:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._status = ""
        self._key = ""
        self._printed_at = 0.0

    def line(self, text: str = "") -> None:
        self.clear()
        print(text, file=self.stream, flush=True)

    def step(self, n: int, text: str) -> None:
        self.line(f"\n[{n}/6] {text}")

    def status(self, text: str, key: str | None = None) -> None:
        """A status line: refreshed in place on a terminal, else printed when it changes."""
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + text[:width] + "\x1b[K")
            self.stream.flush()
            self._status = text
            return
        key = text if key is None else key
        now = time.monotonic()
        if key != self._key or now - self._printed_at >= QUIET_REPEAT:
            self._key, self._printed_at = key, now
            print(text, file=self.stream, flush=True)

    def clear(self) -> None:
        if self.tty and self._status:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._status = ""

    def event(self, run: Run, at: float, what: str, detail: str) -> None:
        self.line(f"  {_offset(run, at)}  {what:<17} {detail}")

    def decision(self, run: Run, jd: JournaledDecision) -> None:
        d = jd.decision
        reasons = list(d.reasons)
        self.line(f"  {_offset(run, d.at)}  #{jd.id:<3} {d.action.value:<10} "
                  f"{d.traffic_percent:>5g}%  {shorten(reasons[0] if reasons else '', 150)}")
        for reason in reasons[1:4]:
            self.line(f"  {'':>8}  {'':<4} {'':<10} {'':>6}  {shorten(reason, 150)}")


def _offset(run: Run, at: float) -> str:
    zero = run.rollout_at if run.rollout_at is not None else at
    return f"{at - zero:+7.1f}s"


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def regression_text(kind: str, factor: Any) -> str:
    f = float(factor) if isinstance(factor, int | float) else 0.0
    return {"latency": f"latency x{f:g}", "errors": f"error rate {f:.0%}",
            "parse": f"parse rate {f:.0%}", "throughput": f"throughput x{f:g}",
            "memory": f"memory +{f / 1e6:g} MB/h", "none": "no regression"}.get(kind, kind)


def indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + row for row in text.rstrip("\n").splitlines())


def status_line(run: Run, journal: Journal, module: str, hold: float) -> tuple[str, str]:
    """(the line, what must change for a non-terminal to print it again)."""
    cp = journal.checkpoint(module)
    elapsed = time.monotonic() - run.began
    if cp is None:
        return f"  [{elapsed:5.1f}s] waiting for the daemon's first tick ...", "start"
    verdict = journal.setting(f"verdict:{module}") or {}
    kind = verdict.get("kind", "-")
    firing = verdict.get("firing") or []
    now = cp.last_tick_at if cp.last_tick_at is not None else cp.stage_started_at
    healthy = cp.healthy_banked + (now - cp.healthy_since if cp.healthy_since is not None
                                   else 0.0)
    text = (f"  [{elapsed:5.1f}s] {cp.phase.value} stage {cp.stage + 1} at "
            f"{cp.traffic_percent:g}% | healthy {healthy:4.1f}/{hold:g}s | verdict "
            f"{kind}" + (f" ({', '.join(firing)})" if firing else ""))
    return text, f"{cp.phase.value}/{cp.stage}/{kind}/{','.join(firing)}"


def summary(out: Output, out_dir: Path, run: Run, t: Timing, expect_rollback: bool,
            regress_pct: int, wall: float) -> int:
    rb = run.rollback
    ok = (rb is not None and run.flags_after is not None
          and run.flags_after.get("version") == "v1"
          and run.flags_after.get("traffic_percent") == 0) if expect_rollback else (
        run.promote is not None and rb is None)
    out.line("\n" + "=" * 78)
    if rb is not None:
        caught = (f"caught {rb.decision.at - run.regressed_at:.1f}s after V2 began to regress "
                  f"at {regress_pct}%" if run.regressed_at is not None else "")
        applied = (f"; flag file at v1 / 0 {run.applied_at - run.regressed_at:.1f}s after"
                   if run.applied_at is not None and run.regressed_at is not None else "")
        out.line(f"outcome: ROLLED BACK ({caught}{applied})")
        out.line(f"  why: {shorten(rb.decision.reasons[0], 200) if rb.decision.reasons else '-'}")
    elif run.promote is not None:
        out.line("outcome: PROMOTED (V2 at 100%)")
    advances = sum(1 for jd in run.decisions if jd.decision.action is Action.ADVANCE)
    out.line(f"  {advances} advance(s), {len(run.decisions)} decision(s) journaled; demo took "
             f"{wall:.0f}s (interval {t.interval:g}s, hold {t.hold:g}s per stage)")
    out.line(f"  expected: {'a rollback' if expect_rollback else 'a promotion'} -> "
             f"{'OK' if ok else 'NOT MET'}")
    out.line(f"\nfiles ({out_dir}/):")
    out.line("  journal.db                      the journal (decisions with evidence, "
             "checkpoints, baselines)")
    out.line("  journal.state/checkout.flags.json  the flags the file actuator wrote")
    out.line("  logs/daemon.log, logs/v1.log, logs/v2.log   the processes' logs")
    out.line("  watchdog.yaml, rules.yaml       the generated config and accelerated rules")
    out.line("\nwhere to look next:")
    cfg = out_dir / "watchdog.yaml"
    out.line(f"  .venv/bin/rollout-watchdog history --config {cfg} --json   every decision "
             "with its evidence")
    out.line(f"  .venv/bin/rollout-watchdog status --config {cfg}")
    out.line("  .venv/bin/rollout-watchdog backtest tests/data/scenarios/"
             "reg-latency-x1.4-1388.jsonl --plot /tmp/backtest.png")
    out.line("  README.md: 'Quick start', 'How a rule is evaluated', 'Plans and the rollout "
             "state machine', 'The journal'; docs/demo.md")
    return 0 if ok else 1
