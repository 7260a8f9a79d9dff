"""Check that ``import watchdog`` is rollout-watchdog before running the CLI.

Only the standard library is imported here, and nothing of ``watchdog`` beyond its
``__init__`` until the check has passed: a foreign ``watchdog/__init__.py`` (the PyPI
file-events project) is plain Python with no side effects on import.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from types import ModuleType

#: ``watchdog/__init__.py`` of rollout-watchdog defines this attribute with this value.
MARKER = "__distribution__"
DISTRIBUTION = "rollout-watchdog"
EXIT_CLASH = 2


def _foreign_version() -> str:
    try:
        return f" {importlib.metadata.version('watchdog')}"
    except importlib.metadata.PackageNotFoundError:
        return ""


def clash() -> str | None:
    """Why ``watchdog`` is not rollout-watchdog's package, or None when it is."""
    try:
        package: ModuleType | None = importlib.import_module("watchdog")
    except ImportError as exc:
        package, problem = None, f"`import watchdog` fails ({exc})"
    if package is not None:
        where = getattr(package, "__file__", None) or ", ".join(
            getattr(package, "__path__", []))
        ours = getattr(package, MARKER, None) == DISTRIBUTION
        if ours and importlib.util.find_spec("watchdog.cli.main") is not None:
            return None
        problem = f"the Python package `watchdog` found at {where} is not rollout-watchdog's"
    return (
        f"rollout-watchdog: {problem}.\n"
        f"The PyPI project `watchdog`{_foreign_version()} (file-system events, an unrelated "
        "library) uses the same import name `watchdog` and is installed in this environment "
        f"({sys.prefix}), so one package shadows or overwrote the other.\n"
        "Fix it in one of two ways:\n"
        "  pip uninstall watchdog && pip install --force-reinstall --no-deps rollout-watchdog\n"
        "  or install rollout-watchdog in its own virtual environment:\n"
        "  python3 -m venv /opt/rollout-watchdog && "
        "/opt/rollout-watchdog/bin/pip install rollout-watchdog\n"
    )


def main() -> None:
    """Console entry point: refuse to start (exit 2) on a name clash, else run the CLI."""
    problem = clash()
    if problem is not None:
        sys.stderr.write(problem)
        raise SystemExit(EXIT_CLASH)
    from watchdog.cli.main import main as cli_main

    cli_main()
