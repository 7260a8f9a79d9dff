"""MkDocs hook (mkdocs.yml `hooks:`): the site's home page is README.md, so the two
cannot drift. Links into docs/ lose their `docs/` prefix; links to other files of the
repository (LICENSE, CHANGELOG.md), which the site does not serve, become plain text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def readme_as_index(text: str) -> str:
    """README.md's Markdown with its links made relative to docs/."""

    def fix(match: re.Match[str]) -> str:
        bang, label, target = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:|^#", target, re.I):
            return match.group(0)
        if target.startswith("docs/"):
            return f"{bang}[{label}]({target[len('docs/'):]})"
        return label if label.startswith("`") else f"`{label}`"

    return _LINK.sub(fix, text)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if page.file.src_uri == "index.md":
        return readme_as_index(README.read_text(encoding="utf-8"))
    return markdown
