"""Rewriting a per-module PromQL template into one query for many modules (pure)."""

from __future__ import annotations

import pytest

from watchdog.config.loader import load_default_rules
from watchdog.sources import promql

SEL = '{module="{module}",version="{version}"}'


def test_every_shipped_template_batches() -> None:
    spec = load_default_rules().for_module("checkout")
    report = promql.batch_report(spec)
    assert report and all(why is None for why in report.values()), report


@pytest.mark.parametrize(("template", "expected"), [
    (f"sum(rate(x{SEL}[1m]))",
     'sum by (module, version) (rate(x{module=~"a|b\\\\.c",version=~"v1|v2"}[1m]))'),
    (f"sum(x{SEL}) by (le)", 'sum(x{module=~"a|b\\\\.c",version=~"v1|v2"}) '
                             "by (le, module, version)"),
    (f"sum without (instance) (x{SEL})",
     'sum without (instance) (x{module=~"a|b\\\\.c",version=~"v1|v2"})'),
    (f"x{SEL} / on(instance) group_left y{SEL}",
     'x{module=~"a|b\\\\.c",version=~"v1|v2"} / on(instance, module, version) group_left '
     'y{module=~"a|b\\\\.c",version=~"v1|v2"}'),
    (f"max(rate(x{SEL}[5m:1m] offset 1m))",
     'max by (module, version) (rate(x{module=~"a|b\\\\.c",version=~"v1|v2"}[5m:1m] '
     'offset 1m))'),
])
def test_rewrites(template: str, expected: str) -> None:
    assert promql.batch(template).render(["b.c", "a"], ["v1", "v2"]) == expected


@pytest.mark.parametrize(("template", "why"), [
    ('sum(rate(x{module="{module}"}[1m]))', "no {version} matcher"),
    (f"sum(x{SEL}) / sum(up)", "the selector up has no module/version matchers"),
    (f"sum(x{SEL}) / scalar(sum(y{SEL}))", "scalar() is not known"),
    (f'label_replace(x{SEL}, "module", "z", "", "")', "label_replace() is not known"),
    (f"topk(1, x{SEL})", "topk() does not split by module"),
    (f"sum without (module) (x{SEL})", "drops the module or version label"),
    (f"x{SEL} / ignoring(version) y{SEL}", "drops the module or version label"),
    (f"x{SEL} @ end()", "uses @"),
    ('x{module=~"{module}.*",version="{version}"}', "the selector x has no module matcher"),
    ('foo_{module}{version="{version}"}', "cannot read the matchers"),
    (f'x{SEL} / y{{name="{{module}}",{SEL[1:]}', 'matched as module="{module}"'),
])
def test_refusals_say_why(template: str, why: str) -> None:
    with pytest.raises(promql.NotBatchable, match=None) as caught:
        promql.batch(template)
    assert why in str(caught.value)
