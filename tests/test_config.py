"""Rule files in, validated models out: the loader, the schema, durations and percentages.

The shipped examples under rules/ are tested here too: they must load, and they must say
what the migration plans they encode ask for (the numbers are in each file's header).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from watchdog.config.loader import (
    RuleSet,
    default_rules_text,
    load_default_rules,
    load_paths,
    load_texts,
    rule_files,
)
from watchdog.config.schema import (
    AbsoluteRule,
    BurstsRule,
    GrowthRule,
    IncreaseRule,
    Module,
    RelativeRule,
    Rule,
)
from watchdog.config.yamlload import load_yaml
from watchdog.durations import format_duration, parse_duration
from watchdog.errors import ConfigError, Issue, UnknownModule
from watchdog.model import Direction, RuleAction, Severity

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rules"
DATA = ROOT / "tests" / "data" / "rules"
EXAMPLES = sorted(p for p in RULES.glob("*.yaml") if p.name != "default.yaml")
DEFAULT_RULE_NAMES = {"latency_p95_regression", "error_rate_regression", "error_bursts",
                      "error_bursts_repeated",
                      "throughput_regression", "parse_rate_regression", "memory_growth"}
DEFAULT_METRICS = {"latency_p95_ms", "error_rate", "throughput_rps", "parse_rate",
                   "memory_rss_bytes"}


def load_one(text: str, file: str = "test.yaml") -> RuleSet:
    return load_texts([(file, text)])


def module_of(text: str) -> Module:
    ruleset = load_one(text)
    assert len(ruleset.modules) == 1
    return next(iter(ruleset.modules.values()))


def issues_of(text: str, file: str = "test.yaml") -> list[Issue]:
    with pytest.raises(ConfigError) as caught:
        load_one(text, file)
    return caught.value.issues


def rule_yaml(fields: str, metric: str = "latency_p95_ms",
              direction: str = "higher_is_worse") -> str:
    """A one-module, one-rule file; ``fields`` are the rule's lines after name and metric."""
    body = "\n".join(f"        {line}" for line in fields.strip().splitlines())
    return (f"modules:\n"
            f"  - name: checkout\n"
            f"    metrics:\n"
            f"      {metric}: {{direction: {direction}}}\n"
            f"    rules:\n"
            f"      - name: r\n"
            f"        metric: {metric}\n"
            f"{body}\n")


def rule_of(fields: str, **kwargs: str) -> Rule:
    (rule,) = module_of(rule_yaml(fields, **kwargs)).rules
    return rule


def rule_named(module: Module, name: str) -> Rule:
    found = [r for r in module.rules if r.name == name]
    assert found, f"{module.name} has no rule {name!r}: {[r.name for r in module.rules]}"
    return found[0]


# --- the shipped files -------------------------------------------------------------------


def test_the_two_default_rule_files_are_byte_identical() -> None:
    shipped = ROOT / "watchdog" / "defaults" / "default.yaml"
    copy = RULES / "default.yaml"
    assert shipped.read_bytes() == copy.read_bytes()
    assert default_rules_text().encode("utf-8") == shipped.read_bytes()


def test_default_rules_declare_the_fallback_module_for_the_standard_metrics() -> None:
    ruleset = load_default_rules()
    assert list(ruleset.modules) == ["*"]
    star = ruleset.modules["*"]
    assert set(star.metrics) == DEFAULT_METRICS
    assert {r.name for r in star.rules} == DEFAULT_RULE_NAMES
    assert [s.traffic for s in star.plan.stages] == [5, 25, 50, 75, 90, 100]


