"""Step back instead of all the way back (issue 20 item 2): the plan's failure policy,
and the manual ``step-back`` / ``set-stage`` actions through the CLI on a real journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from watchdog.cli.main import cli
from watchdog.config.loader import load_texts
from watchdog.config.schema import FailurePolicy, Plan
from watchdog.errors import ConfigError, IllegalTransition
from watchdog.journal.store import Journal
from watchdog.model import Action, VerdictKind
from watchdog.rollout import machine, stepback
from watchdog.rollout.state import Checkpoint, Phase


def plan(kit: Any, **policy: Any) -> Plan:
    base = kit.plan(stages=(10, 25, 50, 100), hold=60.0, consecutive=1, cumulative=3)
    return base.model_copy(update={"on_failure": FailurePolicy(**policy)})


def reach(kit: Any, p: Plan, stage: int) -> tuple[Checkpoint, float]:
    cp, _ = machine.start("m", p, 0.0)
    now = 0.0
    while cp.stage < stage:
        now += 30.0
        cp, _ = machine.on_verdict(cp, kit.verdict(VerdictKind.HEALTHY, now, "m"), p, now)
    return cp, now


def critical(kit: Any, cp: Checkpoint, p: Plan, now: float) -> tuple[Checkpoint, Any]:
    return machine.on_verdict(cp, kit.verdict(VerdictKind.CRITICAL, now, "m"), p, now)


def test_a_failure_steps_back_to_the_previous_stage(kit: Any) -> None:
    p = plan(kit, action="step_back", max_step_backs=2)
    cp, now = reach(kit, p, 2)  # 50 %
    cp, (d,) = critical(kit, cp, p, now + 10)
    assert (d.action, d.traffic_percent, d.from_stage, d.to_stage) == (
        Action.STEP_BACK, 25.0, 2, 1)
    assert cp.phase is Phase.PROGRESSING and cp.step_backs == 1
    assert (cp.consecutive_failures, cp.cumulative_failures, dict(cp.alerts)) == (0, 0, {})
    assert "step back 1 of 2" in d.reasons[-1]


def test_after_max_step_backs_a_failure_rolls_back(kit: Any) -> None:
    p = plan(kit, action="step_back", max_step_backs=1)
    cp, now = reach(kit, p, 2)
    cp, (d,) = critical(kit, cp, p, now + 10)
    assert d.action is Action.STEP_BACK
    cp, (d,) = critical(kit, cp, p, now + 20)
    assert d.action is Action.ROLLBACK and cp.phase is Phase.ROLLED_BACK


def test_the_first_stage_has_nowhere_to_step_back_to(kit: Any) -> None:
    p = plan(kit, action="step_back", max_step_backs=5)
    cp, now = reach(kit, p, 0)
    cp, (d,) = critical(kit, cp, p, now + 10)
    assert d.action is Action.ROLLBACK


def test_a_named_stage_is_the_target(kit: Any) -> None:
    p = plan(kit, action="step_back", to=10, max_step_backs=3)
    cp, now = reach(kit, p, 3)  # 100 %
    cp, (d,) = critical(kit, cp, p, now + 10)
    assert (d.action, d.traffic_percent) == (Action.STEP_BACK, 10.0)


def test_without_a_policy_a_failure_rolls_back_as_before(kit: Any) -> None:
    p = plan(kit)
    cp, now = reach(kit, p, 2)
    _, (d,) = critical(kit, cp, p, now + 10)
    assert d.action is Action.ROLLBACK


def test_a_resume_after_a_full_rollback_has_its_step_backs_again(kit: Any) -> None:
    p = plan(kit, action="step_back", max_step_backs=1)
    cp, now = reach(kit, p, 2)
    cp, _ = critical(kit, cp, p, now + 10)
    cp, _ = critical(kit, cp, p, now + 20)
    cp, _ = machine.resume(cp, p, now + 30, "carol", "fixed")
    assert cp.step_backs == 0


def test_an_old_checkpoint_reads_with_no_step_backs(kit: Any) -> None:
    cp, _ = machine.start("m", plan(kit), 0.0)
    data = cp.to_dict()
    del data["step_backs"]
    assert Checkpoint.from_dict(data).step_backs == 0


@pytest.mark.parametrize(("policy", "message"), [
    ("{action: step_back, to: 30}", "on_failure.to: 30 is not a stage of the plan"),
    ("{action: rollback, to: 10}", "to applies only to action: step_back"),
    ("{action: back}", "Input should be 'rollback' or 'step_back'"),
    ("{action: step_back, max_step_backs: 0}", "greater than or equal to 1"),
])
def test_a_bad_policy_is_a_load_error_at_its_line(policy: str, message: str) -> None:
    text = ("modules:\n  - name: m\n    plan:\n      stages: [10, 50, 100]\n"
            f"      on_failure: {policy}\n")
    with pytest.raises(ConfigError) as err:
        load_texts([("p.yaml", text)])
    assert message in str(err.value)
    assert "p.yaml:5:" in str(err.value)


def test_manual_set_stage_and_step_back_are_pure_and_checked(kit: Any) -> None:
    p = plan(kit)
    cp, now = reach(kit, p, 2)
    down, d = stepback.step_back(cp, p, now, "carol", "slow")
    assert (d.action, d.traffic_percent, d.actor, down.stage) == (Action.STEP_BACK, 25.0,
                                                                  "carol", 1)
    up, d = stepback.set_stage(down, p, 100.0, now, "carol", "sure")
    assert (d.action, up.traffic_percent) == (Action.ADVANCE, 100.0)
    with pytest.raises(IllegalTransition, match="not a stage"):
        stepback.set_stage(cp, p, 30.0, now, "carol", "x")
    with pytest.raises(IllegalTransition, match="at 50% already"):
        stepback.set_stage(cp, p, 50.0, now, "carol", "x")
    first, _ = machine.start("m", p, 0.0)
    with pytest.raises(IllegalTransition, match="first stage"):
        stepback.step_back(first, p, 0.0, "carol", "x")
    gone, _ = machine.abort(cp, now, "carol", "x")
    with pytest.raises(IllegalTransition, match="aborted"):
        stepback.set_stage(gone, p, 10.0, now, "carol", "x")
    rolled, _ = machine.rollback(cp, now, "carol", "x")
    back, d = stepback.set_stage(rolled, p, 25.0, now, "carol", "retry at 25")
    assert (back.phase, back.traffic_percent, d.action) == (Phase.PROGRESSING, 25.0,
                                                            Action.ADVANCE)


RULES = """\
modules:
  - name: checkout
    include_defaults: true
    plan: {stages: [10, 25, 50, 100], hold: 60s}
