"""Module groups (issue 20 item 1): the shipped plan-002 group, the group state machine,
control (start, group kill switch) on a real journal, a backtest of a group recording
(the scenario-format extension of docs/scenario-format-groups.md) and the demo."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from watchdog.cli.main import cli
from watchdog.config.loader import load_paths, load_texts
from watchdog.control import Control
from watchdog.demo import group as demo
from watchdog.errors import IllegalTransition
from watchdog.groups import machine as gm
from watchdog.journal.store import Journal
from watchdog.model import Action, Decision, Verdict, VerdictKind
from watchdog.rollout.state import Phase

ROOT = Path(__file__).resolve().parents[1]

RULES = """
modules:
  - name: c.a
    metrics: {m: {direction: higher_is_worse}}
    rules: [{name: r, kind: absolute, metric: m, above: 1}]
    plan: &p {stages: [10, 50, 100], hold: 60s, failure_limits: {consecutive: 1, cumulative: 3}}
  - {name: c.b, metrics: {m: {direction: higher_is_worse}}, plan: *p,
     rules: [{name: r, kind: absolute, metric: m, above: 1}]}
  - {name: c.c, metrics: {m: {direction: higher_is_worse}}, plan: *p,
     rules: [{name: r, kind: absolute, metric: m, above: 1}]}
groups:
  - name: comp
    plan: *p
    rollback: member
    members:
      - {module: c.a}
      - {module: c.b, joins_at: 50}
      - {module: c.c, joins_at: 100, rollback: group}
