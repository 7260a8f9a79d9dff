"""Alerts of notify-only and dry-run rules become notifications: firing (every evaluation,
throttled later by the queue's repeat interval) and resolved (once, with the value)."""

from __future__ import annotations

from watchdog.config.loader import load_texts
from watchdog.daemon.alerting import alert_notifications
from watchdog.engine import Engine
from watchdog.journal.store import Journal
from watchdog.judge.series import SeriesStore
from watchdog.model import Sample, Version
from watchdog.notifiers import Notification

RULES = """
modules:
  - name: queue
    interval: 10s
    metrics:
      queue_size: {direction: higher_is_worse}
    rules:
      - name: queue_above_10k
        kind: absolute
        metric: queue_size
        above: 10000
        window: 30s
        for: 20s
        severity: warning
        action: notify
        annotations: {summary: queue above 10k, runbook_url: https://runbooks.example/q}
      - name: queue_dry
        kind: absolute
        metric: queue_size
        above: 50000
        window: 30s
        severity: critical
        action: rollback
        dry_run: true
    plan: {stages: [50, 100], hold: 1h}
"""


class NoSource:
    name = "none"

    def fetch(self, module: object, start: float, end: float) -> SeriesStore:
        return SeriesStore()


def run(values: list[float]) -> list[list[Notification]]:
    rules = load_texts([("rules.yaml", RULES)])
    journal = Journal(":memory:")
    engine = Engine(rules, journal, NoSource())
    samples = [Sample(float(i * 10), "queue", Version.V2, "queue_size", v)
               for i, v in enumerate(values)]
    store = SeriesStore.of(samples)
    out = []
    for i in range(len(values)):
        now = float(i * 10)
        cp = engine.checkpoint("queue")
        before = dict(cp.alerts) if cp is not None else {}
        result = engine.tick("queue", now, store=store.until(now))
        out.append(alert_notifications(engine.module("queue"), before, result))
    journal.close()
    return out


def test_a_notify_rule_fires_repeatedly_then_resolves_once_with_its_value() -> None:
    values = [5000.0] * 3 + [20000.0] * 8 + [4000.0] * 6
    per_tick = run(values)
    kinds = [[(n.kind, n.evidence[0]["rule"]) for n in notes] for notes in per_tick]
    firing_ticks = [i for i, k in enumerate(kinds) if ("alert_firing", "queue_above_10k") in k]
    resolved = [(i, n) for i, notes in enumerate(per_tick) for n in notes
                if n.kind == "alert_resolved"]
    assert firing_ticks, kinds
    # `for: 20s` after the first breached window (a 30 s window of the mean: tick 4 or 5)
    assert firing_ticks[0] >= 5
    assert firing_ticks == list(range(firing_ticks[0], firing_ticks[-1] + 1))
    assert len({n.key for notes in per_tick for n in notes if n.kind == "alert_firing"}) \
        == len(firing_ticks)  # a new key each evaluation: the queue throttles repeats
    (index, note), = resolved
    assert index == firing_ticks[-1] + 1
    assert note.evidence[0]["rule"] == "queue_above_10k"
    assert "observed" in note.evidence[0] and note.evidence[0]["held_for"] > 0
    assert "now:" in note.reasons[0] and note.links["runbook_url"].startswith("https://")
    first = next(n for n in per_tick[firing_ticks[0]] if n.kind == "alert_firing")
    assert first.severity == "warning" and first.title == "queue: queue above 10k"


def test_a_dry_run_rule_is_notified_and_named_as_such() -> None:
    values = [5000.0] * 3 + [60000.0] * 5
    per_tick = run(values)
    dry = [n for notes in per_tick for n in notes if n.evidence[0]["rule"] == "queue_dry"]
    assert dry and all(n.title.endswith("(dry run)") for n in dry)
    assert all(n.severity == "critical" for n in dry)


def test_rules_that_act_through_decisions_are_not_notified_twice() -> None:
    rules = load_texts([("rules.yaml", RULES.replace("action: notify", "action: hold"))])
    module = rules.for_module("queue")
    assert [r.name for r in module.rules if r.action.value == "notify" or r.dry_run] \
        == ["queue_dry"]
    per_tick = run([5000.0] * 2)
    assert all(not notes for notes in per_tick)
