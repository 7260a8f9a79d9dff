"""Samples the judge dropped as missing data: counted once each on /metrics, logged once
per episode (issue 16, item 6). Telemetry's own registry and a log capture; the daemon's
end-to-end view is tests/daemon/test_out_of_domain.py."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from watchdog.daemon.observe import RejectionLog
from watchdog.engine import TickResult
from watchdog.model import Rejected, RejectReason, RuleResult, Verdict, VerdictKind, Version
from watchdog.rollout.state import Checkpoint, Phase
from watchdog.telemetry import Telemetry

RESULTS = (RuleResult("error_rate_regression", "error_rate", None, "s"),
           RuleResult("latency_p95_regression", "latency_p95_ms", False, "s"))


def tick(at: float, *rejected: Rejected, module: str = "svc") -> TickResult:
    verdict = Verdict(module, at, VerdictKind.INCONCLUSIVE, RESULTS, rejected=rejected)
    return TickResult(module, verdict, (),
                      Checkpoint(module, Phase.PROGRESSING, 0, 10.0, 0.0, 0.0))


def negative_v1(*times: float) -> Rejected:
    return Rejected(Version.V1, "error_rate", RejectReason.BELOW_MIN, "[0, 1]", times)


def counts(registry: CollectorRegistry) -> dict[tuple[str, str, str, str], float]:
    text = generate_latest(registry).decode()
    return {(s.labels["module"], s.labels["version"], s.labels["metric"], s.labels["reason"]):
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "watchdog_samples_rejected_total"}


def test_each_dropped_sample_is_counted_once_although_ticks_overlap() -> None:
    registry = CollectorRegistry()
    telemetry = Telemetry(registry)
    telemetry.observe_tick(tick(30.0), 0.01)
    before = counts(registry)
    # every judged metric's series exist at 0 before its first rejection (rate() sees it)
    assert before[("svc", "v1", "error_rate", "below_min")] == 0
    assert len(before) == 2 * 2 * len(RejectReason)
    telemetry.observe_tick(tick(40.0, negative_v1(35.0, 40.0)), 0.01)
    # the next tick's data still holds 35 and 40 (its lookback overlaps): not counted again
    telemetry.observe_tick(tick(50.0, negative_v1(35.0, 40.0, 50.0)), 0.01)
    telemetry.observe_tick(tick(60.0, negative_v1(35.0, 40.0, 50.0),
                                Rejected(Version.V2, "latency_p95_ms",
                                         RejectReason.NON_FINITE, "[0, 1e+100]", (60.0,))),
                           0.01)
    found = counts(registry)
    assert found[("svc", "v1", "error_rate", "below_min")] == 3
    assert found[("svc", "v2", "latency_p95_ms", "non_finite")] == 1
    assert sum(found.values()) == 4


def test_a_drop_is_logged_when_it_begins_and_when_it_ends(
        caplog: pytest.LogCaptureFixture) -> None:
    log = RejectionLog()
    with caplog.at_level(logging.INFO, logger="watchdog.daemon.observe"):
        log.note(tick(40.0, negative_v1(35.0, 40.0)))
        for at in (50.0, 60.0, 70.0):  # the same episode: nothing more
            log.note(tick(at, negative_v1(35.0, 40.0, at)))
        log.note(tick(80.0))
        log.note(tick(90.0))
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("WARNING", "module svc: 2 V1 samples of error_rate outside its domain [0, 1] "
                    "(below_min): dropped as missing data (counted in "
                    "watchdog_samples_rejected_total; logged again when they are gone)"),
        ("INFO", "module svc: no more V1 samples of error_rate dropped (below_min) in the "
                 "judged data")]