def test_there_is_one_example_per_plan_situation() -> None:
    assert [p.name for p in EXAMPLES] == ["protocol_v3.yaml", "streaming_parser.yaml",
                                          "sync_service.yaml", "transaction_pool.yaml",
                                          "worker_pool.yaml"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_loads_on_its_own(path: Path) -> None:
    ruleset = load_paths([path])
    assert ruleset.modules
    assert ruleset.files == (str(path),)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_example_names_the_plan_it_encodes(path: Path) -> None:
    header = path.read_text("utf-8").split("\nmodules:")[0]
    assert "Plan" in header and "Numbers encoded" in header


def test_the_rules_folder_loads_as_one_set() -> None:
    ruleset = load_paths([RULES])
    assert set(ruleset.modules) == {
        "*", "transaction_pool", "sync_service", "dspex.python_pool", "smart_streaming",
        "dwcp.transport", "dwcp.compression", "dwcp.prediction", "dwcp.state_sync",
        "dwcp.consensus", "dwcp.placement"}
    assert len(ruleset.files) == 6


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    return load_paths([RULES])


def test_transaction_pool_encodes_plan_001(shipped: RuleSet) -> None:
    pool = shipped.modules["transaction_pool"]
    assert [s.traffic for s in pool.plan.stages] == [5, 25, 50, 75, 90, 100]
    assert [pool.plan.hold_of(i) for i in range(6)] == [3600.0] * 5 + [48 * 3600.0]
    assert pool.plan.failure_limits.consecutive == 3
    assert pool.interval == 60.0

    latency = rule_named(pool, "latency_p95_regression")
    assert isinstance(latency, RelativeRule)
    assert (latency.against, latency.max_increase, latency.test) == ("baseline", 0.25,
                                                                     "sequential")
    doubled = rule_named(pool, "latency_doubled")
    assert isinstance(doubled, RelativeRule)
    assert (doubled.against, doubled.max_increase) == ("baseline", 1.0)
    throughput = rule_named(pool, "throughput_regression")
    assert isinstance(throughput, RelativeRule)
    assert (throughput.against, throughput.max_decrease) == ("baseline", 0.15)
    memory = rule_named(pool, "memory_regression")
    assert isinstance(memory, RelativeRule)
    assert (memory.against, memory.max_increase) == ("baseline", 0.20)
    errors = rule_named(pool, "error_rate_above_2pct")
    assert isinstance(errors, AbsoluteRule)
    assert (errors.above, errors.for_, errors.action) == (0.02, 30.0, RuleAction.ROLLBACK)
    queue = rule_named(pool, "queue_size_above_10k")
    assert isinstance(queue, AbsoluteRule) and queue.above == 10_000


def test_transaction_pool_overrides_defaults_it_does_not_fit(shipped: RuleSet) -> None:
    pool = shipped.modules["transaction_pool"]
    assert set(pool.metrics) >= DEFAULT_METRICS
    assert {r.name for r in pool.rules} >= DEFAULT_RULE_NAMES
    # the module's own latency metric and rule replace the defaults of the same name
    assert "txpool_inclusion_seconds" in (pool.metrics["latency_p95_ms"].query or "")
    assert len([r for r in pool.rules if r.name == "latency_p95_regression"]) == 1
    # a transaction pool parses nothing: the default parse-rate rule must not hold it
    parse = rule_named(pool, "parse_rate_regression")
    assert parse.dry_run and parse.action is RuleAction.NOTIFY


def test_sync_service_encodes_plan_001(shipped: RuleSet) -> None:
    sync = shipped.modules["sync_service"]
    peers = rule_named(sync, "peers_below_5")
    assert isinstance(peers, AbsoluteRule)
    assert (peers.below, peers.for_, peers.severity, peers.action) == (
        5, 60.0, Severity.WARNING, RuleAction.HOLD)
    assert peers.keep_firing_for > 0
    speed = rule_named(sync, "sync_speed_vs_v1")
    assert isinstance(speed, RelativeRule)
    assert (speed.against, speed.max_decrease) == ("auto", 0.20)
    leak = rule_named(sync, "memory_leak")
    assert isinstance(leak, GrowthRule)
    assert leak.max_growth_per_hour == 0.05 and leak.window >= 3 * leak.envelope
    assert sync.warmup_of("memory_rss_bytes") == 600.0
    assert sync.warmup_of("connected_peers") == 120.0


def test_streaming_parser_encodes_plan_004(shipped: RuleSet) -> None:
    stream = shipped.modules["smart_streaming"]
    assert [(s.traffic, s.hold) for s in stream.plan.stages] == [
        (25, 12 * 3600.0), (50, 8 * 3600.0), (75, 4 * 3600.0), (100, 3 * 86400.0)]
    parse = rule_named(stream, "parse_rate_below_90pct")
    assert isinstance(parse, AbsoluteRule)
    assert (parse.below, parse.action) == (0.90, RuleAction.ROLLBACK)
    failures = rule_named(stream, "connection_failures_per_hour")
    assert isinstance(failures, IncreaseRule)
    assert (failures.above, failures.window, failures.action) == (3, 3600.0,
                                                                  RuleAction.ROLLBACK)
    memory = rule_named(stream, "memory_above_80pct")
    assert isinstance(memory, AbsoluteRule) and memory.above == 0.80
    errors = rule_named(stream, "unhandled_errors_up_50pct")
    assert isinstance(errors, RelativeRule) and errors.max_increase == 0.50
    # include_defaults: the standard rules are there as well
    assert {r.name for r in stream.rules} >= DEFAULT_RULE_NAMES


def test_protocol_components_are_modules_with_the_plan_002_schedule(shipped: RuleSet) -> None:
    stages = {name: [s.traffic for s in m.plan.stages]
              for name, m in shipped.modules.items() if name.startswith("dwcp.")}
    # one plan for the group dwcp (issue 20): each component joins at its stage
    # (tests/test_groups.py), and 25 % is the partial rollback's stage
    assert stages == {name: [10, 25, 50, 100] for name in (
        "dwcp.transport", "dwcp.compression", "dwcp.prediction", "dwcp.state_sync",
        "dwcp.consensus", "dwcp.placement")}
    transport = shipped.modules["dwcp.transport"]
    assert transport.plan.hold == 7 * 86400.0
    shared = {"error_rate_above_1pct", "latency_2x_baseline", "throughput_degradation_20pct",
              "error_rate_target"}
    for name in stages:
        module = shipped.modules[name]
        assert shared <= {r.name for r in module.rules}, name
        # YAML aliases share one definition: every component gets the same rule
        assert rule_named(module, "latency_2x_baseline") == rule_named(
            transport, "latency_2x_baseline")
    errors = rule_named(transport, "error_rate_above_1pct")
    assert isinstance(errors, AbsoluteRule) and errors.above == 0.01
    latency = rule_named(transport, "latency_2x_baseline")
    assert isinstance(latency, RelativeRule) and latency.max_increase == 1.0


def test_worker_pool_compares_with_v1_and_checks_results(shipped: RuleSet) -> None:
    pool = shipped.modules["dspex.python_pool"]
    errors = rule_named(pool, "error_rate_vs_v1")
    assert isinstance(errors, RelativeRule)
    assert (errors.against, errors.max_increase, errors.min_effect) == ("auto", 0.0, 0.002)
    assert errors.min_samples == 10
    bursts = rule_named(pool, "error_bursts_vs_v1")
    assert isinstance(bursts, RelativeRule)
    assert (bursts.test, bursts.aggregate) == ("none", "mean")  # a burst is not trimmed away
    latency = rule_named(pool, "latency_p99_vs_live_v1")
    assert isinstance(latency, RelativeRule)
    assert (latency.against, latency.action) == ("live", RuleAction.NOTIFY)
    mismatch = rule_named(pool, "result_mismatch")
    assert isinstance(mismatch, IncreaseRule) and mismatch.above == 0


def test_a_rule_against_live_v1_does_not_hold_the_last_stage(shipped: RuleSet) -> None:
    """At 100 % V1 serves nothing: every shipped rule `against: live` must then say it does
    not apply (it is not missing data), so it never holds the last stage for ever."""
    from watchdog.judge.context import EvalContext
    from watchdog.judge.relative import evaluate_relative
    from watchdog.judge.series import SeriesStore
    from watchdog.model import Sample, Version

    checked = 0
    for name, module in shipped.modules.items():
        for rule in module.rules:
            if not (isinstance(rule, RelativeRule) and rule.against == "live"):
                continue
            # V2 alone for the last ten minutes, as at the 100 % stage
            samples = [Sample(float(t), name, Version.V2, rule.metric, 1.0)
                       for t in range(3000, 3601, int(module.interval))]
            ctx = EvalContext(module=module, now=3600.0, started_at=0.0,
                              series=SeriesStore.of(samples), baselines={},
                              traffic_percent=100.0)
            result = evaluate_relative(rule, ctx)
            assert result.breached is None and result.evidence.get("inapplicable"), \
                f"{name}.{rule.name}: {result.summary}"
            checked += 1
    assert checked  # the shipped defaults judge throughput against live V1


def test_examples_cover_every_rule_feature(shipped: RuleSet) -> None:
    modules = [m for name, m in shipped.modules.items() if name != "*"]
    rules = [r for m in modules for r in m.rules]
    assert {type(r) for r in rules} >= {RelativeRule, AbsoluteRule, GrowthRule, IncreaseRule}
    assert {r.action for r in rules} == set(RuleAction)
    assert {r.severity for r in rules} == set(Severity)
    relative = [r for r in rules if isinstance(r, RelativeRule)]
    assert {r.against for r in relative} == {"baseline", "live", "auto"}
    assert any(r.drift_guard is not None for r in relative)
    assert any(r.min_effect > 0 for r in relative)
    assert any(r.dry_run for r in rules)
    assert any(r.for_ > 0 for r in rules)
    assert any(r.keep_firing_for > 0 for r in rules)
    assert any(r.labels for r in rules)
    assert any(r.min_samples != type(r).model_fields["min_samples"].default for r in rules)
    assert any(m.include_defaults for m in modules)
    annotated = [r for r in rules if not r.dry_run and r.action is RuleAction.ROLLBACK]
    assert all(r.annotations.get("summary") for r in annotated)
    assert sum("runbook_url" in r.annotations for r in annotated) >= 10


def test_every_example_metric_says_how_to_fetch_it_per_version(shipped: RuleSet) -> None:
    for name, module in shipped.modules.items():
        for metric, spec in module.metrics.items():
            assert spec.query or spec.scrape, f"{name}.{metric}"
            if spec.query:
                assert "{module}" in spec.query and "{version}" in spec.query, (
                    f"{name}.{metric}")


def test_every_example_rule_can_gather_its_evidence_at_its_interval(shipped: RuleSet) -> None:
    """A window that holds fewer than min_samples samples is inconclusive forever, and an
    inconclusive hold/rollback rule holds the rollout: a rule sized for the defaults' 10 s
    interval in a module sampled once a minute would block it. Every rule, including the
    defaults a module includes, must fit its module's interval."""
    for name, module in shipped.modules.items():
        for rule in module.rules:
            where = f"{name}.{rule.name}"
            assert rule.window >= rule.min_samples * module.interval, where
            if isinstance(rule, GrowthRule):
                assert rule.envelope >= 2 * module.interval, where  # 2 samples per block


def test_transaction_pool_replaces_the_default_error_rule_sized_for_10s() -> None:
    star = load_default_rules().modules["*"]
    default = rule_named(star, "error_rate_regression")
    assert default.window < default.min_samples * 60.0  # too short at one sample a minute
    pool = load_paths([RULES / "transaction_pool.yaml"]).modules["transaction_pool"]
    own = rule_named(pool, "error_rate_regression")
    assert own != default and own.window >= own.min_samples * pool.interval


def test_every_example_rule_can_act_only_through_critical_rollbacks(shipped: RuleSet) -> None:
    for module in shipped.modules.values():
        for rule in module.rules:
            if rule.action is RuleAction.ROLLBACK:
                assert rule.severity is Severity.CRITICAL


# --- good fixtures ------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((DATA / "good").glob("*.yaml")), ids=lambda p: p.name)
def test_good_fixture_loads(path: Path) -> None:
    assert load_paths([path]).modules


def test_every_field_fixture_is_read_as_written() -> None:
    module = load_paths([DATA / "good" / "every_field.yaml"]).modules["payments.api"]
    assert (module.interval, module.warmup) == (15.0, 90.0)
    assert module.labels == {"team": "payments"}
    latency = module.metrics["latency_p95_ms"]
    assert latency.scrape is not None and latency.scrape.quantile == 0.95
    assert (latency.warmup, latency.noise_floor, latency.unit) == (120.0, 1.5, "ms")
    errors = module.metrics["error_rate"].scrape
    assert errors is not None
    assert (errors.type, errors.denominator, errors.labels) == (
        "counter", "http_requests_total", {"handler": "/pay"})
    assert module.metrics["memory_rss_bytes"].direction is Direction.GROWTH_IS_WORSE
    assert module.metrics["memory_rss_bytes"].scrape.type == "gauge"  # type: ignore[union-attr]

    by_name = {r.name: r for r in module.rules}
    rel = by_name["latency_vs_baseline"]
    assert isinstance(rel, RelativeRule)
    assert (rel.max_increase, rel.aggregate, rel.alpha, rel.min_effect, rel.drift_guard) == (
        0.125, "p95", 0.01, 2.0, 0.2)
    assert (rel.window, rel.for_, rel.keep_firing_for, rel.min_samples) == (
        300.0, 5400.0, 0.5, 10)
    assert rel.annotations["runbook_url"].startswith("https://")
    live = by_name["throughput_vs_live"]
    assert isinstance(live, RelativeRule)
    assert (live.against, live.max_decrease, live.window) == ("live", 0.15, 90.0)
    assert (latency.settle, module.metrics["throughput_rps"].settle_with) == (
        600.0, "latency_p95_ms")
    errors_rule = by_name["errors_vs_live"]
    assert isinstance(errors_rule, RelativeRule)
    assert (errors_rule.max_increase, errors_rule.min_effect, errors_rule.baseline_tolerance,
            errors_rule.estimator, errors_rule.noise, errors_rule.window,
            errors_rule.long_window, errors_rule.scan_threshold, errors_rule.exact_alpha) == (
        0.5, 0.003, 1.0, "winsorised", "binomial", 60.0, 300.0, 9.5, 0.004)
    bursts = by_name["error_bursts"]
    assert isinstance(bursts, BurstsRule)
    assert (bursts.against, bursts.min_run, bursts.episodes, bursts.sigmas, bursts.min_effect,
            bursts.noise, bursts.window) == ("live", 4, 2, 2.5, 0.03, "binomial", 900.0)
    growth = by_name["memory_growth"]
    assert isinstance(growth, GrowthRule)
    assert (growth.max_growth_per_hour, growth.window, growth.envelope) == (0.1, 3600.0,
                                                                            1200.0)
    assert growth.dry_run and growth.severity is Severity.INFO
    increase = by_name["failures_per_hour"]
    assert isinstance(increase, IncreaseRule)
    assert (increase.above, increase.window, increase.min_samples) == (3, 3600.0, 4)
    assert [(s.traffic, module.plan.hold_of(i)) for i, s in enumerate(module.plan.stages)] == [
        (1, 7200.0), (5, 1800.0), (50, 7200.0), (100, 7200.0)]
    assert (module.plan.failure_limits.consecutive, module.plan.failure_limits.cumulative) == (
        2, 4)
    assert module.plan.max_inconclusive == 1200.0


def test_defaults_of_a_bare_rule() -> None:
    rule = rule_of("kind: relative\nmax_increase: 10%")
    assert isinstance(rule, RelativeRule)
    assert (rule.against, rule.aggregate, rule.test, rule.alpha) == ("auto", "mean", "none",
                                                                     0.001)
    assert (rule.window, rule.for_, rule.keep_firing_for, rule.min_samples) == (60.0, 0.0,
                                                                                0.0, 3)
    assert (rule.severity, rule.action, rule.dry_run) == (Severity.WARNING, RuleAction.NOTIFY,
                                                          False)
    growth = rule_of("kind: growth\nmax_growth_per_hour: 10%", metric="mem",
                     direction="growth_is_worse")
    assert isinstance(growth, GrowthRule)
    assert (growth.window, growth.envelope) == (1200.0, 300.0)
    increase = rule_of("kind: increase\nabove: 3", metric="fails")
    assert isinstance(increase, IncreaseRule)
    assert (increase.window, increase.min_samples) == (3600.0, 2)


def test_models_are_immutable() -> None:
    rule = rule_of("kind: absolute\nabove: 5")
    with pytest.raises(ValidationError):
        rule.above = 6  # type: ignore[misc]


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("10m", 600.0), ("1h30m", 5400.0), ("2d", 172800.0), ("1w", 604800.0),
    ("500ms", 0.5), ("1.5h", 5400.0), ("0", 0.0), ("0s", 0.0), (" 5m ", 300.0),
    (45, 45.0), (2.5, 2.5), (0, 0.0),
])
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("value", "message"), [
    ("-5m", "must not be negative"), (-1, "must not be negative"),
    ("10", "expected a duration"), ("10 minutes", "expected a duration"),
    ("5 m", "expected a duration"), ("1h-5m", "expected a duration"), ("m", "expected a"),
    ("", "empty string"), (True, "boolean"), (None, "expected a duration"),
    ([5], "expected a duration"), (math.inf, "finite"), (math.nan, "finite"),
])
def test_bad_durations_are_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)


