"""What the daemon tells telemetry as it runs: each tick's verdict, source and actuator errors.

Everything lives in the :class:`~prometheus_client.CollectorRegistry` passed in (never
the global default registry). Labels are low-cardinality names only (module, version,
metric, rule, action, source, actuator, error kind): no decision ids, no free text.

A series that stops being true is removed rather than left at its last value: a rule
that is no longer evaluated, a metric a tick no longer measured.
"""

from __future__ import annotations

import math
import platform
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watchdog import __version__
from watchdog.engine import TickResult
from watchdog.errors import BadQuery, EmptyResult, SourceError, SourceUnavailable
from watchdog.judge.alerts import AlertPhase
from watchdog.model import (
    RejectReason,
    RuleResult,
    Verdict,
    VerdictKind,
    Version,
    unsettled_state,
)
from watchdog.sources.deadline import DeadlineExceeded

RULE_STATES = ("ok", "inconclusive", "pending", "firing", "warming", "inapplicable")
"""``watchdog_rule_state``: one of these is 1 per rule, the others 0. ``inconclusive``
holds the rollout (missing data, disputed references, unconfirmed); ``warming`` (V2 too
young for the rule) and ``inapplicable`` (V1 no longer serves, for a rule against it)
hold nothing."""

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                    60.0)

# evidence keys holding what a rule compared, and the limit it compared it with, by kind:
# relative/absolute "observed", growth "growth_per_hour", increase "increase"
_VALUE_KEYS = ("observed", "growth_per_hour", "increase")
_LIMIT_KEYS = ("limit", "above", "below")


@dataclass(frozen=True)
class LastVerdict:
    """The verdict of a module's last evaluation, as /status shows it."""

    kind: VerdictKind
    at: float
    firing: tuple[str, ...]
    reasons: tuple[str, ...]


