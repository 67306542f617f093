"""Every fixture yields exactly the (line, code) pairs its `# expect:` comments name."""

from __future__ import annotations

import pytest

from fixture_support import FIXTURES, actual_findings, expected_findings, fixture_files


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_fixture_findings(path):
    source = path.read_text(encoding="utf-8")
    expected = expected_findings(source)
    actual = actual_findings(source, str(path))
    assert sorted(actual - expected) == [], "unexpected findings (line, code)"
    assert sorted(expected - actual) == [], "missing findings (line, code)"


def test_every_rule_has_positive_and_negative_fixtures():
    from sync_lint.registry import builtin_rules

    for rule in builtin_rules():
        folder = FIXTURES / rule.code
        positives = [p for p in folder.glob("*.py") if (rule.code in p.read_text())] if folder.exists() else []
        negatives = list(folder.glob("negative*.py")) if folder.exists() else []
        assert positives, f"{rule.code} has no fixture that expects it"
        assert negatives, f"{rule.code} has no negative fixture"
