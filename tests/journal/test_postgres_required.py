"""Without PostgreSQL the PostgreSQL tests skip, and under WATCHDOG_REQUIRE_REAL_SERVICES=1
(set by .ci/run) they fail instead. A pytest of one test in a subprocess, with a plugin
that hides the binaries (the only way to make them missing on a machine that has them)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HIDE = '''
def pytest_plugin_registered(plugin, manager):
    if getattr(plugin, "__name__", "").endswith("conftest") and hasattr(plugin, "find_bin"):
        plugin.find_bin = lambda name: None
'''


@pytest.mark.parametrize(("required", "outcome"), [("0", "1 skipped"), ("1", "1 error")])
def test_missing_postgresql_skips_or_fails(tmp_path: Path, required: str,
                                           outcome: str) -> None:
    (tmp_path / "hide_pg.py").write_text(HIDE)
    target = f"{Path(__file__).with_name('test_journal_migrate.py')}::" \
             "test_a_sqlite_journal_is_copied_to_postgresql_and_back"
    env = {**os.environ, "WATCHDOG_REQUIRE_REAL_SERVICES": required,
           "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                           "-p", "hide_pg", target], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).parents[2], timeout=300, check=False)
    assert outcome in done.stdout, done.stdout[-2000:]
    if required == "1":
        assert done.returncode != 0 and "ensure-postgresql.sh" in done.stdout
