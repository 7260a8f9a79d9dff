"""What the docs show a command printing is what it prints, and what they list is what
ships: the ``rollout-watchdog check`` transcripts of docs/rules.md (run from the
repository root), the shipped rule tests named in docs/rule-tests.md, and the shipped
default rules in docs/rules.md's table. These drifted once (a rule count of 75 for 81,
two rule-test files and two default rules missing)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).with_name("rollout-watchdog")


def transcripts(markdown: str) -> list[tuple[str, list[str]]]:
    """Each ``$ ...`` line of the fenced blocks, with the lines after it up to the next
    ``$`` line or the end of the block (blank lines at the end of them dropped)."""
    found: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", markdown, flags=re.S | re.M):
        for line in block.splitlines():
            if line.startswith("$ "):
                found.append((line[2:], []))
            elif found:
                found[-1][1].append(line)
    for _, out in found:
        while out and not out[-1].strip():
            out.pop()
    return found


def test_transcript_parser_splits_commands() -> None:
    text = ("```yaml\nkey: 1\n```\n\n```\n$ a x\nout 1\nout 2\n\n$ b\nout 3\n```\n"
            "```sh\n$ c\n```\n")
    assert transcripts(text) == [("a x", ["out 1", "out 2"]), ("b", ["out 3"]), ("c", [])]


def test_the_check_transcripts_in_rules_md_are_current() -> None:
    shown = [(cmd, out) for cmd, out in transcripts((ROOT / "docs/rules.md").read_text())
             if cmd.startswith("rollout-watchdog check ")]
    assert len(shown) >= 2, "docs/rules.md shows `rollout-watchdog check` runs"
    for cmd, out in shown:
        done = subprocess.run([str(EXE), *cmd.split()[1:]], cwd=ROOT, capture_output=True,
                              text=True, check=False)
        printed = (done.stdout + done.stderr).splitlines()
        assert printed == out, f"`{cmd}` prints:\n" + "\n".join(printed)


def test_rule_tests_md_names_every_shipped_rule_test() -> None:
    text = (ROOT / "docs/rule-tests.md").read_text()
    shipped = sorted(p.name for p in (ROOT / "rules/tests").glob("*.yaml"))
    assert shipped, "rules/tests holds the shipped rule tests"
    missing = [name for name in shipped if f"rules/tests/{name}" not in text]
    assert not missing, f"docs/rule-tests.md does not name {missing}"


def test_rules_md_lists_every_shipped_default_rule() -> None:
    text = (ROOT / "docs/rules.md").read_text()
    default = yaml.safe_load((ROOT / "rules/default.yaml").read_text())
    names = [r["name"] for m in default["modules"] for r in m["rules"]]
    assert len(names) >= 5
    missing = [n for n in names if f"| `{n}` |" not in text]
    assert not missing, f"docs/rules.md's table of shipped rules lacks {missing}"
