"""``rollout-watchdog test FILE...``: rule unit tests, in the spirit of ``promtool test rules``.

Format and semantics: docs/rule-tests.md. Exit 0 when every test passes, 1 when an
expectation fails, 2 when a test file is malformed (its problems on stderr, file:line).
"""

from __future__ import annotations

import re
import sys

import click

from watchdog.ruletest.runner import FileResult, run_file


@click.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--run", "run", metavar="REGEX",
              help="Run only the tests whose name matches this regular expression.")
def ruletest(files: tuple[str, ...], run: str | None) -> None:
    """Run rule unit tests: input series through the real engine, expected alert states
    and decisions at given times. Exit 0 all pass, 1 a test failed, 2 a file is malformed."""
    try:
        pattern = re.compile(run) if run else None
    except re.error as err:
        click.echo(f"error: --run {run!r}: {err}", err=True)
        sys.exit(2)
    results = []
    for file in files:
        click.echo(f"Unit Testing:  {file}")
        result = run_file(file, pattern)
        _report(result)
        results.append(result)
    cases = [c for r in results for c in r.cases]
    failed = sum(1 for c in cases if c.mismatches)
    malformed = sum(1 for r in results if r.issues)
    status = max((r.status for r in results), default=0)
    if status == 0:
        click.echo(f"SUCCESS: {len(cases)} test(s) in {len(results)} file(s)")
    else:
        parts = []
        if failed:
            parts.append(f"{failed} of {len(cases)} test(s) failed")
        if malformed:
            parts.append(f"{malformed} malformed file(s)")
        click.echo(f"FAILED: {', '.join(parts)}")
    sys.exit(status)


def _report(result: FileResult) -> None:
    if result.issues:
        click.echo(f"  FAILED: malformed test file, {len(result.issues)} problem(s):")
        for issue in result.issues:
            click.echo(f"    {issue}", err=True)
        click.echo("")
        return
    failures = [m for c in result.cases for m in c.mismatches]
    if not failures:
        click.echo(f"  SUCCESS ({len(result.cases)} test(s))\n")
        return
    click.echo("  FAILED:")
    for mismatch in failures:
        click.echo(f"    {mismatch}")
    passed = sum(1 for c in result.cases if not c.mismatches)
    click.echo(f"  {passed} of {len(result.cases)} test(s) passed\n")
