"""Telemetry: the daemon's instruments and the journal read at scrape time, checked through
the text exposition a Prometheus server would scrape (parsed with prometheus_client)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from watchdog.backtest.replay import run
from watchdog.backtest.scenario import load_scenario
from watchdog.clock import FakeClock
from watchdog.config.loader import load_default_rules
from watchdog.engine import TickResult
from watchdog.errors import BadQuery, EmptyResult, SourceError, SourceUnavailable
from watchdog.journal.store import Journal
from watchdog.judge.alerts import AlertPhase, AlertState
from watchdog.model import RuleResult, Verdict, VerdictKind
from watchdog.rollout.state import Checkpoint, Phase
from watchdog.telemetry import RULE_STATES, JournalCollector, Telemetry

SCENARIOS = Path(__file__).parent / "data" / "scenarios"
REGRESSION = SCENARIOS / "reg-errors-3pct-1582.jsonl"

LABELS = {"module", "version", "metric", "rule", "state", "verdict", "action", "source",
          "kind", "actuator", "phase", "stat", "notifier", "python", "le", "reason"}


def scrape(registry: CollectorRegistry) -> dict[str, tuple[str, list[Sample]]]:
    text = generate_latest(registry).decode()
    return {f.name: (f.type, f.samples) for f in text_string_to_metric_families(text)}


def value(families: dict[str, tuple[str, list[Sample]]], sample_name: str,
          **labels: str) -> float | None:
    for _, samples in families.values():
        for s in samples:
            if s.name == sample_name and s.labels == labels:
                return float(s.value)
    return None


class Queue:
    def __init__(self, depth: int) -> None:
        self.depth = depth

    def pending(self) -> int:
        return self.depth


@dataclass
class Replayed:
    registry: CollectorRegistry
    path: Path
    clock: FakeClock
    ticks: list[TickResult]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    """A regression replayed through the real engine, every tick observed."""
    path = tmp_path_factory.mktemp("telemetry") / "journal.db"
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    clock = FakeClock(1000.0)
    registry.register(JournalCollector(path, clock.now, [("slack", Queue(3))]))
    ticks: list[TickResult] = []

    def on_tick(result: TickResult) -> None:
        ticks.append(result)
        telemetry.observe_tick(result, 0.02)

    result = run(load_scenario(REGRESSION), load_default_rules(), journal_path=path,
                 on_tick=on_tick)
    assert result.outcome == "rolled_back"
    return Replayed(registry, path, clock, ticks)


def test_rollback_shows_in_types_names_and_values(replayed: Replayed) -> None:
    f = scrape(replayed.registry)
    assert f["watchdog_decisions"][0] == "counter"
    assert f["watchdog_rollbacks"][0] == "counter"
    assert f["watchdog_evaluation_duration_seconds"][0] == "histogram"
    for gauge in ("watchdog_metric_value", "watchdog_baseline_value", "watchdog_rule_state",
                  "watchdog_rollout_phase", "watchdog_traffic_ratio", "watchdog_build_info",
                  "watchdog_pending_actuations", "watchdog_checkpoint_age_seconds",
                  "watchdog_notification_queue_depth", "watchdog_rule_threshold"):
        assert f[gauge][0] == "gauge", gauge
    assert value(f, "watchdog_rollbacks_total", module="checkout") == 1
    assert value(f, "watchdog_decisions_total", module="checkout", action="rollback") == 1
    assert value(f, "watchdog_decisions_total", module="checkout", action="advance") == 1
    assert value(f, "watchdog_rollout_phase", module="checkout", phase="rolled_back") == 1
    assert value(f, "watchdog_rollout_phase", module="checkout", phase="progressing") == 0
    assert value(f, "watchdog_traffic_ratio", module="checkout") == 0
    assert value(f, "watchdog_rollout_stage", module="checkout") == 1
    assert value(f, "watchdog_verdict", module="checkout", verdict="critical") == 1
    assert value(f, "watchdog_verdict", module="checkout", verdict="healthy") == 0
    assert value(f, "watchdog_rule_state", module="checkout", rule="error_rate_regression",
                 state="firing") == 1
    assert value(f, "watchdog_rule_state", module="checkout", rule="error_rate_regression",
                 state="ok") == 0
    assert value(f, "watchdog_evaluation_duration_seconds_count", module="checkout") == \
        len(replayed.ticks)
    assert value(f, "watchdog_notification_queue_depth", notifier="slack") == 3
    assert value(f, "watchdog_pending_actuations") == 0
    assert value(f, "watchdog_journal_up") == 1
    assert value(f, "watchdog_kill_switch") == 0


def test_rule_and_metric_values_are_the_evidence_judged(replayed: Replayed) -> None:
    f = scrape(replayed.registry)
    last = replayed.ticks[-1].verdict
    assert last is not None
    errors = next(r for r in last.results if r.rule == "error_rate_regression")
    assert value(f, "watchdog_rule_value", module="checkout",
                 rule="error_rate_regression") == pytest.approx(errors.evidence["observed"])
    assert value(f, "watchdog_rule_threshold", module="checkout",
                 rule="error_rate_regression") == pytest.approx(errors.evidence["limit"])
    assert value(f, "watchdog_metric_value", module="checkout", version="v2",
                 metric="error_rate") == pytest.approx(errors.evidence["observed"])
    # V2's error rate is several times V1's in this regression
    v1 = value(f, "watchdog_metric_value", module="checkout", version="v1",
               metric="error_rate")
    assert v1 is not None and v1 * 3 < errors.evidence["observed"]


def test_baselines_and_checkpoint_age_come_from_the_journal(replayed: Replayed) -> None:
    clock = replayed.clock
    journal = Journal(replayed.path)
    try:
        updated = journal.checkpoint_updated_at("checkout")
        baseline = journal.active_baselines("checkout", clock.now())["latency_p95_ms"]
    finally:
        journal.close()
    assert updated is not None
    f = scrape(replayed.registry)
    assert value(f, "watchdog_checkpoint_age_seconds", module="checkout") == \
        pytest.approx(clock.now() - updated)
    for stat in ("mean", "p95", "stddev"):
        assert value(f, "watchdog_baseline_value", module="checkout",
                     metric="latency_p95_ms", stat=stat) == pytest.approx(
            getattr(baseline, stat))
    assert value(f, "watchdog_baseline_samples", module="checkout",
                 metric="latency_p95_ms") == baseline.count


def test_labels_are_low_cardinality_names_and_default_registry_untouched(
        replayed: Replayed) -> None:
    f = scrape(replayed.registry)
    for name, (_, samples) in f.items():
        assert name.startswith("watchdog_"), name
        for s in samples:
            assert set(s.labels) <= LABELS, (s.name, s.labels)
            assert all(len(v) < 64 and " " not in v for v in s.labels.values()), s
    assert not [m for m in REGISTRY.collect() if m.name.startswith("watchdog_")]


def test_kill_switch_zeroes_traffic(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    journal = Journal(path)
    try:
        journal.save_checkpoint(Checkpoint("search", Phase.PROGRESSING, 2, 50.0, 0.0, 0.0),
                                at=90.0)
        registry = CollectorRegistry()
        registry.register(JournalCollector(path, lambda: 100.0))
        f = scrape(registry)
        assert value(f, "watchdog_traffic_ratio", module="search") == 0.5
        assert value(f, "watchdog_rollout_stage", module="search") == 3
        assert value(f, "watchdog_checkpoint_age_seconds", module="search") == 10
        journal.set_setting("kill_switch", True)
        f = scrape(registry)
        assert value(f, "watchdog_traffic_ratio", module="search") == 0
        assert value(f, "watchdog_kill_switch") == 1
    finally:
        journal.close()


def test_decision_counters_exist_at_zero_before_the_first_decision(tmp_path: Path) -> None:
    # a dashboard's increase(watchdog_rollbacks_total[5m]) sees the first rollback only if
    # the series existed before it, at 0
    path = tmp_path / "j.db"
    journal = Journal(path)
    try:
        journal.save_checkpoint(Checkpoint("search", Phase.PROGRESSING, 0, 5.0, 0.0, 0.0),
                                at=90.0)
        registry = CollectorRegistry()
        registry.register(JournalCollector(path, lambda: 100.0))
        f = scrape(registry)
        assert value(f, "watchdog_rollbacks_total", module="search") == 0
        for action in ("advance", "hold", "rollback", "promote", "pause", "resume", "abort"):
            assert value(f, "watchdog_decisions_total", module="search", action=action) == 0
    finally:
        journal.close()


def test_rollbacks_count_once_the_journal_has_them(replayed: Replayed) -> None:
    f = scrape(replayed.registry)
    module = replayed.ticks[-1].module
    assert value(f, "watchdog_rollbacks_total", module=module) == 1
    assert value(f, "watchdog_decisions_total", module=module, action="rollback") == 1
    assert value(f, "watchdog_decisions_total", module=module, action="promote") == 0


def test_unreadable_journal_is_reported_not_raised(tmp_path: Path) -> None:
    missing = CollectorRegistry()
    missing.register(JournalCollector(tmp_path / "absent.db", lambda: 0.0))
    f = scrape(missing)
    assert value(f, "watchdog_journal_up") == 0
    assert not (tmp_path / "absent.db").exists()  # scraping never creates a journal
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    broken = CollectorRegistry()
    broken.register(JournalCollector(garbage, lambda: 0.0))
    f = scrape(broken)
    assert value(f, "watchdog_journal_up") == 0
    assert "watchdog_rollout_phase" not in f or not f["watchdog_rollout_phase"][1]


def _result(results: tuple[RuleResult, ...], alerts: dict[str, AlertState]) -> TickResult:
    verdict = Verdict("svc", 10.0, VerdictKind.HEALTHY, results)
    cp = Checkpoint("svc", Phase.PROGRESSING, 0, 10.0, 0.0, 0.0, alerts=alerts)
    return TickResult("svc", verdict, (), cp)


def test_rule_states_and_stale_series() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    a = RuleResult("a", "m", True, "", {"observed": 5.0, "above": 3.0})
    b = RuleResult("b", "m", None, "", {"n_v2": 0})
    g = RuleResult("g", "mem", False, "", {"growth_per_hour": 0.01, "limit": 0.05})
    telemetry.observe_tick(_result((a, b, g), {"a": AlertState(AlertPhase.PENDING, 1.0)}),
                           0.1)
    f = scrape(registry)
    assert value(f, "watchdog_rule_state", module="svc", rule="a", state="pending") == 1
    assert value(f, "watchdog_rule_state", module="svc", rule="b",
                 state="inconclusive") == 1
    assert value(f, "watchdog_rule_state", module="svc", rule="g", state="ok") == 1
    assert value(f, "watchdog_rule_value", module="svc", rule="a") == 5
    assert value(f, "watchdog_rule_threshold", module="svc", rule="a") == 3
    assert value(f, "watchdog_rule_value", module="svc", rule="g") == 0.01
    assert value(f, "watchdog_rule_value", module="svc", rule="b") is None
    assert value(f, "watchdog_metric_value", module="svc", version="v2", metric="m") == 5
    # the next tick no longer evaluates rule a (rules reloaded): its series go away
    telemetry.observe_tick(_result((g,), {}), 0.1)
    f = scrape(registry)
    assert value(f, "watchdog_rule_state", module="svc", rule="a", state="pending") is None
    assert value(f, "watchdog_rule_value", module="svc", rule="a") is None
    assert value(f, "watchdog_metric_value", module="svc", version="v2", metric="m") is None
    assert value(f, "watchdog_rule_value", module="svc", rule="g") == 0.01
    # and come back when it is evaluated again (the label sets are made once and kept:
    # a removed one must be made anew, or its values would go nowhere)
    a2 = RuleResult("a", "m", True, "", {"observed": 7.0, "above": 3.0})
    telemetry.observe_tick(_result((a2, g), {}), 0.1)
    f = scrape(registry)
    assert value(f, "watchdog_rule_state", module="svc", rule="a", state="ok") == 1
    assert value(f, "watchdog_rule_value", module="svc", rule="a") == 7
    assert value(f, "watchdog_metric_value", module="svc", version="v2", metric="m") == 7
    telemetry.observe_tick(_result((g,), {}), 0.1)
    last = telemetry.last_verdict("svc")
    assert last is not None and last.kind is VerdictKind.HEALTHY and last.at == 10.0


def test_source_errors_by_kind_and_actuator_failures() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    telemetry.source_errors_of("prometheus", [SourceUnavailable("down"), BadQuery("bad"),
                                              SourceUnavailable("still down")])
    telemetry.source_error("prometheus", EmptyResult("none"))
    telemetry.source_error("scrape", SourceError("odd"))
    telemetry.actuator_failure("webhook")
    f = scrape(registry)
    assert f["watchdog_source_errors"][0] == "counter"
    assert value(f, "watchdog_source_errors_total", source="prometheus",
                 kind="unavailable") == 2
    assert value(f, "watchdog_source_errors_total", source="prometheus",
                 kind="bad_query") == 1
    assert value(f, "watchdog_source_errors_total", source="prometheus",
                 kind="empty_result") == 1
    assert value(f, "watchdog_source_errors_total", source="scrape", kind="error") == 1
    assert value(f, "watchdog_actuator_failures_total", actuator="webhook") == 1


def test_skipped_ticks_are_counted_per_module() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    telemetry.tick_skipped("checkout")
    telemetry.tick_skipped("checkout")
    telemetry.tick_skipped("search")
    f = scrape(registry)
    assert f["watchdog_ticks_skipped"][0] == "counter"
    assert value(f, "watchdog_ticks_skipped_total", module="checkout") == 2
    assert value(f, "watchdog_ticks_skipped_total", module="search") == 1
    build = [s for s in f["watchdog_build_info"][1]]
    assert len(build) == 1 and build[0].value == 1 and build[0].labels["version"]


def test_declared_plugins_have_failure_series_at_zero() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    telemetry.declare(["scrape"], ["file", "webhook"])
    f = scrape(registry)
    for kind in ("unavailable", "bad_query", "empty_result", "error"):
        assert value(f, "watchdog_source_errors_total", source="scrape", kind=kind) == 0
    assert value(f, "watchdog_actuator_failures_total", actuator="file") == 0
    telemetry.actuator_failure("webhook")
    assert value(scrape(registry), "watchdog_actuator_failures_total", actuator="webhook") == 1


def test_two_registries_are_independent() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    Telemetry(first).actuator_failure("file")
    Telemetry(second)
    assert value(scrape(first), "watchdog_actuator_failures_total", actuator="file") == 1
    assert value(scrape(second), "watchdog_actuator_failures_total", actuator="file") is None


def test_rules_without_a_verdict_show_whether_they_hold_the_rollout() -> None:
    # a rule still warming up or not applicable holds nothing: it is shown as that, not as
    # "inconclusive" (missing data, disputed, unconfirmed: those hold the rollout)
    from watchdog.model import RuleOutcome

    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    results = tuple(RuleResult(o.value, "m", o, "", {}) for o in RuleOutcome
                    if o not in (RuleOutcome.BREACHED, RuleOutcome.CLEAR))
    telemetry.observe_tick(_result(results, {}), 0.1)
    f = scrape(registry)
    want = {"missing": "inconclusive", "disputed": "inconclusive",
            "unconfirmed": "inconclusive", "warming": "warming",
            "inapplicable": "inapplicable"}
    assert {r.rule for r in results} == set(want)
    for rule, state in want.items():
        assert value(f, "watchdog_rule_state", module="svc", rule=rule, state=state) == 1
        others = [s for s in RULE_STATES if s != state]
        assert all(value(f, "watchdog_rule_state", module="svc", rule=rule, state=s) == 0
                   for s in others), rule


def test_a_groups_members_have_their_phase_and_traffic_series(tmp_path: Path) -> None:
    # a member has no checkpoint of its own: its series come from the group's (it once
    # had none, so Grafana's module variable never offered it), and the group's own
    # kill switch takes its traffic, and its members', to 0
    path = tmp_path / "journal.db"
    journal = Journal(path)
    try:
        cp = Checkpoint("comp", Phase.PROGRESSING, 1, 50.0, 0.0, 0.0,
                        members={"c.a": "enabled", "c.b": "rolled_back", "c.c": "waiting"})
        journal.save_checkpoint(cp, at=90.0)
        registry = CollectorRegistry()
        registry.register(JournalCollector(path, lambda: 100.0))
        f = scrape(registry)
        assert value(f, "watchdog_traffic_ratio", module="c.a") == 0.5
        assert value(f, "watchdog_traffic_ratio", module="c.b") == 0
        assert value(f, "watchdog_traffic_ratio", module="c.c") == 0
        assert value(f, "watchdog_rollout_phase", module="c.b", phase="rolled_back") == 1
        assert value(f, "watchdog_rollout_phase", module="c.a", phase="progressing") == 1
        assert value(f, "watchdog_rollout_stage", module="c.c") == 2
        journal.set_setting("kill_switch:group:comp", True)
        f = scrape(registry)
        assert value(f, "watchdog_traffic_ratio", module="comp") == 0
        assert value(f, "watchdog_traffic_ratio", module="c.a") == 0
    finally:
        journal.close()
