"""Hostile YAML gets a clear file:line error within the limits, never a traceback or a hang.

Issue 16, items 7, 8 and 10: a NUL byte, nesting 1,000 deep, an alias that contains
itself, an alias bomb (400 bytes expanding to 9**7 nodes), a list of a million items,
``/dev/zero`` as a rule file. The real ``check`` command runs each one in process; the
daemon's reload calls the same loader (:func:`watchdog.daemon.config.load_config`),
so what bounds ``check`` bounds a reload.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from watchdog.cli.main import cli
from watchdog.config import limits
from watchdog.config.yamlload import load_yaml
from watchdog.daemon.config import load_config
from watchdog.errors import ConfigError

ONE_MODULE = "modules:\n  - {name: checkout, include_defaults: true}\n"


def check(*args: str) -> Result:
    return CliRunner().invoke(cli, ["check", *args])


def refused(path: Path, *expected: str) -> str:
    """``check`` exits 1 with every expected fragment in its output, and no traceback."""
    done = check(str(path))
    assert done.exit_code == 1, done.output
    assert done.exception is None or isinstance(done.exception, SystemExit), done.exception
    for fragment in expected:
        assert fragment in done.output, done.output
    assert "Traceback" not in done.output
    return done.output


def alias_bomb(levels: int) -> str:
    """9**levels strings from a few hundred bytes (the billion-laughs shape)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"modules: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def test_a_nul_byte_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"modules:\n  - name: check\x00out\n")
    refused(path, f"{path}:2: invalid YAML: character U+0000 is not allowed in YAML")


@pytest.mark.parametrize(("text", "line"), [
    ("modules: " + "[" * 1000 + "]" * 1000 + "\n", 1),
    ("modules:\n" + "- " * 1000 + "x\n", 2),
    ("modules: " + "[" * 100 + "]" * 100 + "\n", 1),
    ("a: &a [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"
     "modules: &b [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n", 2),
], ids=["flow-1000", "block-1000", "flow-100", "aliases-70"])
def test_deep_nesting_is_a_located_error(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text(text)
    refused(path, f"{path}:{line}: invalid YAML: nested deeper than "
                  f"{limits.YAML_DEPTH.default} levels")


def test_an_alias_that_contains_itself_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "selfref.yaml"
    path.write_text("modules: &a [*a]\n")
    refused(path, f"{path}:1: ", "alias", "contains itself")


def test_an_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(7))
    assert path.stat().st_size < 500
    refused(path, f"{path}:", f"more than {limits.YAML_NODES.default:,} YAML nodes",
            "WATCHDOG_LIMIT_YAML_NODES")


def test_nine_to_the_ninth_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "bomb9.yaml"
    path.write_text(alias_bomb(9))
    refused(path, f"more than {limits.YAML_NODES.default:,} YAML nodes")


def test_a_million_item_list_is_refused_with_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text("modules: [" + "1," * 1_000_000 + "1]\n")
    refused(path, f"{path}:1: ", f"more than {limits.YAML_NODES.default:,} YAML nodes")


def test_aliases_within_the_limit_still_work(tmp_path: Path) -> None:
    located = load_yaml("a: &x {k: [1, 2]}\nb: *x\nc: *x\n", "f.yaml")
    assert located.data == {"a": {"k": [1, 2]}, "b": {"k": [1, 2]}, "c": {"k": [1, 2]}}
    assert located.data["b"] is not located.data["c"]  # each use is its own copy
    assert located.line_of(("c", "k")) == 1  # the alias's line is where its node is