class Telemetry:
    """The daemon's instruments. Thread-safe: call from the tick thread, scrape from any."""

    def __init__(self, registry: CollectorRegistry, *, version: str = __version__) -> None:
        self.registry = registry
        self._lock = threading.Lock()
        self._last: dict[str, LastVerdict] = {}
        # label sets written by the last tick, per module and gauge (to drop stale ones)
        self._seen: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        # per metric (by id), its labelled children (see _child)
        self._children: dict[int, dict[tuple[str, ...], Any]] = {}
        build = Gauge("watchdog_build_info", "Build of rollout-watchdog (always 1)",
                      ["version", "python"], registry=registry)
        build.labels(version, platform.python_version()).set(1)
        self.metric_value = Gauge(
            "watchdog_metric_value",
            "Value a rule judged, in the metric's own unit: V2's aggregate over the rule "
            "window, and live V1's where a rule compared against it (first rule per metric)",
            ["module", "version", "metric"], registry=registry)
        self.rule_state = Gauge(
            "watchdog_rule_state", "Rule state at the last evaluation (1 for the current "
            "state: ok, inconclusive, pending, firing)", ["module", "rule", "state"],
            registry=registry)
        self.rule_value = Gauge(
            "watchdog_rule_value", "What the rule compared at the last evaluation (observed "
            "aggregate, growth per hour, or counter increase)", ["module", "rule"],
            registry=registry)
        self.rule_threshold = Gauge(
            "watchdog_rule_threshold", "The limit the rule compared its value with at the "
            "last evaluation", ["module", "rule"], registry=registry)
        self.verdict = Gauge(
            "watchdog_verdict", "Verdict of the last evaluation (1 for the current one)",
            ["module", "verdict"], registry=registry)
        self.last_evaluation = Gauge(
            "watchdog_last_evaluation_timestamp_seconds",
            "Unix time of the last evaluation", ["module"], registry=registry)
        self.evaluation_duration = Histogram(
            "watchdog_evaluation_duration_seconds", "Wall time of one evaluation (fetch, "
            "judge, decide, journal, act)", ["module"], buckets=DURATION_BUCKETS,
            registry=registry)
        self.source_errors = Counter(
            "watchdog_source_errors", "Metrics source failures by kind (unavailable, "
            "timeout, bad_query, empty_result, error)", ["source", "kind"], registry=registry)
        self.actuator_failures = Counter(
            "watchdog_actuator_failures", "Flag changes that failed or did not read back",
            ["actuator"], registry=registry)
        self.ticks_skipped = Counter(
            "watchdog_ticks_skipped", "Ticks not run because the module's previous tick was "
            "still running (it overran its interval)", ["module"], registry=registry)
        self.samples_rejected = Counter(
            "watchdog_samples_rejected", "Samples the judge dropped as missing data: outside "
            "their metric's domain (below_min, above_max) or not finite (non_finite); each "
            "counted once, when first seen", ["module", "version", "metric", "reason"],
            registry=registry)
        # per module: the time up to which its rejected samples are counted, and the label
        # sets created at 0 so far
        self._rejected_until: dict[str, float] = {}
        self._rejected_declared: dict[str, set[str]] = {}  # per module (was a scan of all)

    def declare(self, sources: Iterable[str], actuators: Iterable[str]) -> None:
        """Create the failure counters of these plugins at 0, so a dashboard's increase()
        and an alert's rate() see their first failure (a series that appears at 1 does not
        increase)."""
        for source in sources:
            for kind in ERROR_KINDS:
                self.source_errors.labels(source, kind)
        for actuator in actuators:
            self.actuator_failures.labels(actuator)

    # the daemon's hooks ----------------------------------------------------------------

    def tick_skipped(self, module: str) -> None:
        """One of ``module``'s ticks was skipped: the one before was still running."""
        self.ticks_skipped.labels(module).inc()

    def observe_tick(self, result: TickResult, duration: float) -> None:
        """Record one :meth:`Engine.tick` that took ``duration`` seconds (monotonic)."""
        with self._lock:
            self._observe(result, duration)

    def _observe(self, result: TickResult, duration: float) -> None:
        module = result.module
        self._child(self.evaluation_duration, module).observe(max(0.0, duration))
        verdict = result.verdict
        if verdict is None:  # the tick only started the rollout
            return
        self._child(self.last_evaluation, module).set(verdict.at)
        self._count_rejected(module, verdict)
        for kind in VerdictKind:
            self._child(self.verdict, module, kind.value).set(1 if kind is verdict.kind
                                                              else 0)
        states = {name: s.phase for name, s in result.checkpoint.alerts.items()}
        rule_state: set[tuple[str, ...]] = set()
        values: set[tuple[str, ...]] = set()
        limits: set[tuple[str, ...]] = set()
        metrics: dict[tuple[str, ...], float] = {}
        for r in verdict.results:
            current = rule_state_of(r, states.get(r.rule, AlertPhase.INACTIVE))
            for state in RULE_STATES:
                rule_state.add((module, r.rule, state))
                self._child(self.rule_state, module, r.rule, state).set(
                    1 if state == current else 0)
            value, limit = rule_numbers(r)
            if value is not None:
                values.add((module, r.rule))
                self._child(self.rule_value, module, r.rule).set(value)
            if limit is not None:
                limits.add((module, r.rule))
                self._child(self.rule_threshold, module, r.rule).set(limit)
            for version, number in _metric_values(r):
                metrics.setdefault((module, version.value, r.metric), number)
        for labels, number in metrics.items():
            self._child(self.metric_value, *labels).set(number)
        self._last[module] = LastVerdict(verdict.kind, verdict.at, verdict.firing,
                                          verdict.reasons)
        self._keep(module, "rule_state", self.rule_state, rule_state)
        self._keep(module, "rule_value", self.rule_value, values)
        self._keep(module, "rule_threshold", self.rule_threshold, limits)
        self._keep(module, "metric_value", self.metric_value, set(metrics))

    def _count_rejected(self, module: str, verdict: Verdict) -> None:
        """Count the samples dropped since the module's last tick (a tick's data overlaps
        the last one's: each sample is counted once, by its time). The series of each
        metric a rule judged start at 0, so that a first rejection is an increase."""
        declared = self._rejected_declared.setdefault(module, set())
        for metric in {r.metric for r in verdict.results} - declared:
            declared.add(metric)
            for version in Version:
                for reason in RejectReason:
                    self.samples_rejected.labels(module, version.value, metric, reason.value)
        since = self._rejected_until.get(module, -math.inf)
        for r in verdict.rejected:
            new = sum(1 for t in r.times if since < t <= verdict.at)
            if new:
                self.samples_rejected.labels(module, r.version.value, r.metric,
                                             r.reason.value).inc(new)
        self._rejected_until[module] = max(since, verdict.at)

    def source_error(self, source: str, error: BaseException | str) -> None:
        """Count one failed fetch of ``source`` (a :class:`SourceError` or a kind name)."""
        kind = error if isinstance(error, str) else error_kind(error)
        self.source_errors.labels(source, kind).inc()

    def source_errors_of(self, source: str, errors: Iterable[BaseException]) -> None:
        """Count each error of a source's ``last_errors`` after a fetch."""
        for err in errors:
            self.source_error(source, err)

    def actuator_failure(self, actuator: str) -> None:
        self.actuator_failures.labels(actuator).inc()

    # read by the API ----------------------------------------------------------------------

    def last_verdict(self, module: str) -> LastVerdict | None:
        with self._lock:
            return self._last.get(module)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, made once: prometheus_client checks the label
        values on every call, about 40 a tick (recording a tick of 5 rules took 235 µs,
        93-154 µs with the children kept, on a slow machine). A child removed from its
        metric (:meth:`_keep`) is forgotten here too."""
        children = self._children.setdefault(id(metric), {})
        child = children.get(labels)
        if child is None:
            child = children[labels] = metric.labels(*labels)
        return child

    def _keep(self, module: str, name: str, gauge: Gauge, now: set[tuple[str, ...]]) -> None:
        before = self._seen.get((module, name), set())
        children = self._children.get(id(gauge), {})
        for labels in before - now:
            gauge.remove(*labels)
            children.pop(labels, None)
        self._seen[(module, name)] = now


ERROR_KINDS = ("unavailable", "timeout", "bad_query", "empty_result", "error", "internal")


def error_kind(error: BaseException) -> str:
    if isinstance(error, DeadlineExceeded):  # the reads missed the tick's deadline
        return "timeout"
    if isinstance(error, SourceUnavailable):
        return "unavailable"
    if isinstance(error, BadQuery):
        return "bad_query"
    if isinstance(error, EmptyResult):
        return "empty_result"
    return "error" if isinstance(error, SourceError) else "internal"


def rule_state_of(result: RuleResult, phase: AlertPhase) -> str:
    """firing / pending from the rule's alert; otherwise ok, or without a verdict warming,
    inapplicable or inconclusive (the one that holds the rollout)."""
    if phase is not AlertPhase.INACTIVE:
        return phase.value
    return unsettled_state(result.outcome.value) if result.breached is None else "ok"


def rule_numbers(result: RuleResult) -> tuple[float | None, float | None]:
    """(what the rule compared, the limit) from its evidence; None where it has none."""
    ev = result.evidence
    value = next((_number(ev.get(k)) for k in _VALUE_KEYS if _number(ev.get(k)) is not None),
                 None)
    limit = next((_number(ev.get(k)) for k in _LIMIT_KEYS if _number(ev.get(k)) is not None),
                 None)
    return value, limit


def _metric_values(result: RuleResult) -> list[tuple[Version, float]]:
    ev = result.evidence
    found: list[tuple[Version, float]] = []
    observed = _number(ev.get("observed"))
    if observed is not None:
        found.append((Version.V2, observed))
    reference = _number(ev.get("reference"))
    if reference is not None and ev.get("against") == "live_v1":
        found.append((Version.V1, reference))
    return found


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


