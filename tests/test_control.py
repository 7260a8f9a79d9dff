"""Manual control through the CLI, on a real journal file, with no daemon running; and an
operator's action racing a tick (the operator wins)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from watchdog.cli.main import cli
from watchdog.config.schema import Module
from watchdog.control import Control
from watchdog.engine import Engine
from watchdog.journal.store import Journal
from watchdog.judge.series import SeriesStore
from watchdog.model import Action
from watchdog.rollout.state import Phase

RULES = """\
modules:
  - name: checkout
    include_defaults: true
    plan: {stages: [10, 50, 100], hold: 60s}
  - name: search
    include_defaults: true
"""


@pytest.fixture
def setup(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "rules.yaml").write_text(RULES)
    config = tmp_path / "watchdog.yaml"
    config.write_text(f"db: journal.db\nrules: [rules.yaml]\nsource: {{plugin: file, options: "
                      f"{{path: x}}}}\nactuators: [{{plugin: file, options: {{path: "
                      f"\"{tmp_path}/{{module}}.json\"}}}}]\nmodules: [checkout, search]\n")
    return {"config": str(config), "db": tmp_path / "journal.db", "root": tmp_path}


def run(setup: dict[str, Any], *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", setup["config"]],
                              env={"SUDO_USER": "", "USER": "carol", **(env or {})})


def flags(setup: dict[str, Any], module: str = "checkout") -> tuple[bool, str, float]:
    """What the file actuator wrote: (kill switch, version, traffic)."""
    data = json.loads((setup["root"] / f"{module}.json").read_text())
    mine = data["modules"][module]
    return data["kill_switch"], mine["version"], mine["traffic_percent"]


def rows(db: Path) -> list[Any]:
    journal = Journal(db)
    try:
        return journal.decisions()
    finally:
        journal.close()


def test_actions_record_who_and_why_and_illegal_ones_exit_1(setup: dict[str, Any]) -> None:
    assert run(setup, "pause", "checkout", "--reason", "x").exit_code == 1  # no rollout yet
    done = run(setup, "start", "checkout", "--reason", "release 2.3")
    assert done.exit_code == 0, done.output
    done = run(setup, "pause", "checkout", "--reason", "dashboards look odd",
               env={"SUDO_USER": "alice"})
    assert done.exit_code == 0, done.output
    assert "checkout pause 10% by alice [pending]: dashboards look odd" in done.output
    again = run(setup, "pause", "checkout", "--reason", "twice")
    assert again.exit_code == 1
    assert ("cannot pause module 'checkout': it is paused; pause is allowed only when "
            "awaiting_approval, progressing") in again.output
    assert run(setup, "resume", "checkout").exit_code == 2  # --reason is required
    assert run(setup, "resume", "checkout", "--reason", "  ").exit_code == 1
    assert run(setup, "promote", "checkout", "--reason", "ship it", "--actor", "bob"
               ).exit_code == 0
    assert run(setup, "abort", "checkout", "--reason", "too late").exit_code == 1
    got = [(r.decision.action, r.decision.actor, r.decision.reasons[0])
           for r in rows(setup["db"])]
    assert got == [(Action.ADVANCE, "carol", "release 2.3: stage 1 of 3 at 10%"),
                   (Action.PAUSE, "alice", "dashboards look odd"),
                   (Action.PROMOTE, "bob", "ship it")]


def test_apply_actuates_from_the_cli_and_kill_switch_forces_v1(setup: dict[str, Any]) -> None:
    assert run(setup, "start", "checkout", "--reason", "go", "--apply").exit_code == 0
    assert flags(setup) == (False, "v2", 10)
    done = run(setup, "kill-switch", "on", "--reason", "incident 42", "--apply")
    assert done.exit_code == 0, done.output
    assert flags(setup) == (True, "v1", 0)
    assert run(setup, "resume", "checkout", "--reason", "no").exit_code == 1
    assert run(setup, "start", "search", "--reason", "no").exit_code == 1
    assert run(setup, "kill-switch", "off", "--reason", "resolved", "--apply").exit_code == 0
    assert flags(setup) == (False, "v2", 10)
    actions = [(r.decision.action, r.decision.kill_switch) for r in rows(setup["db"])]
    assert actions == [(Action.ADVANCE, False), (Action.PAUSE, True), (Action.RESUME, False)]
    assert all(r.applied_at is not None for r in rows(setup["db"]))


def test_status_and_history(setup: dict[str, Any]) -> None:
    run(setup, "start", "checkout", "--reason", "go")
    run(setup, "pause", "checkout", "--reason", "lunch")
    status = json.loads(run(setup, "status", "--json").output)
    assert status["kill_switch"] is False
    by = {m["module"]: m for m in status["modules"]}
    assert by["checkout"]["phase"] == "paused" and by["checkout"]["stage"] == 1
    assert by["checkout"]["stages"] == 3 and by["checkout"]["traffic_percent"] == 10
    assert by["checkout"]["last_decision"]["reasons"] == ["lunch"]
    assert by["checkout"]["pending_decisions"] == 2
    assert by["search"]["phase"] == "not started"
    text = run(setup, "status").output
    assert "checkout: paused stage 1/3 10%" in text and "pause 10%" in text
    history = json.loads(run(setup, "history", "--json", "--module", "checkout").output)
    assert [h["action"] for h in history] == ["advance", "pause"]
    assert json.loads(run(setup, "history", "--json", "--since", "1h").output) != []
    assert json.loads(run(setup, "history", "--json", "--until", "2000-01-01").output) == []
    assert run(setup, "history", "--since", "yesterday-ish").exit_code == 2


def test_checkpoints_restore_every_module_that_changed(setup: dict[str, Any]) -> None:
    run(setup, "start", "checkout", "--reason", "go")
    run(setup, "start", "search", "--reason", "go")
    assert run(setup, "checkpoint", "create", "early", "--reason", "before the big step"
               ).exit_code == 0
    assert run(setup, "checkpoint", "create", "early", "--reason", "again").exit_code == 1
    run(setup, "promote", "checkout", "--reason", "fast")
    listed = json.loads(run(setup, "checkpoint", "list", "--json").output)
    assert listed[0]["name"] == "early" and listed[0]["actor"] == "carol"
    assert listed[0]["modules"] == {"checkout": "progressing 10%", "search": "progressing 5%"}
    done = run(setup, "checkpoint", "restore", "early", "--reason", "undo", "--apply")
    assert done.exit_code == 0, done.output
    assert "1 module(s) changed" in done.output  # search did not change
    last = rows(setup["db"])[-1].decision
    assert (last.module, last.action, last.traffic_percent) == ("checkout", Action.RESUME, 10)
    assert "restore checkpoint 'early': promoted at stage 1, 100% -> progressing" in \
        last.reasons[0]
    journal = Journal(setup["db"])
    try:
        cp = journal.checkpoint("checkout")
        assert cp is not None and (cp.phase, cp.traffic_percent) == (Phase.PROGRESSING, 10)
    finally:
        journal.close()
    assert flags(setup) == (False, "v2", 10)
    assert run(setup, "checkpoint", "restore", "nope", "--reason", "x").exit_code == 1


class OperatorDuringFetch:
    """A source during whose fetch an operator pauses the module (another writer)."""

    name = "racing"

    def __init__(self, control: Control, inner: Any) -> None:
        self.control, self.inner, self.armed = control, inner, False

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        if self.armed:
            self.armed = False
            self.control.act("pause", module.name, end, "alice", "hands off")
        store: SeriesStore = self.inner.fetch(module, start, end)
        return store


def test_an_operator_action_during_a_tick_wins(kit: Any, tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    journal, other = Journal(db), Journal(db)  # the operator writes through its own
    scripted = kit.ScriptedSource()
    source = OperatorDuringFetch(Control(other, kit.engine_rules()), scripted)
    engine = Engine(kit.engine_rules(), journal, source)
    try:
        engine.start("svc", 0.0)
        for now in (10.0, 20.0, 30.0, 40.0, 50.0, 60.0):
            scripted.feed(now, 50.0)
        source.armed = True
        result = engine.tick("svc", 60.0)  # healthy for the 60 s hold: it would advance
        assert result.decisions == ()
        actions = [r.decision.action for r in journal.decisions()]
        assert actions == [Action.ADVANCE, Action.PAUSE]  # the advance was dropped
        cp = journal.checkpoint("svc")
        assert cp is not None and cp.phase is Phase.PAUSED and cp.traffic_percent == 10
        # while paused a critical tick still changes nothing: a pause is the operator's
        scripted.feed(70.0, 200.0)
        assert engine.tick("svc", 70.0).decisions == ()
        # a rollback decided while the operator acts is re-derived: the safe direction
        Control(other, kit.engine_rules()).act("resume", "svc", 80.0, "alice", "go on")
        for now in (90.0, 100.0):
            scripted.feed(now, 200.0)
        engine.tick("svc", 90.0)  # the first failure of two
        source.armed = True
        result = engine.tick("svc", 100.0)
        assert [d.action for d in result.decisions] == [Action.ROLLBACK]
        assert [r.decision.action for r in journal.decisions()][-2:] == [Action.PAUSE,
                                                                         Action.ROLLBACK]
        cp = journal.checkpoint("svc")
        assert cp is not None and cp.phase is Phase.ROLLED_BACK
    finally:
        other.close()
        journal.close()
