"""Module groups in the daemon (issue 20 item 1): a real ``rollout-watchdog run`` process
(replay clock, file source on a generated group recording, command actuator with its
actuation log) ticks the group ``comp`` as one job: members join at their stages with the
group's percentage, and the ``member``-policy member whose V2 fails is switched off alone
while the others go on. Everything is read from the actuation log and the journal."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from watchdog.groups.machine import ENABLED, ROLLED_BACK
from watchdog.journal import open_journal

RULES = """
modules:
  - name: c.a
    interval: 10s
    metrics: {err: {direction: higher_is_worse}}
    rules: &r [{name: errors, kind: absolute, metric: err, above: 0.01, window: 30s,
                min_samples: 2, severity: critical, action: rollback}]
    plan: &p {stages: [10, 50, 100], hold: 60s, failure_limits: {consecutive: 2}}
  - {name: c.b, interval: 10s, metrics: {err: {direction: higher_is_worse}}, rules: *r,
     plan: *p}
  - {name: c.c, interval: 10s, metrics: {err: {direction: higher_is_worse}}, rules: *r,
     plan: *p}
groups:
  - name: comp
    plan: *p
    rollback: member
    members:
      - {module: c.a}
      - {module: c.b}
      - {module: c.c, joins_at: 50}
"""
FAULT_AT = 150.0  # c.b's V2 starts failing (the group at 50 % since about 60 s)
END = 600.0


def write_recording(path: Path) -> None:
    rng = np.random.default_rng(7)
    lines: list[dict[str, object]] = [
        {"kind": "meta", "scenario": "group-comp", "module": "comp",
         "members": ["c.a", "c.b", "c.c"], "step_seconds": 10,
         "baseline": {"from": -300, "to": 0},
         "plan": {"stages": [10, 50, 100], "stage_seconds": 60}, "end": END,
         "metrics": {"err": "higher_is_worse"}}]
    for t in np.arange(-300.0, END + 5, 5.0):
        for member in ("c.a", "c.b", "c.c"):
            for version in ("v1", "v2") if t >= 0 else ("v1",):
                value = 0.001 + abs(rng.normal(0, 0.0002))
                if member == "c.b" and version == "v2" and t >= FAULT_AT:
                    value = 0.05
                lines.append({"t": float(t), "version": version, "metric": "err",
                              "module": member, "value": round(value, 6)})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))


def setup(root: Path, dkit: SimpleNamespace) -> tuple[object, Path]:
    s = dkit.make_setup(root)
    recording = root / "group-comp.jsonl"
    write_recording(recording)
    s.scenario = recording
    for old in root.glob("journal.db*"):
        old.unlink()
    s.rules.write_text(RULES)
    s.write_config(modules="[{name: c.a, auto_start: true}, {name: c.b, auto_start: true}, "
                           "{name: c.c, auto_start: true}]",
                   extra="api: {enabled: true, host: 127.0.0.1, port: 0}\n")
    text = s.config.read_text().replace("end: 3600", f"end: {END:g}")
    s.config.write_text(text)
    return s, recording


def test_the_daemon_runs_a_group_members_join_and_one_is_rolled_back_alone(
        tmp_path: Path, spawn: object, dkit: SimpleNamespace) -> None:
    s, _ = setup(tmp_path, dkit)
    proc = spawn(s)  # type: ignore[operator]
    proc.wait_for("group comp", timeout=30)

    def on(name: str) -> list[float]:
        """The flag values ``name`` was set to, in order (a hold re-applies the same)."""
        seen: list[float] = []
        for _, m, _, traffic, _ in s.actuations():  # type: ignore[attr-defined]
            if m == name and (not seen or seen[-1] != traffic):
                seen.append(traffic)
        return seen

    dkit.until(lambda: 0.0 in on("c.b") and 100.0 in on("comp"), timeout=90,
               what="c.b switched off and the group at 100 %")
    acts = s.actuations()  # type: ignore[attr-defined]
    assert on("c.a")[:3] == [10.0, 50.0, 100.0]      # joins at 10 %, follows the group
    assert on("c.c")[0] == 50.0                       # joins at 50 %, not before
    assert on("c.b")[:2] == [10.0, 50.0] and on("c.b")[-1] == 0.0   # off alone
    assert on("comp")[:3] == [10.0, 50.0, 100.0]      # the group never rolled back
    first_c = next(i for i, (_, m, *_rest) in enumerate(acts) if m == "c.c")
    group_before = [traffic for _, m, _, traffic, _ in acts[:first_c] if m == "comp"]
    assert group_before[-1] == 50.0 and set(group_before) == {10.0, 50.0}  # with its stage
    off_at = max(i for i, (_, m, _, t, _) in enumerate(acts) if m == "c.b" and t == 0.0)
    assert all(m != "c.b" or t == 0.0 for _, m, _, t, _ in acts[off_at:])  # stays off
    journal = open_journal(str(s.db))  # type: ignore[attr-defined]
    try:
        cp = journal.checkpoint("comp")
        assert cp is not None and cp.members["c.b"] == ROLLED_BACK
        assert cp.members["c.a"] == ENABLED == cp.members["c.c"]
        for member in ("c.a", "c.b", "c.c"):
            assert journal.checkpoint(member) is None   # members are not ticked alone
        off = [jd.decision for jd in journal.decisions() if jd.decision.module == "c.b"
               and jd.decision.traffic_percent == 0.0]
        assert off and FAULT_AT < off[0].at < FAULT_AT + 120
    finally:
        journal.close()
    log = proc.log()
    assert "group comp" in log and "members" in log
    # /metrics: each judged member's verdict and rule states, as a module's (a group's
    # tick once exported none of them)
    url = re.search(r"HTTP API listening on (http://127\.0\.0\.1:\d+)", log)
    assert url is not None, log
    text = urllib.request.urlopen(url.group(1) + "/metrics", timeout=10).read().decode()
    for member in ("c.a", "c.c"):
        assert f'watchdog_verdict{{module="{member}",verdict="healthy"}} 1.0' in text
        assert f'watchdog_rule_state{{module="{member}",rule="errors",state="ok"}} 1.0' \
            in text
    # the group's own verdict (the worst of its members'), for status and the web view
    status = json.loads(urllib.request.urlopen(url.group(1) + "/api/modules/comp",
                                               timeout=10).read())
    assert status["last_verdict"] is not None and status["last_verdict"]["kind"] in (
        "healthy", "critical", "warning", "inconclusive")
    proc.signal(15)
    assert proc.wait() == 0