"""


def test_cli_step_back_and_set_stage_are_journaled_with_actor_and_reason(
        tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    config = tmp_path / "watchdog.yaml"
    config.write_text(f"db: journal.db\nrules: [rules.yaml]\nsource: {{plugin: file, options: "
                      f"{{path: x}}}}\nactuators: [{{plugin: file, options: {{path: "
                      f"\"{tmp_path}/flags.json\"}}}}]\nmodules: [checkout]\n")

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, [*args, "--config", str(config)],
                                  env={"SUDO_USER": "", "USER": "carol"})

    assert run("start", "checkout", "--reason", "go").exit_code == 0
    done = run("set-stage", "checkout", "50", "--reason", "skip ahead")
    assert done.exit_code == 0, done.output
    assert "advance 50% by carol" in done.output
    done = run("step-back", "checkout", "--reason", "p95 creeping", "--actor", "dave")
    assert done.exit_code == 0, done.output
    assert "step_back 25% by dave" in done.output
    bad = run("set-stage", "checkout", "30", "--reason", "x")
    assert bad.exit_code == 1 and "30% is not a stage" in bad.output
    journal = Journal(tmp_path / "journal.db")
    try:
        last = journal.decisions()[-1].decision
        cp = journal.checkpoint("checkout")
    finally:
        journal.close()
    assert (last.action, last.actor, last.reasons) == (
        Action.STEP_BACK, "dave", ("p95 creeping: to stage 2 of 4 at 25%",))
    assert cp is not None and cp.traffic_percent == 25.0