@pytest.mark.parametrize(("seconds", "text"), [
    (600, "10m"), (5400, "1h30m"), (0.5, "500ms"), (0, "0s"), (90061, "1d1h1m1s"),
])
def test_durations_format_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


def test_durations_in_rules_accept_every_spelling() -> None:
    rule = rule_of("kind: absolute\nabove: 1\nwindow: 1h30m\nfor: 90\nkeep_firing_for: 500ms")
    assert (rule.window, rule.for_, rule.keep_firing_for) == (5400.0, 90.0, 0.5)


def test_a_negative_duration_is_reported_at_its_line() -> None:
    (issue,) = issues_of(rule_yaml("kind: absolute\nabove: 1\nfor: -1m"))
    assert (issue.file, issue.line) == ("test.yaml", 10)
    assert issue.message == ("modules[0].rules[0].for: duration must not be negative, "
                             "got '-1m'")


def test_a_zero_window_is_refused() -> None:
    (issue,) = issues_of(rule_yaml("kind: absolute\nabove: 1\nwindow: 0s"))
    assert issue.line == 10 and "greater than 0" in issue.message


# --- percentages --------------------------------------------------------------------------


@pytest.mark.parametrize(("written", "fraction"), [
    ("25%", 0.25), ("12.5%", 0.125), ("0%", 0.0), ("150%", 1.5), ("100%", 1.0),
    ("0.25", 0.25), ("1", 1.0), ("'7 %'", 0.07),
])
def test_percentages_are_fractions(written: str, fraction: float) -> None:
    rule = rule_of(f"kind: relative\nmax_increase: {written}")
    assert isinstance(rule, RelativeRule)
    assert rule.max_increase == pytest.approx(fraction)