def test_the_node_limit_can_be_raised_and_lowered(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    text = "modules: [" + ",".join(["1"] * 50) + "]\n"
    monkeypatch.setenv("WATCHDOG_LIMIT_YAML_NODES", "20")
    with pytest.raises(ConfigError) as err:
        load_yaml(text, "f.yaml")
    assert "more than 20 YAML nodes" in str(err.value)
    monkeypatch.setenv("WATCHDOG_LIMIT_YAML_NODES", "100")
    assert len(load_yaml(text, "f.yaml").data["modules"]) == 50
    monkeypatch.setenv("WATCHDOG_LIMIT_YAML_NODES", "lots")
    with pytest.raises(ConfigError, match="WATCHDOG_LIMIT_YAML_NODES must be a positive"):
        load_yaml(text, "f.yaml")


def test_too_many_modules_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_LIMIT_MODULES", "3")
    path = tmp_path / "many.yaml"
    path.write_text("modules:\n" + "".join(f"  - {{name: m{i}, include_defaults: true}}\n"
                                           for i in range(5)))
    refused(path, f"{path}:", "more than 3 modules", "WATCHDOG_LIMIT_MODULES")


def test_a_rule_file_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    done = check("/dev/zero")
    assert done.exit_code == 1, done.output
    assert "/dev/zero: cannot read: not a regular file" in done.output


def test_an_oversized_rule_file_is_refused(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_LIMIT_FILE_BYTES", "1000")
    path = tmp_path / "big.yaml"
    path.write_text(ONE_MODULE + "#" * 2000 + "\n")
    refused(path, f"{path}: cannot read: larger than 1,000 bytes", "WATCHDOG_LIMIT_FILE_BYTES")


def test_problems_shown_per_file_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "many_errors.yaml"
    path.write_text("modules: [" + ",".join(["1"] * 5000) + "]\n")
    output = refused(path, "more problem(s) in this file not shown")
    assert output.count(f"{path}:") <= limits.ISSUES_PER_FILE + 1


def test_the_daemon_config_is_bounded_the_same_way(tmp_path: Path) -> None:
    """What a reload parses (load_config) refuses the bomb, /dev/zero rules and a huge file."""
    config = tmp_path / "watchdog.yaml"
    config.write_text(alias_bomb(7).replace("modules: *a6", "source: {plugin: file}\n"
                                            "actuators: [{plugin: file}]\nmodules: *a6"))
    with pytest.raises(ConfigError, match="YAML nodes"):
        load_config(str(config))
    config.write_text("rules: [/dev/zero]\nsource: {plugin: file}\n"
                      "actuators: [{plugin: file}]\nmodules: [checkout]\n")
    with pytest.raises(ConfigError, match="/dev/zero: cannot read: not a regular file"):
        load_config(str(config))
    with pytest.raises(ConfigError, match="/dev/zero: cannot read: not a regular file"):
        load_config("/dev/zero")


def test_an_unknown_module_lists_only_some_of_many_names() -> None:
    from watchdog.config.loader import load_texts
    from watchdog.errors import UnknownModule

    rules = load_texts([("many.yaml", "modules:\n" + "".join(
        f"  - {{name: m{i:03d}, include_defaults: true}}\n" for i in range(500)))])
    with pytest.raises(UnknownModule) as err:
        rules.for_module("checkout")
    assert str(err.value).endswith("m019 and 480 more)")


@pytest.mark.parametrize("text", ["modules: " + "[" * 1000 + "]" * 1000 + "\n",
                                  "modules:\n" + "- " * 1000 + "x\n",
                                  "modules: &a [*a]\n", alias_bomb(7), "a: 1\x00\n"],
                         ids=["flow-1000", "block-1000", "selfref", "bomb", "nul"])
def test_the_pure_python_parser_is_bounded_too(text: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Where libyaml is not installed PyYAML's own parser runs (it recurses per level)."""
    import yaml

    from watchdog.config import yamlload

    monkeypatch.setattr(yamlload, "_Loader", yaml.SafeLoader)
    with pytest.raises(ConfigError) as err:
        load_yaml(text, "f.yaml")
    (issue,) = err.value.issues
    assert issue.line >= 1 and ("nested deeper" in issue.message or "alias" in issue.message
                                or "YAML nodes" in issue.message or "U+0000" in issue.message)
