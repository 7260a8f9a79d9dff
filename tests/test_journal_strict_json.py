"""The journal's evidence is strict JSON, whatever the metrics were (issue 16, item 6).

Values of 1e308 wrote ``Infinity``/``NaN`` into the decisions' evidence (Python's
``json.dumps`` allows them by default), after which SQLite's ``json_valid(evidence)`` is 0
and the README's ``json_each(d.evidence)`` query fails with "malformed JSON". Both tests
use a real SQLite journal file and read it back through SQLite's own JSON functions; each
failed before the fix.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from watchdog.config.loader import load_default_rules
from watchdog.config.schema import Module
from watchdog.engine import Engine
from watchdog.journal.store import Journal
from watchdog.judge.series import Series, SeriesStore
from watchdog.model import Action, Decision, Version

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

RULES = load_default_rules()
STEP = 10.0
TYPICAL = {"latency_p95_ms": 180.0, "error_rate": 0.005, "throughput_rps": 50.0,
           "parse_rate": 0.99, "memory_rss_bytes": 5e8}
# the README's query of why each rollback happened
WHY = ("SELECT d.id, json_extract(e.value, '$.rule') AS rule, "
       "json_extract(e.value, '$.summary') FROM decisions AS d, json_each(d.evidence) AS e "
       "WHERE d.action = 'rollback' AND json_extract(e.value, '$.breached') = 1")


class Fixed:
    """A source that returns the samples it holds up to ``end`` (no network here)."""

    name = "fixed"

    def __init__(self, store: SeriesStore) -> None:
        self.store = store

    def fetch(self, module: Module, start: float, end: float) -> SeriesStore:
        return self.store.between(start, end)


def poisoned(end: float) -> SeriesStore:
    """V1 and V2 of every standard metric, V2 with a total error outage (a rollback) and
    every other metric poisoned with 1e308, inf, nan and negative values."""
    times = np.arange(-600.0, end + 1e-9, STEP)
    n = len(times)
    rng = np.random.default_rng(7)
    bad = np.resize(np.array([1e308, math.inf, math.nan, -1.0, -1e308, -math.inf]), n)
    found: dict[tuple[Version, str], Series] = {}
    for metric, level in TYPICAL.items():
        v1 = level * (1.0 + 0.01 * rng.standard_normal(n))
        v1 = np.minimum(v1, 1.0) if metric == "parse_rate" else v1
        v2 = np.where(rng.random(n) < 0.5, bad, v1)
        if metric == "error_rate":
            v2 = np.where(times > 300.0, 1.0, v1)
        found[(Version.V1, metric)] = Series(times, v1)
        found[(Version.V2, metric)] = Series(times, v2)
    return SeriesStore(found)


def test_a_tick_fed_1e308_inf_nan_and_negatives_journals_strict_json(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = Journal(path)
    applied: list[Decision] = []
    end = 900.0
    engine = Engine(RULES, journal, Fixed(poisoned(end)), actuate=applied.append)
    try:
        for now in np.arange(0.0, end + 1e-9, STEP):
            engine.tick("checkout", float(now))
            if applied and applied[-1].action is Action.ROLLBACK:
                break
    finally:
        journal.close()
    assert applied and applied[-1].action is Action.ROLLBACK  # the outage still rolls back
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT id, json_valid(evidence), json_valid(reasons) "
                          "FROM decisions").fetchall()
        assert rows and all(valid == 1 and reasons == 1 for _, valid, reasons in rows), rows
        why = db.execute(WHY).fetchall()  # "malformed JSON" before the fix
    assert {rule for _, rule, _ in why} >= {"error_rate_regression"}


def test_non_finite_evidence_is_written_as_null(tmp_path: Path) -> None:
    """Whatever a rule put in its evidence: NaN and +-inf (Python or numpy floats, nested
    in lists and dicts) are written as JSON null, the rest as it was."""
    path = tmp_path / "journal.db"
    journal = Journal(path)
    evidence = {"rule": "r", "z": math.inf, "p": math.nan, "low": -math.inf,
                "np": np.float64("inf"), "values": [1.5, math.nan, np.float32(2.0)],
                "nested": {"x": (math.inf, 3)}, "n": np.int64(4), "ok": 0.25}
    decision = Decision("checkout", 1.0, Action.HOLD, 5.0, 0, 0, ("why",), (evidence,))
    try:
        journal.record([decision], None, 1.0)
        (read,) = journal.decisions()
    finally:
        journal.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT json_valid(evidence) FROM decisions").fetchone() == (1,)
    assert read.decision.evidence == ({
        "rule": "r", "z": None, "p": None, "low": None, "np": None,
        "values": [1.5, None, 2.0], "nested": {"x": [None, 3]}, "n": 4, "ok": 0.25},)