@pytest.mark.parametrize(("written", "message"), [
    ("-5%", "must not be negative"), ("-0.1", "must not be negative"),
    ("abc%", "expected a percentage"), ("'25'", "expected a percentage such as 25%"),
    ("true", "expected a percentage"), ("[25]", "expected a percentage"),
])
def test_bad_percentages_are_refused_at_their_line(written: str, message: str) -> None:
    (issue,) = issues_of(rule_yaml(f"kind: relative\nmax_increase: {written}"))
    assert issue.line == 9
    assert "max_increase" in issue.message and message in issue.message


@pytest.mark.parametrize(("written", "message"), [
    ("100%", "max_decrease must be below 100%"), ("150%", "max_decrease must be below 100%"),
    ("1.5", "a plain number is a fraction (0.25 = 25%)")])
def test_a_decrease_of_100_percent_or_more_is_refused(written: str, message: str) -> None:
    (issue,) = issues_of(rule_yaml(f"kind: relative\nmax_decrease: {written}",
                                   metric="throughput_rps", direction="lower_is_worse"))
    assert issue.line == 9
    assert message in issue.message


@pytest.mark.parametrize("written", ["25", "nan%", "inf%", "'nan'"])
def test_ambiguous_or_non_finite_percentages_are_refused(written: str) -> None:
    (issue,) = issues_of(rule_yaml(f"kind: relative\nmax_increase: {written}"))
    assert issue.line == 9


