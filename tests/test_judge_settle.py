"""``settle_min``: how long a settling metric's breach does not count at all.

For V2's first ``settle_min`` a slow warm-up and a step regression look alike at a 5 %
share; after it, a breach counts unless V2's excess is still falling. The default is 3
minutes: at 2 minutes warm-ups that plateau for a minute or two were rolled back (the
false rollbacks of aa-warmup-long-641 and of 7 more of ~2,200 healthy synthetic
rollouts), at the price of a regression present from V2's start being judged a minute
later.
"""

from __future__ import annotations

from pathlib import Path

from watchdog.backtest import replay
from watchdog.backtest.scenario import load_scenario
from watchdog.config.loader import RuleSet, default_rules_text, load_default_rules, load_texts

DATA = Path(__file__).parent / "data"


def _with_settle_min(value: str) -> RuleSet:
    text = default_rules_text()
    anchor = "        settle: 10m\n"
    assert text.count(anchor) == 1  # latency's
    return load_texts([("settle.yaml", text.replace(
        anchor, f"{anchor}        settle_min: {value}\n"))])


def test_a_warm_up_that_plateaus_is_not_rolled_back_by_default() -> None:
    # bench/synth.py --seed 640: V2's latency x1.6 for two minutes, then decaying
    scenario = load_scenario(DATA / "synthetic" / "aa-warmup-long-641.jsonl")
    assert replay.run(scenario, load_default_rules()).outcome == "promoted"
    early = replay.run(scenario, _with_settle_min("2m"))
    assert early.outcome == "rolled_back" and early.rollback_at == 130


def test_a_regression_from_the_start_is_judged_once_settle_min_has_passed() -> None:
    scenario = load_scenario(DATA / "scenarios" / "reg-latency-x1.4-1388.jsonl")
    default = replay.run(scenario, load_default_rules())
    assert default.outcome == "rolled_back" and default.rollback_at == 190  # 3m + for 10s
    sooner = replay.run(scenario, _with_settle_min("2m"))
    assert sooner.outcome == "rolled_back" and sooner.rollback_at == 130
