"""The published OpenAPI spec: ``python -m watchdog.api.openapi [docs/openapi.json]``.

The spec depends only on the code (not on the journal, the token or the modules), so
docs/openapi.json is generated from it and a test keeps the two equal.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from watchdog.api.app import create_app


def spec() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:  # never opened: the spec needs no journal
        return create_app(Path(folder) / "journal.db").openapi()


def text() -> str:
    return json.dumps(spec(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        Path(args[0]).write_text(text(), encoding="utf-8")
    else:
        sys.stdout.write(text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