@pytest.mark.parametrize(("stages", "line", "message"), [
    ("[5, 120]", 4, "less than or equal to 100"), ("[0, 100]", 4, "greater than 0"),
    ("[-5, 100]", 4, "greater than 0"), ("[5, 50]", 3, "the last stage must be 100"),
    ("[50, 50, 100]", 4, "stages must increase strictly"), ("[]", 4, "at least 1 item"),
])
def test_stage_percentages_are_checked(stages: str, line: int, message: str) -> None:
    text = ("modules:\n  - name: checkout\n    plan:\n"
            f"      stages: {stages}\n")
    (issue,) = issues_of(text)
    assert issue.line == line and message in issue.message


def test_a_drift_guard_is_a_percentage_too() -> None:
    rule = rule_of("kind: relative\nmax_increase: 10%\ndrift_guard: 15%")
    assert isinstance(rule, RelativeRule) and rule.drift_guard == pytest.approx(0.15)


# --- the "*" module -----------------------------------------------------------------------


def test_undeclared_modules_fall_back_to_the_star_module() -> None:
    ruleset = load_paths([DATA / "good" / "fallback.yaml", DATA / "good" / "minimal.yaml"])
    declared = ruleset.for_module("checkout")
    assert declared is ruleset.modules["checkout"]
    fallback = ruleset.for_module("inventory")
    assert fallback.name == "inventory"
    assert [r.name for r in fallback.rules] == ["errors_above_5pct"]
    assert [s.traffic for s in fallback.plan.stages] == [10, 100]
    assert ruleset.modules["*"].name == "*"  # the template itself is unchanged


