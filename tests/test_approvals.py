"""Approvals and checks before a step (issue 20 item 5): the machine (waiting phase,
reminders, approval), the check runner on real commands and a real HTTP server, control
through the CLI, and backtests of a recording with ``--approve``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from watchdog.checks import CheckRunner, run_check
from watchdog.cli.main import cli
from watchdog.config.planparts import StageCheck
from watchdog.config.schema import Plan, Stage
from watchdog.errors import IllegalTransition
from watchdog.model import Action, VerdictKind
from watchdog.rollout import approval, machine, stepback
from watchdog.rollout.promotion import CheckResult
from watchdog.rollout.state import Checkpoint, Phase

ROOT = Path(__file__).parent
SCENARIO = ROOT / "data" / "scenarios" / "aa-clean-1000.jsonl"
REGRESSION = ROOT / "data" / "scenarios" / "reg-errors-3pct-1582.jsonl"
RULES = ROOT / "data" / "rules" / "plans" / "approval_checkout.yaml"
H = VerdictKind.HEALTHY


def plan_with(**stage3: Any) -> Plan:
    return Plan(stages=[Stage(traffic=10), Stage(traffic=50, **stage3), Stage(traffic=100)],
                hold=60.0, approval_reminder=600.0)


def tick(kit: Any, cp: Checkpoint, plan: Plan, now: float, kind: VerdictKind = H,
         **kw: Any) -> tuple[Checkpoint, list[Any]]:
    return machine.on_verdict(cp, kit.verdict(kind, now, "m"), plan, now, **kw)


def test_a_stage_needing_approval_waits_and_reminds_at_the_interval(kit: Any) -> None:
    plan = plan_with(approval=True)
    cp, _ = machine.start("m", plan, 0.0)
    journaled = []
    for now in range(10, 1900, 10):
        cp, ds = tick(kit, cp, plan, float(now))
        journaled += ds
    assert cp.phase is Phase.AWAITING_APPROVAL and cp.traffic_percent == 10.0
    # waiting from t=60: the hold, then a reminder every 600 s, not one per tick
    assert [(d.at, d.action) for d in journaled] == [
        (60.0, Action.HOLD), (660.0, Action.HOLD), (1260.0, Action.HOLD),
        (1860.0, Action.HOLD)]
    assert "waiting for a person's approval to advance to stage 2 of 3 at 50%" in \
        journaled[0].reasons[1]
    assert journaled[1].reasons[1].startswith("reminder 1: ")


def test_approval_lets_the_next_healthy_tick_advance(kit: Any) -> None:
    plan = plan_with(approval=True)
    cp, _ = machine.start("m", plan, 0.0)
    cp, _ = tick(kit, cp, plan, 60.0)
    cp, d = approval.approve(cp, plan, 70.0, "alice", "dashboards look fine")
    assert (d.action, d.actor, d.to_stage, cp.phase) == (Action.APPROVE, "alice", 1,
                                                         Phase.PROGRESSING)
    cp, (adv,) = tick(kit, cp, plan, 80.0)
    assert (adv.action, adv.traffic_percent, cp.approved_stage) == (Action.ADVANCE, 50.0,
                                                                    None)
    with pytest.raises(IllegalTransition, match="needs no approval"):
        approval.approve(cp, plan, 90.0, "alice", "again")


def test_waiting_for_approval_still_rolls_back_on_a_failure(kit: Any) -> None:
    plan = plan_with(approval=True)
    cp, _ = machine.start("m", plan, 0.0)
    cp, _ = tick(kit, cp, plan, 60.0)
    assert cp.phase is Phase.AWAITING_APPROVAL
    cp, (d,) = tick(kit, cp, plan, 70.0, VerdictKind.CRITICAL)
    assert d.action is Action.ROLLBACK and cp.phase is Phase.ROLLED_BACK


def test_an_approval_is_used_by_its_step_only(kit: Any) -> None:
    plan = Plan(stages=[Stage(traffic=10), Stage(traffic=50, approval=True),
                        Stage(traffic=100)], hold=60.0)
    cp, _ = machine.start("m", plan, 0.0)
    cp, _ = approval.approve(cp, plan, 10.0, "alice", "ahead of time")
    cp, _ = tick(kit, cp, plan, 60.0)
    assert cp.traffic_percent == 50.0
    cp, _ = stepback.step_back(cp, plan, 70.0, "bob", "p95")
    cp, _ = tick(kit, cp, plan, 130.0)
    assert cp.phase is Phase.AWAITING_APPROVAL  # asked again after the step back


def test_a_check_must_pass_before_the_step(kit: Any) -> None:
    spec = StageCheck(command=["true"])
    plan = plan_with(check=spec)
    cp, _ = machine.start("m", plan, 0.0)
    cp, (d,) = tick(kit, cp, plan, 60.0)  # no result yet: running
    assert d.action is Action.HOLD and "(running)" in d.reasons[1]
    cp, (d,) = tick(kit, cp, plan, 70.0, check=CheckResult("failed", "exited 3"))
    assert d.action is Action.HOLD and d.evidence[-1]["state"] == "failed"
    cp, (d,) = tick(kit, cp, plan, 80.0, check=CheckResult("passed", "ok"))
    assert d.action is Action.ADVANCE


def test_commands_pass_fail_and_time_out() -> None:
    ok = run_check("m", 1, 50.0, StageCheck(
        command=["sh", "-c", 'echo "$WATCHDOG_MODULE $WATCHDOG_STAGE $WATCHDOG_TRAFFIC_PERCENT"']))
    assert (ok.state, ok.summary.endswith("m 2 50")) == ("passed", True)
    bad = run_check("m", 1, 50.0, StageCheck(command=["sh", "-c", "echo nope >&2; exit 3"]))
    assert bad.state == "failed" and "exited 3: nope" in bad.summary
    slow = run_check("m", 1, 50.0, StageCheck(command=["sleep", "5"], timeout=0.2))
    assert slow.state == "failed" and "timed out after 0.2s" in slow.summary
    missing = run_check("m", 1, 50.0, StageCheck(command=["/no/such/tool"]))
    assert missing.state == "failed" and "cannot run" in missing.summary


@pytest.fixture
def hook() -> Iterator[tuple[str, list[Any], list[int]]]:
    seen: list[Any] = []
    status = [204]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status[0])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/smoke", seen, status
    server.shutdown()
    server.server_close()


def test_a_webhook_check_on_a_real_server(hook: tuple[str, list[Any], list[int]]) -> None:
    url, seen, status = hook
    assert run_check("m", 2, 75.0, StageCheck(webhook=url)).state == "passed"
    assert seen == [{"module": "m", "stage": 3, "traffic_percent": 75.0}]
    status[0] = 500
    result = run_check("m", 2, 75.0, StageCheck(webhook=url))
    assert result.state == "failed" and "answered 500" in result.summary


def test_the_runner_runs_once_per_attempt_and_retries_a_failure(tmp_path: Path) -> None:
    log = tmp_path / "runs"
    spec = StageCheck(command=["sh", "-c", f"echo x >> {log}; exit 1"], retry=100.0)
    runner = CheckRunner(background=False)
    for now in (10.0, 20.0, 50.0):
        assert runner.result("m", 1, 50.0, 0.0, spec, now).state == "failed"
    assert log.read_text().count("x") == 1
    runner.result("m", 1, 50.0, 0.0, spec, 120.0)  # retry after 100 s
    runner.result("m", 1, 50.0, 500.0, spec, 130.0)  # a new attempt at the stage
    assert log.read_text().count("x") == 3


def test_a_background_check_does_not_block_the_tick(tmp_path: Path) -> None:
    flag = tmp_path / "go"
    spec = StageCheck(command=["sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.02; done"])
    runner = CheckRunner()
    assert runner.result("m", 1, 50.0, 0.0, spec, 10.0).state == "running"
    flag.write_text("")
    run = runner._runs[("m", 1, 0.0)]
    assert run.thread is not None
    run.thread.join(timeout=30)
    assert runner.result("m", 1, 50.0, 0.0, spec, 20.0).state == "passed"


# -- backtests on a recording --------------------------------------------------------


def backtest(*args: str) -> Any:
    return CliRunner().invoke(cli, ["backtest", *args])


def test_a_backtest_with_an_approval_stage_needs_approve() -> None:
    done = backtest(str(SCENARIO), "--rules", str(RULES), "--json")
    assert done.exit_code == 2
    assert f"{RULES}:5: module 'checkout': the plan's stage(s) 50% need a person's " \
           "approval" in done.stderr
    assert "replay with --approve" in done.stderr and "Traceback" not in done.output


def test_a_backtest_with_approve_takes_the_approved_step_and_runs_the_check() -> None:
    done = backtest(str(SCENARIO), "--rules", str(RULES), "--json", "--approve")
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    assert out["outcome"] == "promoted"
    advances = [(d["t"], d["traffic_percent"]) for d in out["decisions"]
                if d["action"] == "advance"]
    assert advances == [(0, 5), (600, 25), (1200, 50), (1800, 75), (2400, 100)]


def test_status_says_a_waiting_rollout_needs_an_approval(kit: Any) -> None:
    # ``status --watch``'s next step names the approve command (not "advance ... in 0s if
    # it stays healthy": it never advances on its own), and ``status`` exits 4 for it
    from watchdog.cli.status import EXIT_AWAITING, EXIT_OK, EXIT_PAUSED, exit_code
    from watchdog.cli.watch import next_step

    plan = plan_with(approval=True)
    cp, _ = machine.start("m", plan, 0.0)
    for now in range(10, 200, 10):
        cp, _ = tick(kit, cp, plan, float(now))
    assert cp.phase is Phase.AWAITING_APPROVAL
    step = next_step(cp, plan, 200.0)
    assert step == "advance to stage 2 at 50% once approved: rollout-watchdog approve m " \
                   "--reason ...", step
    assert next_step(cp, None, 200.0).startswith("awaiting_approval (the plan is unknown")
    assert exit_code([{"phase": "awaiting_approval"}, {"phase": "progressing"}]) \
        == EXIT_AWAITING == 4
    assert exit_code([{"phase": "awaiting_approval"}, {"phase": "paused"}]) == EXIT_PAUSED
    assert exit_code([{"phase": "progressing"}, {"phase": "promoted"}]) == EXIT_OK


def test_a_restored_wait_for_approval_starts_its_hold_at_the_restore(tmp_path: Path) -> None:
    # a checkpoint restored into awaiting_approval is judged (as progressing is): its hold
    # starts again at the restore, not at its first healthy evaluation after it
    from watchdog.config.loader import load_paths
    from watchdog.control import Control
    from watchdog.journal.store import Journal

    rules = load_paths([RULES])
    plan = rules.for_module("checkout").plan
    cp, _ = machine.start("checkout", plan, 0.0)
    nxt = next(i for i, s in enumerate(plan.stages) if s.approval)
    cp = Checkpoint.from_dict({**cp.to_dict(), "stage": nxt - 1})
    cp, _, _ = approval.waiting(cp, plan, nxt, 50.0)
    assert cp.phase is Phase.AWAITING_APPROVAL
    journal = Journal(tmp_path / "j.db")
    try:
        journal.save_snapshot("waiting", 60.0, "carol", "before", {
            "kill_switch": False, "checkpoints": [cp.to_dict()]})
        (done,) = Control(journal, rules).snapshot_restore("waiting", 100.0, "carol", "undo")
        assert done.decision.action is Action.RESUME
        restored = journal.checkpoint("checkout")
        assert restored is not None and restored.phase is Phase.AWAITING_APPROVAL
        assert restored.healthy_since == 100.0 and restored.healthy_banked == 0.0
    finally:
        journal.close()
