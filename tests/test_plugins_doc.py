"""docs/plugins.md's option tables are generated from the plugins' options models
(watchdog/plugins_doc.py) and must match them, so they cannot drift from what the daemon
accepts."""

from __future__ import annotations

from pathlib import Path

from watchdog import plugins, plugins_doc


def test_committed_tables_are_current() -> None:
    committed = plugins_doc.TARGET.read_text(encoding="utf-8")
    assert committed == plugins_doc.render(committed), (
        f"docs/plugins.md is out of date with the plugins' options models: run "
        f"`{plugins_doc.REGENERATE}` and commit the result")


def test_every_plugin_and_option_is_documented() -> None:
    assert plugins_doc.undocumented() == []
    text = plugins_doc.section()
    for group in plugins.GROUPS:
        for name in plugins.available(group):
            assert f"### {plugins_doc.KINDS[group]} `{name}`" in text
    assert "| `timeout` | duration > 0 | `10s` | One request's timeout. |" in text
    assert "| `token` | string, *secret* | none |" in text


def test_check_mode_reports_a_stale_file(tmp_path: Path, monkeypatch: object) -> None:
    target = tmp_path / "plugins.md"
    target.write_text("# Plugins\n\nprose\n\n## Writing one\n\nmore prose\n",
                      encoding="utf-8")
    monkeypatch.setattr(plugins_doc, "TARGET", target)  # type: ignore[attr-defined]
    assert plugins_doc.main(["--check"]) == 1
    assert plugins_doc.main([]) == 0
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Plugins\n\nprose\n\n" + plugins_doc.BEGIN)
    assert text.endswith(plugins_doc.END + "\n\n## Writing one\n\nmore prose\n")
    assert plugins_doc.main(["--check"]) == 0
    assert plugins_doc.main([]) == 0 and target.read_text(encoding="utf-8") == text