def test_without_a_star_module_an_undeclared_module_is_an_error() -> None:
    ruleset = load_paths([DATA / "good" / "minimal.yaml"])
    with pytest.raises(UnknownModule, match=r"no rules declare module 'inventory' "
                                            r"\(declared: checkout\)"):
        ruleset.for_module("inventory")


def test_the_shipped_defaults_serve_any_module() -> None:
    module = load_default_rules().for_module("checkout")
    assert module.name == "checkout" and set(module.metrics) == DEFAULT_METRICS


# --- include_defaults ---------------------------------------------------------------------


def test_include_defaults_merges_metrics_rules_and_plan() -> None:
    module = load_paths([DATA / "good" / "with_defaults.yaml"]).modules["search"]
    star = load_default_rules().modules["*"]
    assert set(module.metrics) == DEFAULT_METRICS | {"queue_size"}
    # the module's own metric spec wins over the default of the same name
    assert module.metrics["latency_p95_ms"].query == (
        'search_latency_p95_ms{module="{module}",version="{version}"}')
    assert module.metrics["error_rate"] == star.metrics["error_rate"]
    # own rules first (so their lines are unchanged), then defaults not overridden
    names = [r.name for r in module.rules]
    assert names[:2] == ["latency_p95_regression", "queue_above_10k"]
    assert sorted(names[2:]) == sorted(DEFAULT_RULE_NAMES - {"latency_p95_regression"})
    own = rule_named(module, "latency_p95_regression")
    assert isinstance(own, RelativeRule) and own.max_increase == 0.25
    assert own.test == "none"  # the default's `test: sequential` is not mixed in
    # interval and plan come from the defaults when the module does not set them
    assert module.interval == star.interval == 10.0
    assert module.plan == star.plan


def test_include_defaults_keeps_what_the_module_sets() -> None:
    module = module_of("modules:\n  - name: a\n    include_defaults: true\n"
                       "    interval: 1m\n    plan: {stages: [50, 100], hold: 1h}\n")
    assert module.interval == 60.0
    assert [s.traffic for s in module.plan.stages] == [50, 100]
    assert {r.name for r in module.rules} == DEFAULT_RULE_NAMES


def test_without_include_defaults_nothing_is_merged() -> None:
    module = load_paths([DATA / "good" / "minimal.yaml"]).modules["checkout"]
    assert set(module.metrics) == {"latency_p95_ms"}
    assert [r.name for r in module.rules] == ["latency_regression"]


def test_errors_in_a_module_with_defaults_keep_their_own_lines() -> None:
    text = ("modules:\n"
            "  - name: a\n"
            "    include_defaults: true\n"
            "    rules:\n"
            "      - name: slow\n"
            "        kind: absolute\n"
            "        metric: latency_p99_ms\n")
    issues = issues_of(text)
    assert [(i.line, i.message) for i in issues] == [
        (5, "modules[0].rules[0]: give above, below, or both")]


