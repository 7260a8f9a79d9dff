"""Alert notifications of group members (issue 20 item 1): a real ``rollout-watchdog run``
process (replay clock, file source on a generated group recording, the log notifier)
ticks the group ``comp`` as one job; a member's ``notify`` rule going firing and then
resolved is notified as that member's alert, naming the group. Read from the
notification journal (the outbox rows in the SQLite journal) and the process log."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

RULES = """
modules:
  - name: c.a
    interval: 10s
    metrics: {err: {direction: higher_is_worse}, queue: {direction: higher_is_worse}}
    rules: &r
      - {name: errors, kind: absolute, metric: err, above: 0.01, window: 30s,
         min_samples: 2, severity: critical, action: rollback}
      - {name: queue_high, kind: absolute, metric: queue, above: 100, window: 20s,
         min_samples: 2, severity: warning, action: notify,
         annotations: {summary: queue above 100}}
    plan: &p {stages: [10, 50, 100], hold: 60s, failure_limits: {consecutive: 2}}
  - {name: c.b, interval: 10s, rules: *r, plan: *p,
     metrics: {err: {direction: higher_is_worse}, queue: {direction: higher_is_worse}}}
groups:
  - name: comp
    plan: *p
    rollback: member
    members:
      - {module: c.a}
      - {module: c.b, joins_at: 50}
"""
QUEUE_FROM, QUEUE_TO = 80.0, 160.0  # c.a's V2 queue is high in between
END = 400.0


def write_recording(path: Path) -> None:
    rng = np.random.default_rng(11)
    lines: list[dict[str, object]] = [
        {"kind": "meta", "scenario": "group-alerts", "module": "comp",
         "members": ["c.a", "c.b"], "step_seconds": 10,
         "baseline": {"from": -300, "to": 0},
         "plan": {"stages": [10, 50, 100], "stage_seconds": 60}, "end": END,
         "metrics": {"err": "higher_is_worse", "queue": "higher_is_worse"}}]
    for t in np.arange(-300.0, END + 5, 5.0):
        for member in ("c.a", "c.b"):
            for version in ("v1", "v2") if t >= 0 else ("v1",):
                err = 0.001 + abs(rng.normal(0, 0.0002))
                queue = 10 + abs(rng.normal(0, 2))
                if member == "c.a" and version == "v2" and QUEUE_FROM <= t < QUEUE_TO:
                    queue = 500.0
                for metric, value in (("err", round(err, 6)), ("queue", round(queue, 3))):
                    lines.append({"t": float(t), "version": version, "metric": metric,
                                  "module": member, "value": value})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def setup(root: Path, dkit: SimpleNamespace) -> Any:
    s = dkit.make_setup(root)
    recording = root / "group-alerts.jsonl"
    write_recording(recording)
    s.scenario = recording
    for old in root.glob("journal.db*"):
        old.unlink()
    s.rules.write_text(RULES)
    s.write_config(modules="[{name: c.a, auto_start: true}, {name: c.b, auto_start: true}]")
    s.config.write_text(s.config.read_text().replace("end: 3600", f"end: {END:g}"))
    return s


def outbox(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(str(db), timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(
            "SELECT module, kind, key, payload FROM notification_outbox ORDER BY id")]
    except sqlite3.OperationalError:  # the table not made yet
        return []
    finally:
        conn.close()


def test_a_group_members_notify_rule_is_notified_firing_then_resolved(
        tmp_path: Path, spawn: Any, dkit: SimpleNamespace) -> None:
    s = setup(tmp_path, dkit)
    proc = spawn(s)
    proc.wait_for("group comp", timeout=30)

    def alerts() -> list[dict[str, Any]]:
        return [r for r in outbox(s.db) if r["kind"].startswith("alert_")]

    dkit.until(lambda: any(r["kind"] == "alert_resolved" for r in alerts())
               or "the replay is over" in proc.log(), timeout=90,
               what="c.a's queue alert resolved, or the replay over")
    rows = alerts()
    assert rows, "no alert notification of a group member"
    assert {r["module"] for r in rows} == {"c.a"}           # the member, not the group
    kinds = [r["kind"] for r in rows]
    assert kinds[0] == "alert_firing" and kinds.count("alert_resolved") == 1
    assert kinds.index("alert_resolved") > kinds.index("alert_firing")
    for row in rows:
        payload = json.loads(row["payload"])
        assert "comp" in payload["title"] and "c.a" in payload["title"]
        evidence = payload["evidence"][0]
        assert evidence["rule"] == "queue_high" and evidence["group"] == "comp"
        assert row["key"].startswith(("alert:c.a:queue_high:", "resolved:c.a:queue_high:"))
    fired = json.loads(rows[0]["payload"])["at"]
    resolved = json.loads(rows[kinds.index("alert_resolved")]["payload"])["at"]
    assert QUEUE_FROM <= fired < QUEUE_TO <= resolved < QUEUE_TO + 60  # replay time
    dkit.until(lambda: "kind=alert_resolved" in proc.log(), timeout=30,
               what="the log notifier's line for the resolved alert")
    proc.signal(15)
    assert proc.wait() == 0