"""


def group() -> Any:
    return load_texts([("g.yaml", RULES)]).groups["comp"]


def v(kind: VerdictKind, name: str, now: float) -> Verdict:
    firing = ("r",) if kind is VerdictKind.CRITICAL else ()
    return Verdict(name, now, kind, (), firing, (f"r: {kind.value}",) if firing else ())


def run(g: Any, cp: Any, now: float, bad: str | None = None) -> tuple[Any, list[Any]]:
    verdicts = {m: v(VerdictKind.CRITICAL if m == bad else VerdictKind.HEALTHY, m, now)
                for m in g.names if cp.members.get(m) == gm.ENABLED}
    return gm.on_verdicts(cp, g, verdicts, now)


def test_the_shipped_protocol_rules_are_plan_002s_group() -> None:
    rules = load_paths([ROOT / "rules"])
    g = rules.groups["dwcp"]
    assert [(m.module, g.joins_at(m)) for m in g.members] == [
        ("dwcp.transport", 10), ("dwcp.compression", 10), ("dwcp.prediction", 50),
        ("dwcp.state_sync", 50), ("dwcp.consensus", 100), ("dwcp.placement", 100)]
    assert g.rollback == "member" and g.policy("dwcp.consensus") == "group"
    assert [s.traffic for s in g.plan.stages] == [10, 25, 50, 100]


def test_members_join_at_their_stage_with_the_groups_percentage() -> None:
    g = group()
    cp, ds = gm.start(g, 0.0)
    assert [(d.module, d.action, d.traffic_percent) for d in ds] == [
        ("comp", Action.ADVANCE, 10.0), ("c.a", Action.ADVANCE, 10.0)]
    cp, ds = run(g, cp, 60.0)
    assert [(d.module, d.traffic_percent) for d in ds] == [
        ("comp", 50.0), ("c.a", 50.0), ("c.b", 50.0)]
    assert "c.b joins group comp at 50%" in ds[2].reasons[0]
    assert gm.flag(cp, "c.c") == 0.0 and cp.members["c.c"] == gm.WAITING


def test_a_member_policy_member_is_rolled_back_alone() -> None:
    g = group()
    cp, _ = gm.start(g, 0.0)
    cp, _ = run(g, cp, 60.0)
    cp, ds = run(g, cp, 70.0, bad="c.b")
    assert cp.phase is Phase.PROGRESSING and cp.traffic_percent == 50.0
    assert cp.members["c.b"] == gm.ROLLED_BACK
    assert [(d.module, d.action, d.traffic_percent) for d in ds if d.module == "c.b"] == [
        ("c.b", Action.ROLLBACK, 0.0)]
    assert any("rolled back alone" in d.reasons[0] for d in ds if d.module == "comp")
    cp, ds = run(g, cp, 140.0)  # the group goes on without it
    assert cp.traffic_percent == 100.0 and gm.flag(cp, "c.b") == 0.0
    assert gm.flag(cp, "c.c") == 100.0 and gm.flag(cp, "c.a") == 100.0


def test_a_group_policy_member_rolls_back_the_whole_group() -> None:
    g = group()
    cp, _ = gm.start(g, 0.0)
    cp, _ = run(g, cp, 60.0)
    cp, _ = run(g, cp, 120.0)
    assert cp.members["c.c"] == gm.ENABLED
    cp, ds = run(g, cp, 130.0, bad="c.c")
    assert cp.phase is Phase.ROLLED_BACK
    assert sorted((d.module, d.traffic_percent) for d in ds if d.action is Action.ROLLBACK) == [
        ("c.a", 0.0), ("c.b", 0.0), ("c.c", 0.0), ("comp", 0.0)]


def test_an_old_checkpoint_reads_with_no_members() -> None:
    cp, _ = gm.start(group(), 0.0)
    data = cp.to_dict()
    del data["members"], data["member_failures"]
    assert dict(type(cp).from_dict(data).members) == {}


def test_control_starts_a_group_and_its_kill_switch_turns_every_flag_off(
        tmp_path: Path) -> None:
    rules = load_texts([("g.yaml", RULES)])
    journal = Journal(tmp_path / "j.db")
    try:
        control = Control(journal, rules)
        control.act("start", "comp", 0.0, "carol", "week 7")
        done = control.set_group_kill_switch("comp", True, 10.0, "carol", "ForceV1Mode")
        assert [(jd.decision.module, jd.decision.traffic_percent, jd.decision.kill_switch)
                for jd in done] == [("comp", 0.0, True), ("c.a", 0.0, True)]
        cp = journal.checkpoint("comp")
        assert cp is not None and cp.paused_by_kill_switch
        done = control.set_group_kill_switch("comp", False, 20.0, "carol", "fixed")
        assert [(jd.decision.module, jd.decision.traffic_percent) for jd in done] == [
            ("comp", 10.0), ("c.a", 10.0)]
        status = {s["module"]: s for s in __import__("watchdog.statusrows").statusrows.status(
            journal, rules, ["comp"], 30.0)}
        assert status["comp"]["members"] == {"c.a": "enabled", "c.b": "waiting",
                                             "c.c": "waiting"}
    finally:
        journal.close()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("group")
    rules_text = demo.RULES.read_text("utf-8").replace("window: 1d, before: 100",
                                                       "window: 20m, before: 100")
    rules = out / "protocol_v3.yaml"
    rules.write_text(rules_text)
    return demo.write_recording(demo.demo_rules(), out / "group-dwcp.jsonl"), rules


def test_backtest_replays_a_group_recording(recording: tuple[Path, Path]) -> None:
    path, rules = recording
    done = CliRunner().invoke(cli, ["backtest", str(path), "--rules", str(rules),
                                    "--approve", "--json"])
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    joins = [(d["t"], d["module"]) for d in out["decisions"]
             if d["action"] == "advance" and "joins" in d["reasons"][0]]
    assert [m for _, m in joins] == ["dwcp.transport", "dwcp.compression",
                                     "dwcp.prediction", "dwcp.state_sync",
                                     "dwcp.consensus", "dwcp.placement"]
    alone = [d for d in out["decisions"] if d["module"] == "dwcp.compression"
             and d["action"] == "rollback"]
    assert len(alone) == 1 and demo.FAULT_AT < alone[0]["t"] < demo.FAULT_AT + 600
    assert out["outcome"] in ("in_progress", "promoted")  # the group was not rolled back
    refused = CliRunner().invoke(cli, ["backtest", str(path), "--rules", str(rules)])
    assert refused.exit_code == 2 and "--approve" in refused.stderr


def test_the_demo_shows_joining_a_member_rolled_back_alone_and_the_kill_switch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--plan", "group", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dwcp.consensus joins group dwcp at 100%" in out
    assert "dwcp.compression rolled back alone" in out
    assert "[kill switch]" in out
    assert "dwcp.compression     off  rolled_back" in out
    assert "dwcp.transport       off  enabled (kill switch)" in out


def _flags(done: list[Any]) -> list[tuple[str, float, bool]]:
    return [(jd.decision.module, jd.decision.traffic_percent, jd.decision.kill_switch)
            for jd in done]


def test_kill_switches_turn_members_off_whatever_the_groups_phase(tmp_path: Path) -> None:
    # a paused or promoted group's members keep their flags on: the group kill switch and
    # the global one must turn each of them off (and back), not only the group's own hold
    rules = load_texts([("g.yaml", RULES)])
    journal = Journal(tmp_path / "j.db")
    try:
        control = Control(journal, rules)
        control.act("start", "comp", 0.0, "carol", "week 7")
        control.act("pause", "comp", 5.0, "carol", "look first")
        done = control.set_group_kill_switch("comp", True, 10.0, "carol", "ForceV1Mode")
        assert _flags(done) == [("comp", 0.0, True), ("c.a", 0.0, True)]
        with pytest.raises(IllegalTransition, match="its kill switch is on"):
            control.act("resume", "comp", 12.0, "carol", "go on")
        done = control.set_group_kill_switch("comp", False, 20.0, "carol", "fixed")
        assert _flags(done) == [("comp", 10.0, False), ("c.a", 10.0, False)]
        control.act("resume", "comp", 25.0, "carol", "go on")
        control.act("promote", "comp", 30.0, "carol", "all in")
        done = control.set_kill_switch(True, 40.0, "carol", "incident")
        assert sorted(_flags(done)) == [("c.a", 0.0, True), ("c.b", 0.0, True),
                                        ("c.c", 0.0, True), ("comp", 0.0, True)]
        control.set_group_kill_switch("comp", True, 45.0, "carol", "and this one")
        assert control.set_kill_switch(False, 50.0, "carol", "over") == []  # group's holds
        assert control.set_group_kill_switch("comp", False, 55.0, "carol", "over") != []
    finally:
        journal.close()


def test_a_member_is_steered_through_its_group(tmp_path: Path) -> None:
    # once the group rolls out, a member's own rollout would set its flag behind the
    # group's back (before, its members may run alone: a partly configured group)
    rules = load_texts([("g.yaml", RULES)])
    journal = Journal(tmp_path / "j.db")
    try:
        control = Control(journal, rules)
        control.act("start", "comp", 0.0, "carol", "week 7")
        for action in ("start", "pause", "rollback"):
            with pytest.raises(IllegalTransition, match="member of group 'comp'"):
                control.act(action, "c.a", 1.0, "carol", "just this one")
        assert journal.checkpoint("c.a") is None
    finally:
        journal.close()


def test_restoring_a_group_sets_its_members_flags(tmp_path: Path) -> None:
    rules = load_texts([("g.yaml", RULES)])
    journal = Journal(tmp_path / "j.db")
    try:
        control = Control(journal, rules)
        control.act("start", "comp", 0.0, "carol", "week 7")
        control.act("rollback", "comp", 5.0, "carol", "bad")
        control.snapshot_create("after", 6.0, "carol", "rolled back")
        control.act("resume", "comp", 10.0, "carol", "again")
        done = control.snapshot_restore("after", 20.0, "carol", "back to rolled back")
        assert [(m, t) for m, t, _ in _flags(done)] == [("comp", 0.0), ("c.a", 0.0)]
        assert done[1].decision.action is Action.ROLLBACK
    finally:
        journal.close()


def test_a_members_flag_off_is_journaled_as_what_switched_it_off(tmp_path: Path) -> None:
    # only a failure is a rollback (critical in Slack, counted as one): a kill switch
    # pauses, a step back below the member's joins_at steps it back, an abort aborts
    rules = load_texts([("g.yaml", RULES)])
    journal = Journal(tmp_path / "j.db")
    try:
        control = Control(journal, rules)
        control.act("start", "comp", 0.0, "carol", "week 7")
        control.act("set-stage", "comp", 1.0, "carol", "to 50", stage=50.0)

        def members(done: list[Any]) -> list[tuple[str, Action]]:
            return [(jd.decision.module, jd.decision.action) for jd in done
                    if jd.decision.module != "comp"]

        done = control.set_group_kill_switch("comp", True, 10.0, "carol", "ForceV1Mode")
        assert members(done) == [("c.a", Action.PAUSE), ("c.b", Action.PAUSE)]
        control.set_group_kill_switch("comp", False, 20.0, "carol", "fixed")
        step = Control(journal, rules).act("step-back", "comp", 30.0, "carol", "slower")
        back = [d for d in journal.decisions() if d.id > step.id]
        assert [(d.decision.module, d.decision.action) for d in back] == [
            ("c.a", Action.STEP_BACK), ("c.b", Action.STEP_BACK)]
        assert back[1].decision.traffic_percent == 0.0  # c.b joins at 50: waits again
        control.act("abort", "comp", 40.0, "carol", "stop")
        aborted = [d for d in journal.decisions() if d.decision.at == 40.0]
        assert [(d.decision.module, d.decision.action) for d in aborted] == [
            ("comp", Action.ABORT), ("c.a", Action.ABORT)]
    finally:
        journal.close()


def test_status_shows_members_through_their_group(tmp_path: Path) -> None:
    # members have no rollout of their own: they read "not started 0%" while their flags
    # were on; a member switched off alone counts as rolled back for the exit status
    from watchdog.cli.status import EXIT_FAILED, exit_code
    from watchdog.statusrows import status

    rules = load_texts([("g.yaml", RULES)])
    journal = Journal(tmp_path / "j.db")
    try:
        control = Control(journal, rules)
        control.act("start", "comp", 0.0, "carol", "week 7")
        control.act("set-stage", "comp", 1.0, "carol", "to 50", stage=50.0)
        rows = {r["module"]: r for r in status(journal, rules, ["c.a", "c.b", "c.c"], 2.0)}
        assert rows["comp"]["members"] == {"c.a": "enabled", "c.b": "enabled",
                                           "c.c": "waiting"}
        a, c = rows["c.a"], rows["c.c"]
        assert (a["phase"], a["group"], a["member"], a["traffic_percent"], a["stage"],
                a["stages"]) == ("progressing", "comp", "enabled", 50.0, 2, 3)
        assert (c["member"], c["traffic_percent"]) == ("waiting", 0.0)
        cp = journal.checkpoint("comp")
        assert cp is not None
        alone = type(cp).from_dict({**cp.to_dict(),  # c.b switched off alone
                                    "members": {**cp.members, "c.b": gm.ROLLED_BACK}})
        journal.save_checkpoint(alone, 3.0)
        rows = status(journal, rules, ["c.a", "c.b", "c.c"], 4.0)
        assert {r["module"]: r["phase"] for r in rows}["c.b"] == "rolled_back"
        assert exit_code(rows) == EXIT_FAILED
    finally:
        journal.close()


def test_a_groups_rollback_after_an_operators_change_takes_its_members_along(
        tmp_path: Path) -> None:
    # an operator wrote the group's checkpoint during its tick: the tick's own rollback of
    # the group is still made, with a decision per member (they once kept their flags);
    # a member's rollback alone is decided again next tick (it once rolled back the group)
    from watchdog.engine import Engine

    rules = load_texts([("g.yaml", RULES)])
    journal = Journal(tmp_path / "j.db")
    try:
        Control(journal, rules).act("start", "comp", 0.0, "carol", "week 7")
        Control(journal, rules).act("set-stage", "comp", 1.0, "carol", "to 50", stage=50.0)
        current = journal.checkpoint("comp")
        assert current is not None
        engine = Engine(rules, journal, None)  # type: ignore[arg-type]
        alone = [Decision("c.a", 5.0, Action.ROLLBACK, 0.0, 1, 1, ("r: critical",))]
        made, cp, _ = engine._after_change("comp", alone, current, current, 5.0)
        assert made == [] and cp is current
        both = [Decision("comp", 5.0, Action.ROLLBACK, 0.0, 1, 0, ("r: critical",)), *alone]
        made, cp, ids = engine._after_change("comp", both, current, current, 6.0)
        assert cp.phase is Phase.ROLLED_BACK and len(ids) == len(made)
        assert [(d.module, d.traffic_percent) for d in made] == [
            ("comp", 0.0), ("c.a", 0.0), ("c.b", 0.0)]
    finally:
        journal.close()


def test_the_new_guard_adopts_a_groups_claimed_rollback_with_its_members(
        tmp_path: Path) -> None:
    # a guard that lost the group's lease during a tick applied its rollback and claimed
    # it; the new guard journals it with a decision per member (it once wrote the
    # group's alone, leaving the journal's record of the members' flags on)
    from watchdog.daemon import claims
    from watchdog.engine import Engine
    from watchdog.errors import FencingError

    rules = load_texts([("g.yaml", RULES)])
    journal = Journal(tmp_path / "j.db")
    try:
        Control(journal, rules).act("start", "comp", 0.0, "carol", "week 7")
        rollback = Decision("comp", 5.0, Action.ROLLBACK, 0.0, 0, 0, ("r: critical",))
        claims.hand_over(journal, rollback, FencingError("moved", "comp", "b", 2), "a")
        done = claims.adopt(Engine(rules, journal, None), "comp", 6.0)  # type: ignore[arg-type]
        assert [(d.module, d.action, d.traffic_percent) for d in done] == [
            ("comp", Action.ROLLBACK, 0.0), ("c.a", Action.ROLLBACK, 0.0)]
        assert claims.claim(journal, "comp") is None
        cp = journal.checkpoint("comp")
        assert cp is not None and cp.phase is Phase.ROLLED_BACK
    finally:
        journal.close()


def test_a_command_taking_one_module_says_a_group_is_one() -> None:
    # backtest --plot, query and record of a group said "no rules declare module"
    from watchdog.errors import UnknownModule

    rules = load_texts([("g.yaml", RULES)])
    with pytest.raises(UnknownModule, match=r"'comp' is a module group, not a module: this "
                                            r"takes one of its members \(c.a, c.b, c.c\)"):
        rules.for_module("comp")


def test_a_members_failed_read_is_reported_as_the_groups_source_error(
        tmp_path: Path) -> None:
    # a member's fetch failing was only logged: the daemon's source state for the group
    # read "ok" and no source error was counted (a module's fetch reports it)
    from watchdog.engine import Engine
    from watchdog.errors import SourceError, SourceUnavailable
    from watchdog.groups.engine import GroupEngine

    class Down:
        name = "down"

        def fetch(self, module: Any, start: float, end: float) -> Any:
            raise SourceUnavailable(f"{module.name}: connection refused")

    rules = load_texts([("g.yaml", RULES)])
    journal = Journal(tmp_path / "j.db")
    try:
        Control(journal, rules).act("start", "comp", 0.0, "carol", "week 7")
        seen: list[SourceError] = []
        engine = Engine(rules, journal, Down(), on_source_error=seen.append)  # type: ignore[arg-type]
        GroupEngine(engine, rules.groups["comp"]).tick(10.0)
        assert [str(e) for e in seen] == ["c.a: connection refused"]
    finally:
        journal.close()


def test_a_groups_verdict_is_the_worst_of_its_members() -> None:
    from watchdog.daemon.groupjobs import combined

    found = combined("comp", 5.0, {"c.a": v(VerdictKind.HEALTHY, "c.a", 5.0),
                                   "c.b": v(VerdictKind.CRITICAL, "c.b", 5.0)})
    assert (found.module, found.kind, found.firing) == ("comp", VerdictKind.CRITICAL,
                                                        ("c.b/r",))
    assert found.reasons == ("c.b: r: critical",)
    assert combined("comp", 6.0, {"c.a": v(VerdictKind.HEALTHY, "c.a", 6.0)}).kind \
        is VerdictKind.HEALTHY