def test_a_module_with_defaults_may_use_default_metrics_in_its_rules() -> None:
    text = ("modules:\n  - name: a\n    include_defaults: true\n    rules:\n"
            "      - {name: p, kind: absolute, metric: parse_rate, below: 0.9}\n")
    assert rule_named(module_of(text), "p").metric == "parse_rate"


# --- the loader: all or nothing, every problem with its file and line ---------------------


def test_one_bad_file_loads_nothing_and_names_only_itself() -> None:
    good, bad = DATA / "mixed" / "a_good.yaml", DATA / "mixed" / "b_bad.yaml"
    with pytest.raises(ConfigError) as caught:
        load_paths([DATA / "mixed"])
    assert [(i.file, i.line) for i in caught.value.issues] == [(str(bad), 10)]
    assert "severity" in caught.value.issues[0].message
    assert load_paths([good]).modules  # the good one alone is fine


def test_every_problem_of_every_file_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_texts([("one.yaml", rule_yaml("kind: absolute\nabove: 1\nfor: -1m")),
                    ("two.yaml", "modules: [}"),
                    ("three.yaml", rule_yaml("kind: nope"))])
    assert [(i.file, i.line) for i in caught.value.issues] == [
        ("one.yaml", 10), ("two.yaml", 1), ("three.yaml", 8)]


def test_a_module_declared_twice_names_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text((DATA / "good" / "minimal.yaml").read_text("utf-8"))
    (tmp_path / "b.yaml").write_text("\n" + (DATA / "good" / "minimal.yaml").read_text("utf-8"))
    with pytest.raises(ConfigError) as caught:
        load_paths([tmp_path])
    (issue,) = caught.value.issues
    assert (issue.file, issue.line) == (str(tmp_path / "b.yaml"), 4)
    assert f"module 'checkout' is already declared at {tmp_path / 'a.yaml'}:3" in issue.message


def test_folders_are_searched_recursively_skipping_tests(tmp_path: Path) -> None:
    minimal = (DATA / "good" / "minimal.yaml").read_text("utf-8")
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "x.yml").write_text(minimal)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "case.yaml").write_text("not: [valid")
    (tmp_path / "notes.txt").write_text("ignored")
    assert rule_files([tmp_path]) == [tmp_path / "team" / "x.yml"]
    assert set(load_paths([tmp_path]).modules) == {"checkout"}


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no rule files"):
        load_paths([tmp_path])


def test_an_unreadable_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as caught:
        load_paths([missing])
    (issue,) = caught.value.issues
    assert issue.file == str(missing) and "cannot read" in issue.message
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00modules")
    with pytest.raises(ConfigError, match="cannot read"):
        load_paths([binary])


def test_an_empty_file_is_an_error() -> None:
    (issue,) = issues_of("# nothing here\n")
    assert "expected a mapping with a 'modules' list" in issue.message


# --- safe YAML ----------------------------------------------------------------------------


def test_yaml_lines_are_remembered_for_keys_and_items() -> None:
    located = load_yaml("a:\n  b:\n    - 1\n    - x: 2\n", "f.yaml")
    assert located.data == {"a": {"b": [1, {"x": 2}]}}
    assert located.line_of(("a", "b", 1, "x")) == 4
    assert located.line_of(("a", "b", 0)) == 3
    # parts that are not in the document fall back to the deepest one that is
    assert located.line_of(("a", "b", 7, "y")) == 2


def test_anchors_and_aliases_are_plain_data() -> None:
    located = load_yaml("a: &x {k: 1}\nb: *x\n", "f.yaml")
    assert located.data == {"a": {"k": 1}, "b": {"k": 1}}


