"""GET /metrics: the telemetry registry as Prometheus scrapes it, parsed with
prometheus_client's own parser (names, types, labels, values)."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Served = Any

# family name (as the parser reports it) -> (type, label names of its samples)
EXPECTED = {
    "watchdog_build_info": ("gauge", {"version", "python"}),
    "watchdog_decisions": ("counter", {"module", "action"}),
    "watchdog_rollbacks": ("counter", {"module"}),
    "watchdog_evaluation_duration_seconds": ("histogram", {"module"}),
    "watchdog_metric_value": ("gauge", {"module", "version", "metric"}),
    "watchdog_baseline_value": ("gauge", {"module", "metric", "stat"}),
    "watchdog_baseline_age_seconds": ("gauge", {"module", "metric"}),
    "watchdog_baseline_samples": ("gauge", {"module", "metric"}),
    "watchdog_last_evaluation_timestamp_seconds": ("gauge", {"module"}),
    "watchdog_traffic_ratio": ("gauge", {"module"}),
    "watchdog_rollout_stage": ("gauge", {"module"}),
    "watchdog_rollout_phase": ("gauge", {"module", "phase"}),
    "watchdog_rule_state": ("gauge", {"module", "rule", "state"}),
    "watchdog_rule_value": ("gauge", {"module", "rule"}),
    "watchdog_rule_threshold": ("gauge", {"module", "rule"}),
    "watchdog_verdict": ("gauge", {"module", "verdict"}),
    "watchdog_checkpoint_age_seconds": ("gauge", {"module"}),
    "watchdog_pending_actuations": ("gauge", set()),
    "watchdog_kill_switch": ("gauge", set()),
    "watchdog_journal_up": ("gauge", set()),
    "watchdog_notification_queue_depth": ("gauge", None),  # no queue given: no samples
    "watchdog_source_errors": ("counter", None),  # nothing failed in the replay
    "watchdog_actuator_failures": ("counter", None),
    "watchdog_ticks_skipped": ("counter", None),  # no tick overran in the replay
    "watchdog_samples_rejected": ("counter", {"module", "version", "metric", "reason"}),
    # the process's own (watchdog.telemetry.register_runtime_collectors), as the daemon has
    "process_virtual_memory_bytes": ("gauge", set()),
    "process_resident_memory_bytes": ("gauge", set()),
    "process_start_time_seconds": ("gauge", set()),
    "process_cpu_seconds": ("counter", set()),
    "process_open_fds": ("gauge", set()),
    "process_max_fds": ("gauge", set()),
    "python_info": ("gauge", {"implementation", "major", "minor", "patchlevel", "version"}),
    "python_gc_objects_collected": ("counter", {"generation"}),
    "python_gc_objects_uncollectable": ("counter", {"generation"}),
    "python_gc_collections": ("counter", {"generation"}),
}


def families(text: str) -> dict[str, Any]:
    # prometheus_client adds <counter/histogram>_created series, which the text-format
    # parser reports as gauges of their own: not ours to check
    return {f.name: f for f in text_string_to_metric_families(text)
            if not f.name.endswith("_created")}


def sample(found: dict[str, Any], family: str, name: str, **labels: str) -> float | None:
    for s in found[family].samples:
        if s.name == name and s.labels == labels:
            return float(s.value)
    return None


def test_names_types_and_labels(reader: Served) -> None:
    r = reader.client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    found = families(r.text)
    assert set(found) == set(EXPECTED)
    for name, (kind, labels) in EXPECTED.items():
        family = found[name]
        assert family.type == kind, name
        if labels is None:
            assert family.samples == [], name
            continue
        assert family.samples, name
        for s in family.samples:
            assert set(s.labels) - {"le"} == labels, (name, s.labels)


def test_values_follow_the_journal(reader: Served, facts: Any) -> None:
    found = families(reader.client.get("/metrics").text)
    assert sample(found, "watchdog_traffic_ratio", "watchdog_traffic_ratio",
                  module="search") == facts.search.traffic_percent / 100
    assert sample(found, "watchdog_traffic_ratio", "watchdog_traffic_ratio",
                  module="checkout") == 0.0
    assert sample(found, "watchdog_rollbacks", "watchdog_rollbacks_total",
                  module="checkout") == 1
    assert sample(found, "watchdog_decisions", "watchdog_decisions_total",
                  module="search", action="advance") == len(facts.search_traffic)
    assert sample(found, "watchdog_rollout_phase", "watchdog_rollout_phase",
                  module="checkout", phase="rolled_back") == 1
    assert sample(found, "watchdog_checkpoint_age_seconds",
                  "watchdog_checkpoint_age_seconds", module="search") == \
        4000.0 - facts.search_updated
    assert sample(found, "watchdog_verdict", "watchdog_verdict", module="checkout",
                  verdict="critical") == 1
    assert sample(found, "watchdog_rule_state", "watchdog_rule_state", module="checkout",
                  rule="error_rate_regression", state="firing") == 1
    count = sample(found, "watchdog_evaluation_duration_seconds",
                   "watchdog_evaluation_duration_seconds_count", module="search")
    assert count is not None and count > 100  # a tick every 10 s up to 1300 s


def test_health_answers_head_without_a_body(reader: Served) -> None:
    r = reader.client.head("/health")
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"] == "application/json"


def test_openmetrics_on_request(reader: Served) -> None:
    r = reader.client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_a_control_action_shows_in_the_counters(writable: Served) -> None:
    before = families(writable.client.get("/metrics").text)
    assert sample(before, "watchdog_decisions", "watchdog_decisions_total", module="search",
                  action="pause") == 0
    r = writable.client.post("/api/modules/search/pause", headers=writable.auth(),
                             json={"reason": "look closer"})
    assert r.status_code == 200
    after = families(writable.client.get("/metrics").text)
    assert sample(after, "watchdog_decisions", "watchdog_decisions_total", module="search",
                  action="pause") == 1
    assert sample(after, "watchdog_rollout_phase", "watchdog_rollout_phase", module="search",
                  phase="paused") == 1
    # no daemon applies it in this test: it waits for the outbox
    assert sample(after, "watchdog_pending_actuations", "watchdog_pending_actuations") == 1
