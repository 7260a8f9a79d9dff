"""The rule reference (docs/rules-reference.md) is generated from the models' field
descriptions and must match them, so it cannot drift from what `check` accepts."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from watchdog import docs_gen
from watchdog.config import schema


def test_committed_reference_is_current() -> None:
    committed = docs_gen.TARGET.read_text(encoding="utf-8")
    assert committed == docs_gen.render(), (
        f"docs/rules-reference.md is out of date with watchdog/config/schema.py: run "
        f"`{docs_gen.REGENERATE}` and commit the result")


def test_every_schema_field_is_described() -> None:
    missing = [name for name in docs_gen.undocumented()
               if getattr(schema, name.split(".")[0], None) is not None
               and getattr(schema, name.split(".")[0]).__module__ == schema.__name__]
    assert not missing, (
        "fields without Field(description=...) in watchdog/config/schema.py (the rule "
        f"reference is generated from them): {missing}; then run `{docs_gen.REGENERATE}`")


def test_every_model_of_a_rule_file_is_rendered() -> None:
    rendered = {model for _, model, _ in docs_gen.SECTIONS}
    kinds = typing.get_args(typing.get_args(schema.Rule)[0])
    assert set(kinds) <= rendered, "a rule kind is missing from docs_gen.SECTIONS"
    seen: set[type[BaseModel]] = set()
    todo: list[type[BaseModel]] = [schema.RulesFile, *kinds]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for info in model.model_fields.values():
            todo += [t for t in _models(info.annotation) if t not in seen]
    assert seen <= rendered, f"models not in the reference: {seen - rendered}"


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def test_types_and_defaults_are_read_from_the_models() -> None:
    text = docs_gen.render()
    assert "| `window` | duration > 0 | `1m` |" in text
    assert "| `for` | duration | `0s` |" in text
    assert "| `alpha` | number in (0, 0.5) | `0.001` |" in text
    assert "| `stages` | list of [stages](#stage), at least 1 | `[5, 25, 50, 75, 90, 100]` |" \
        in text


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "rules-reference.md"
    monkeypatch.setattr(docs_gen, "TARGET", target)
    target.write_text("stale\n", encoding="utf-8")
    assert docs_gen.main(["--check"]) == 1
    assert "python -m watchdog.docs_gen" in capsys.readouterr().err
    assert docs_gen.main([]) == 0
    assert docs_gen.main(["--check"]) == 0