@pytest.mark.parametrize(("text", "line", "message"), [
    ("a: &x {k: 1}\nb:\n  <<: *x\n", 3, "merge keys (<<) are not supported"),
    ("a: 1\nb: .inf\n", 2, "expected a finite number, got '.inf'"),
    ("a: -.inf\n", 1, "finite"),
    ("a: .NaN\n", 1, "finite"),
    ("a: !!int abc\n", 1, "invalid !!int value 'abc'"),
    ("a: !!timestamp abc\n", 1, "invalid !!timestamp value 'abc'"),
    ("a: !!binary aGVsbG8=\n", 1, "unsupported YAML tag '!!binary'"),
    ("a: !!set {x, y}\n", 1, "unsupported YAML tag '!!set'"),
    ("a: !!python/tuple [1, 2]\n", 1, "unsupported YAML tag '!!python/tuple'"),
    ("a: !!python/name:os.system\n", 1, "unsupported YAML tag '!!python/name:os.system'"),
    ("a: !local x\n", 1, "unsupported YAML tag '!local'"),
    ("? !!python/name:os.system\n: x\n", 1, "unsupported YAML tag '!!python/name"),
    ("? [1]\n: x\n", 1, "mapping keys must be plain scalars"),
    ("a: 1\na: 2\n", 2, "duplicate key 'a'"),
    ("a: [1\n", 2, "invalid YAML"),
    ("a: 1\n---\nb: 2\n", 2, "invalid YAML"),
])
def test_yaml_that_is_not_plain_data_is_refused(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_yaml(text, "f.yaml")
    assert [(i.file, i.line) for i in caught.value.issues] == [("f.yaml", line)]
    assert message in caught.value.issues[0].message
    assert "\n" not in caught.value.issues[0].message


def test_plain_tags_are_accepted() -> None:
    located = load_yaml("a: !!str 5\nb: !!float 1\nc: !!int '7'\nd: !!map {x: !!seq [1]}\n",
                        "f.yaml")
    assert located.data == {"a": "5", "b": 1.0, "c": 7, "d": {"x": [1]}}


@pytest.mark.parametrize("other", ["nosuch", "throughput_rps"])
def test_settle_with_must_name_another_metric(other: str) -> None:
    text = ("modules:\n"
            "  - name: checkout\n"
            "    metrics:\n"
            "      latency_p95_ms: {direction: higher_is_worse, settle: 5m}\n"
            "      throughput_rps:\n"
            "        direction: lower_is_worse\n"
            f"        settle_with: {other}\n")
    (issue,) = issues_of(text)
    assert (issue.file, issue.line) == ("test.yaml", 7)  # the settle_with line
    assert "settle_with must name another metric of the module" in issue.message
    assert repr(other) in issue.message


def test_settle_with_a_settling_metric_loads() -> None:
    module = module_of("modules:\n"
                       "  - name: checkout\n"
                       "    metrics:\n"
                       "      latency_p95_ms: {direction: higher_is_worse, settle: 5m}\n"
                       "      throughput_rps:\n"
                       "        direction: lower_is_worse\n"
                       "        settle_with: latency_p95_ms\n")
    assert module.metrics["throughput_rps"].settle_with == "latency_p95_ms"


def test_noise_is_observed_or_binomial() -> None:
    rule = module_of(rule_yaml("kind: relative\nmax_increase: 5%\nnoise: binomial")).rules[0]
    assert isinstance(rule, RelativeRule) and rule.noise == "binomial"
    (issue,) = issues_of(rule_yaml("kind: relative\nmax_increase: 5%\nnoise: poisson"))
    assert issue.line == 10 and "binomial" in issue.message
    bursts = module_of(rule_yaml("kind: bursts\nmin_effect: 0.03\nnoise: binomial")).rules[0]
    assert isinstance(bursts, BurstsRule) and bursts.noise == "binomial"
    plain = module_of(rule_yaml("kind: bursts")).rules[0]
    assert isinstance(plain, BurstsRule) and plain.noise == "observed"
    (issue,) = issues_of(rule_yaml("kind: bursts\nnoise: exact"))
    assert issue.line == 9 and "binomial" in issue.message


def test_exact_alpha_is_for_the_exact_count_test_only() -> None:
    rule = module_of(rule_yaml("kind: relative\nmax_increase: 5%\ntest: sequential\n"
                               "noise: binomial\nalpha: 0.0002\nexact_alpha: 0.002")).rules[0]
    assert isinstance(rule, RelativeRule) and (rule.alpha, rule.exact_alpha) == (0.0002, 0.002)
    bare = module_of(rule_yaml("kind: relative\nmax_increase: 5%\ntest: sequential")).rules[0]
    assert isinstance(bare, RelativeRule) and bare.exact_alpha is None
    (issue,) = issues_of(rule_yaml("kind: relative\nmax_increase: 5%\ntest: sequential\n"
                                   "exact_alpha: 0.002"))
    assert issue.line == 11 and "noise: binomial" in issue.message
    (issue,) = issues_of(rule_yaml("kind: relative\nmax_increase: 5%\ntest: sequential\n"
                                   "noise: binomial\nexact_alpha: 0.5"))
    assert issue.line == 12 and "0.5" in issue.message


def test_settle_min_defaults_to_three_minutes_and_is_per_metric() -> None:
    module = module_of("modules:\n"
                       "  - name: checkout\n"
                       "    metrics:\n"
                       "      latency_p95_ms: {direction: higher_is_worse, settle: 5m}\n"
                       "      parse_rate:\n"
                       "        direction: lower_is_worse\n"
                       "        settle: 10m\n"
                       "        settle_min: 90s\n")
    assert module.metrics["latency_p95_ms"].settle_min == 180.0
    assert module.metrics["parse_rate"].settle_min == 90.0
    (issue,) = issues_of("modules:\n"
                         "  - name: checkout\n"
                         "    metrics:\n"
                         "      latency_p95_ms:\n"
                         "        direction: higher_is_worse\n"
                         "        settle_min: soon\n")
    assert (issue.file, issue.line) == ("test.yaml", 6)
