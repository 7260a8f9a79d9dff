"""``rollout-watchdog journal migrate``: a SQLite journal with history copied to a real
PostgreSQL (and back), ids and order kept; a non-empty target refused without --force."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from click.testing import CliRunner

from watchdog.api import audit
from watchdog.cli.main import cli
from watchdog.journal import open_journal
from watchdog.journal.base import Journal
from watchdog.journal.migrate import TABLES
from watchdog.judge.alerts import AlertPhase, AlertState
from watchdog.model import Action, Decision
from watchdog.notifiers import Notification
from watchdog.notifiers import outbox as ob
from watchdog.rollout.state import Checkpoint, Phase

from .test_journal_contract import baseline


def history(path: Path) -> None:
    j = open_journal(path)
    try:
        firing = AlertState(AlertPhase.FIRING, active_at=5.0, fired_at=6.0, last_breach_at=6.0)
        for n, module in enumerate(["checkout", "search", "checkout"]):
            cp = Checkpoint(module, Phase.PROGRESSING, n % 2, 5.0, 0.0, 1.0,
                            alerts={"slow": firing} if n == 2 else {})
            ids = j.record([Decision(module, 10.0 * n, Action.ADVANCE, 5.0, 0, 1,
                                     (f"healthy {n}",), ({"rule": "slow", "v": 1.5},))],
                           cp, 10.0 * n + 1, {"slow": "p95"}, {})
            j.mark_applied(ids[0], 10.0 * n + 2)
        j.record([Decision("search", 40.0, Action.ROLLBACK, 0.0, 1, None, ("p95 high",),
                           kill_switch=True, actor="alice")], None, 41.0)
        pinned = j.save_baseline(baseline(100.0))
        j.save_baseline(baseline(200.0, metric="error_rate"))
        assert pinned.id is not None
        j.pin_baseline(pinned.id)
        j.set_setting("kill_switch", True)
        j.set_setting("verdict:checkout", {"kind": "healthy", "firing": []})
        j.save_snapshot("friday", 50.0, "bob", "before the freeze", {"checkpoints": []})
        j.acquire_lease("checkout", "host-a", 10.0, 60.0)
        n = Notification("k1", "search", "decision", "rollback", "critical", "rolled back", 1,
                         0.0, at=40.0)
        with j.transaction():
            ob.insert(j.sql, "slack", n, 41.0, 3600.0, lambda _: "#ops")
    finally:
        j.close()
    for k in range(3):  # refused requests, aggregated into one row
        assert audit.write(str(path), audit.Attempt(70.0 + k, "10.0.0.9", "POST",
                                                     "/api/modules/checkout/pause", "pause",
                                                     "checkout", 401, "wrong_token"))


def contents(j: Journal) -> dict[str, Any]:
    return {
        "decisions": [d.to_dict() for d in j.decisions()],
        "checkpoints": j.checkpoints(), "alerts": j.alerts(), "baselines": j.baselines(),
        "settings": [j.setting("kill_switch"), j.setting("verdict:checkout")],
        "snapshots": j.snapshots(), "audit": j.api_audit(), "leases": j.leases(),
        "outbox": [{k: v for k, v in r.items()} for r in ob.rows(j.sql, "slack")],
    }


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["journal", "migrate", *args])


def test_a_sqlite_journal_is_copied_to_postgresql_and_back(tmp_path: Path, pg: Any) -> None:
    source = tmp_path / "journal.db"
    history(source)
    url = pg.new_schema()
    done = run("--from", str(source), "--to", url)
    assert done.exit_code == 0, done.output
    assert "4 decisions" in done.output and "1 api_audit" in done.output
    with_sqlite, with_pg = open_journal(source), open_journal(url)
    try:
        expected = contents(with_sqlite)
        assert expected["audit"][0]["count"] == 3 and len(expected["decisions"]) == 4
        assert contents(with_pg) == expected
        # the copy goes on from there: new ids follow the copied ones
        new = with_pg.record([Decision("checkout", 90.0, Action.HOLD, 5.0, 1, 1, ("x",))],
                             None, 90.0)
        assert new == [expected["decisions"][-1]["id"] + 1]
    finally:
        with_sqlite.close()
        with_pg.close()
    back = tmp_path / "back.db"
    assert run("--from", url, "--to", f"sqlite:///{back}").exit_code == 0
    restored = open_journal(back)
    try:
        got = contents(restored)
        assert got["decisions"][:4] == expected["decisions"]
        assert {k: v for k, v in got.items() if k != "decisions"} == {
            k: v for k, v in expected.items() if k != "decisions"}
    finally:
        restored.close()


def test_a_target_that_is_not_empty_is_refused_unless_forced(tmp_path: Path, pg: Any
                                                             ) -> None:
    source = tmp_path / "journal.db"
    history(source)
    url = pg.new_schema()
    assert run("--from", str(source), "--to", url).exit_code == 0
    again = run("--from", str(source), "--to", url)
    assert again.exit_code == 2
    assert "not empty" in again.output and "--force" in again.output
    assert "Traceback" not in again.output
    forced = run("--from", str(source), "--to", url, "--force")
    assert forced.exit_code == 0, forced.output
    copy = open_journal(url)
    try:
        assert len(copy.decisions()) == 4  # replaced, not appended
    finally:
        copy.close()
    other = tmp_path / "other.db"  # forcing over a SQLite target lifts its guards too
    assert run("--from", url, "--to", str(other)).exit_code == 0
    assert run("--from", str(source), "--to", str(other), "--force").exit_code == 0


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    same = run("--from", str(tmp_path / "a.db"), "--to", str(tmp_path / "a.db"))
    assert same.exit_code == 2 and "same journal" in same.output
    absent = run("--from", str(tmp_path / "a.db"), "--to", str(tmp_path / "b.db"))
    assert absent.exit_code == 2 and "no journal at" in absent.output
    assert not (tmp_path / "a.db").exists()
    (tmp_path / "a.db").touch()
    scheme = run("--from", str(tmp_path / "a.db"), "--to", "mysql://x/y")
    assert scheme.exit_code == 2 and "unknown journal URL scheme" in scheme.output


def test_every_table_is_copied() -> None:
    from watchdog.journal.pg_schema import _V1

    created = {s.split("(")[0].split()[-1] for s in _V1 if s.startswith("CREATE TABLE")}
    assert created == {t for t, _ in TABLES}
