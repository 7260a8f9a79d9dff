"""watchdog.cli.lean: httpx and httpcore imported without httpx's command-line client and
trio, in a fresh interpreter (a real subprocess: sys.modules is per process), and both
still importable afterwards."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

PROBE = """\
import json, sys
from watchdog.cli.lean import import_http_lean
first = import_http_lean()
loaded = sorted({m.split(".")[0] for m in sys.modules} & {"rich", "pygments", "trio"})
import httpx
hidden_after = [n for n in ("httpx._main", "trio") if n in sys.modules]
import trio, httpx._main
again = import_http_lean()
print(json.dumps({"first": first, "loaded": loaded, "hidden_after": hidden_after,
                  "again": again, "client": type(httpx.Client()).__name__}))
"""


@pytest.mark.skipif(any(importlib.util.find_spec(n) is None for n in ("rich", "trio")),
                    reason="rich and trio are not installed here (the dev extras bring them)")
def test_http_libraries_import_without_cli_and_trio() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True, timeout=60)
    result = json.loads(out.stdout)
    assert result == {"first": True, "loaded": [], "hidden_after": [], "again": False,
                      "client": "Client"}
