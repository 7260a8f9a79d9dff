"""Block Kit content: numbers, limits, escaping, and the shipped sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from watchdog.notifiers.slack_blocks import (
    _rule_state,
    _rule_text,
    _split_rules,
    dashboard_link,
    duration,
    number,
    parent,
    reply,
)
from watchdog.notifiers.slack_sample import sample_payload

ROOT = Path(__file__).resolve().parents[2]


def _all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_docs_sample_is_what_the_builder_sends() -> None:
    shipped = json.loads((ROOT / "docs" / "slack-sample.json").read_text(encoding="utf-8"))
    assert shipped == sample_payload(), (
        "regenerate: python -m watchdog.notifiers.slack_sample > docs/slack-sample.json")
    text = _all_text(shipped["blocks"])
    for expected in ("131.6", "94.02", "98.72", "+40.0%", "z = 6.84", "p = 3.9e-12",
                     "Runbook", "Dashboard", "What to do", "Held for"):
        assert expected in text, expected
    assert shipped["text"]


def test_limits_hold_for_huge_inputs(rollback: Any) -> None:
    many = tuple({"rule": f"rule-{i}", "breached": True, "observed": i * 1.5, "limit": 1.0,
                  "summary": "x" * 5000} for i in range(80))
    msg = reply(rollback("k", title="T" * 400, reasons=("r" * 4000,), evidence=many))
    assert len(msg.blocks) <= 50
    header = msg.blocks[0]
    assert header["type"] == "header" and len(header["text"]["text"]) <= 150
    for block in msg.blocks:
        text = block.get("text", {}).get("text", "")
        assert len(text) <= 3000
        assert len(block.get("fields", [])) <= 10
    assert "… and 50 more rules" in _all_text(msg.blocks)
    assert len(msg.text) <= 3000


def test_user_text_is_escaped(note: Any) -> None:
    msg = reply(note("k", module="a<b>&c", reasons=("<!channel> & co",)))
    text = _all_text(msg.blocks)
    assert "a&lt;b&gt;&amp;c" in text and "&lt;!channel&gt; &amp; co" in text
    assert "<!channel>" not in text and "<!channel>" not in msg.text


def test_resolved_shows_the_current_value(note: Any) -> None:
    resolved = note("r", kind="alert_resolved", action=None, title="latency ok",
                    evidence=({"rule": "latency", "breached": False, "observed": 251.5,
                               "reference": 250.0, "limit": 300.0},))
    text = _all_text(reply(resolved).blocks)
    assert "Current value" in text and "observed *251.5*" in text and ":large_green_circle:" in text


def test_parent_card_states(note: Any, rollback: Any) -> None:
    start = 1_700_000_000.0
    live = parent(note("a", stage=3, traffic=50.0), start)
    assert "in progress" in live.text and "stage 3 · 50 % V2" in live.text
    done = parent(rollback("rb", at=start + 3725), start, final=True)
    assert "ROLLED BACK" in done.text and "ran 1h 02m" in _all_text(done.blocks)


def test_dashboard_template_and_override(note: Any) -> None:
    n = note("k", module="check out", at=1000.0)
    assert dashboard_link("https://g/d?m={module}&f={from_ms}&t={to_ms}", n) == \
        "https://g/d?m=check%20out&f=-2600000&t=1600000"
    n2 = note("k", links={"dashboard": "https://explicit"})
    assert dashboard_link("https://g/{module}", n2) == "https://explicit"
    assert dashboard_link(None, note("k")) is None


def test_formatting_helpers() -> None:
    assert [duration(s) for s in (5, 75, 3725, 90000)] == ["5s", "1m 15s", "1h 02m", "1d 1h"]
    assert [number(v) for v in (412.345, 3, float("inf"), "a<b")] == ["412.3", "3", "∞", "a&lt;b"]


def test_inconclusive_rules_are_not_called_fired(note: Any) -> None:
    n = note("k", kind="inconclusive", action=None, severity="warning",
             evidence=({"rule": "latency", "breached": None, "n_v2": 3,
                        "summary": "3 V2 samples in window, need 10"},))
    text = _all_text(reply(n).blocks)
    assert "Rules without a verdict" in text and "Rules that fired" not in text
    assert "n = 3 V2" in text and "? ref" not in text and "need 10" in text


def test_warming_and_inapplicable_rules_are_not_causes_of_a_hold(note: Any) -> None:
    # an inconclusive hold names the rules that hold it; one still warming up (or not
    # applicable) holds nothing, so it is only listed, as what it is
    n = note("k", kind="inconclusive", action=None, severity="warning", evidence=(
        {"rule": "latency", "breached": None, "outcome": "missing",
         "summary": "3 V2 samples in window, need 10"},
        {"rule": "errors", "breached": None, "outcome": "warming",
         "summary": "V2 is warming up"},
        {"rule": "throughput", "breached": None, "outcome": "inapplicable",
         "summary": "V1 no longer serves"}))
    detailed, others = _split_rules(n)
    assert [e["rule"] for e in detailed] == ["latency"]
    assert [_rule_state(e) for e in others] == ["errors (warming)", "throughput (inapplicable)"]
    text = _all_text(reply(n).blocks)
    assert "Also checked: errors (warming), throughput (inapplicable)" in text
    assert ":hourglass_flowing_sand: warming up" in _rule_text(others[0])
