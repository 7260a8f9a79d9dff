"""The documentation: the MkDocs site builds with --strict (no broken link, anchor or nav
entry), the README stays a newcomer's page (under 300 lines) and its relative links
point at files that exist. Builds the real site with the real mkdocs, into a temp dir."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
MAX_README_LINES = 300
# [text](target) and ![alt](target), not inside code; the target up to a space or ')'
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def _prose(text: str) -> str:
    """The text without fenced code blocks and inline code spans."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def relative_links(markdown: str) -> list[str]:
    """The link targets of a Markdown text that are paths (no scheme, no bare anchor)."""
    found = []
    for target in LINK.findall(_prose(markdown)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue
        found.append(target)
    return found


def test_site_builds_strictly(tmp_path: Path) -> None:
    # mkdocs lives in its own venv (make's .venv-docs): it depends on the PyPI package
    # `watchdog` (file events), which would shadow our import package in .venv
    mkdocs = ROOT / ".venv-docs" / "bin" / "mkdocs"
    assert mkdocs.is_file(), f"{mkdocs} is missing: run `make .venv-docs/.installed`"
    result = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir",
         str(tmp_path / "site"), "--config-file", str(ROOT / "mkdocs.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, (
        "mkdocs build --strict failed (run `make docs` to see it):\n" + result.stderr)
    assert (tmp_path / "site" / "index.html").is_file()
    assert (tmp_path / "site" / "rules-reference.html").is_file()
    # the home page is the README (scripts/mkdocs_hooks.py), its picture served
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "Your own service with Prometheus" in index
    assert 'src="img/web-view.png"' in index


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < MAX_README_LINES, (
        f"README.md has {lines} lines; keep it under {MAX_README_LINES} and move "
        "reference material into docs/ (mkdocs.yml lists the pages)")


def test_readme_relative_links_exist() -> None:
    links = relative_links(README.read_text(encoding="utf-8"))
    assert links, "no relative links found: the link pattern is broken"
    missing = [t for t in links
               if not (ROOT / unquote(t.split("#", 1)[0])).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_link_finder_sees_links_and_skips_code() -> None:
    text = ("See [the rules](docs/rules.md#x) and ![pic](docs/img/a.png \"t\").\n"
            "`[not](a link)` [web](https://example.org) [here](#top)\n"
            "```\n[also not](inside/code.md)\n```\n")
    assert relative_links(text) == ["docs/rules.md#x", "docs/img/a.png"]


def test_readme_links_are_rewritten_for_the_site() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from mkdocs_hooks import readme_as_index
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    text = ("[rules](docs/rules.md#x) ![pic](docs/img/a.png) [CHANGELOG.md](CHANGELOG.md) "
            "[`LICENSE`](LICENSE) [web](https://example.org) [top](#top)")
    assert readme_as_index(text) == (
        "[rules](rules.md#x) ![pic](img/a.png) `CHANGELOG.md` `LICENSE` "
        "[web](https://example.org) [top](#top)")
