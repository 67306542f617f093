"""Rule docs: generated pages match the rules, examples in rules hold, metadata is complete."""

from __future__ import annotations

import pytest

from fixture_support import actual_findings
from sync_lint import docs
from sync_lint.registry import builtin_rules

RULES = sorted(builtin_rules(), key=lambda r: r.code)


def test_docs_pages_are_generated_from_rules():
    message = docs.check_message()
    assert message is None, message


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_rule_metadata_and_sections(rule):
    text = rule.documentation()
    assert text.startswith(f"# {rule.code}")
    for section in ("## What it does", "## Why is this bad", "## Example", "## Fix safety", "## When to ignore"):
        assert section in text, f"{rule.code} docs lack {section}"
    assert rule.triggers and all(isinstance(t, str) and t for t in rule.triggers)
    assert rule.examples, f"{rule.code} has no inline examples"


@pytest.mark.parametrize(
    "rule,index", [(r, i) for r in RULES for i in range(len(r.examples))], ids=lambda v: str(v) if isinstance(v, int) else v.code
)
def test_inline_examples(rule, index):
    example = rule.examples[index]
    found = {line for line, code in actual_findings(example.source) if code == rule.code}
    assert found == set(example.expected)
