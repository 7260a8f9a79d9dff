"""The daemon's code runs under MemoryDenyWriteExecute=yes.

systemd enforces that setting with a seccomp filter refusing writable+executable mappings;
Linux 6.3+ offers the same policy as ``prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN)``. A
child process turns it on, checks that a W+X mapping is now refused (so the policy is
real), then replays a recorded scenario through the same code the daemon runs (numpy,
scipy, SQLite, the rule engine and the state machine), and makes a ctypes callback (the
classic W+X user, through libffi closures). Without the prctl (older kernel) the test
skips, or fails when WATCHDOG_REQUIRE_REAL_SERVICES=1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIO = Path(__file__).resolve().parents[1] / "data" / "scenarios" / "aa-clean-1000.jsonl"

CHILD = r"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    print("NO-MDWE", ctypes.get_errno()); sys.exit(3)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
except OSError:
    pass
else:
    print("W+X mapping allowed: the policy is not in force"); sys.exit(4)
callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)
assert callback(41) == 42
import httpx, prometheus_client, slack_sdk, apscheduler  # noqa: F401  the daemon's imports
from watchdog.cli.main import cli
sys.argv = ["rollout-watchdog", "backtest", sys.argv[1], "--json"]
cli()
"""


def test_the_engine_runs_with_write_xor_execute_memory() -> None:
    result = subprocess.run([sys.executable, "-c", CHILD, str(SCENARIO)], capture_output=True,
                            text=True, timeout=60, check=False)
    if result.returncode == 3:
        reason = f"this kernel has no PR_SET_MDWE ({result.stdout.strip()})"
        if os.environ.get("WATCHDOG_REQUIRE_REAL_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    replay = json.loads(result.stdout)
    assert replay["scenario"] == "aa-clean-1000"
    # the outcome itself is the backtest tests' business; here: a complete replay happened
    assert replay["outcome"] in {"promoted", "rolled_back", "in_progress"}
    assert replay["decisions"]
