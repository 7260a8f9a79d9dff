"""Issue 18, item 4: ``baseline capture`` refuses a baseline it cannot trust (fewer V1
samples than ``--min-samples``, default 10): exit 1, nothing stored; and it prints its
window as times a person reads (ISO 8601 UTC; a replay's simulated seconds as t=...s)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from watchdog.cli.main import cli
from watchdog.journal.store import Journal

SCENARIO = Path(__file__).parent.parent / "data" / "scenarios" / "aa-clean-1000.jsonl"


def stored(db: Path) -> int:
    journal = Journal(db)
    try:
        return len(journal.baselines())
    finally:
        journal.close()


def test_too_few_samples_are_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "j.db"
    # V1 is sampled every 10 s: [-1800, -1770) holds 3 samples of each metric
    few = CliRunner().invoke(cli, ["baseline", "capture", "--scenario", str(SCENARIO),
                                   "--db", str(db), "--from", "-1800", "--to", "-1770"])
    assert few.exit_code == 1, few.output
    assert "only 3 V1 sample(s) of latency_p95_ms for module checkout in " \
           "[t=-1800s, t=-1770s) (at least 10 needed)" in few.stderr
    assert "nothing stored" in few.stderr and "Traceback" not in few.output
    assert stored(db) == 0
    allowed = CliRunner().invoke(cli, ["baseline", "capture", "--scenario", str(SCENARIO),
                                       "--db", str(db), "--from", "-1800", "--to", "-1770",
                                       "--min-samples", "3"])
    assert allowed.exit_code == 0, allowed.output
    assert stored(db) == 5


def test_the_window_is_printed_readably(tmp_path: Path) -> None:
    from watchdog.baseline import iso

    done = CliRunner().invoke(cli, ["baseline", "capture", "--scenario", str(SCENARIO),
                                    "--db", str(tmp_path / "j.db")])
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0].startswith("window t=-1800s .. t=0s (scenario:")
    assert iso(1_700_000_000.25) == "2023-11-14T22:13:20Z"
