"""Adding a rule is one module plus one fixture folder: a throwaway pack proves it end to end.

The pack lives in a temporary site directory with its own entry point, the way a
third-party pack is installed. Nothing in the repository is edited: the registry
discovers the module, the docs generator documents it, `explain` and `rules` show
it, the fixture check runs its folder, and `check` reports it.
"""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from fixture_support import ROOT, actual_findings, expected_findings

PROBE_RULE = '''\
"""# SL908 `probe-call`: a call to `probe()`

## What it does
Flags `probe(x)`.

## Why is this bad
It is a test rule.

## Example
```python
probe(1)  # SL908
```

## Fix safety
`probe(x)` becomes `probe_fixed(x)`, safe.

## When to ignore
Always; it exists for a test.
"""

import libcst as cst

from sync_lint.rulekit import Example, Fix, Rule


class Probe(Rule):
    code = "SL908"
    name = "probe-call"
    summary = "A call to `probe()`"
    triggers = ("probe(",)
    fix_availability = "always"
    examples = (Example("probe(1)\\n", (1,)), Example("other(1)\\n"))

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "probe":
            self.report(node, "a probe call", fix=Fix("safe", "Call `probe_fixed`",
                                                      (self.replace(node.func, "probe_fixed"),)))
'''


def _digest(root: Path) -> str:
    """One hash of every file the project tracks in its source folders."""
    h = hashlib.sha256()
    for folder in ("sync_lint", "rules", "docs", "fixtures", "tests"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path.relative_to(root)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture
def probe_pack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import sync_lint.registry as registry

    site = tmp_path / "site"
    package = site / "probe_pack"
    (package / "rules").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "rules" / "__init__.py").write_text('"""A throwaway rule pack."""\n')
    (package / "rules" / "probe.py").write_text(PROBE_RULE)
    fixtures = package / "fixtures" / "SL908"
    fixtures.mkdir(parents=True)
    (fixtures / "positive.py").write_text("x = probe(1)  # expect: SL908\ny = probe(probe(2))  # expect: SL908\n")
    (fixtures / "negative.py").write_text("x = other(1)\nprobe = 3\n")
    dist = site / "probe_pack-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: probe-pack\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[sync_lint.rules]\nprobe = probe_pack.rules\n")
    monkeypatch.syspath_prepend(str(site))
    registry.all_rules.cache_clear()
    yield package
    registry.all_rules.cache_clear()
    for name in [m for m in sys.modules if m.startswith("probe_pack")]:
        del sys.modules[name]


def test_a_rule_module_and_a_fixture_folder_are_all_it_takes(probe_pack: Path) -> None:
    from sync_lint import docs
    from sync_lint.cli import main
    from sync_lint.registry import all_rules

    before = _digest(ROOT)
    rule = all_rules().get("SL908")
    assert rule is not None and rule.__module__ == "probe_pack.rules.probe"  # discovered

    page = docs.rule_page(rule)  # documented like a built-in rule
    assert page.startswith("# SL908 `probe-call`") and "## Rule facts" in page
    runner = CliRunner()
    assert "It is a test rule." in runner.invoke(main, ["explain", "SL908"]).output
    assert "SL908" in runner.invoke(main, ["rules", "--output-format", "json"]).output

    for fixture in sorted((probe_pack / "fixtures" / "SL908").glob("*.py")):  # its fixture folder runs
        source = fixture.read_text()
        assert actual_findings(source, str(fixture)) == expected_findings(source)
    assert expected_findings((probe_pack / "fixtures" / "SL908" / "positive.py").read_text())

    target = probe_pack.parent / "use.py"
    target.write_text("from probe_lib import probe, probe_fixed\n\nvalue = probe(3)\n")
    result = runner.invoke(main, ["check", "--isolated", "--select", "SL908", "--fix", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text() == "from probe_lib import probe, probe_fixed\n\nvalue = probe_fixed(3)\n"  # its fix applies
    assert _digest(ROOT) == before  # no file of the project was touched


def test_the_builtin_pack_needs_no_module_list() -> None:
    import sync_lint.rules
    from sync_lint.registry import builtin_rules

    modules = {p.stem for p in Path(sync_lint.rules.__file__).parent.glob("*.py") if not p.stem.startswith("_")}
    assert {r.__module__.rsplit(".", 1)[1] for r in builtin_rules()} == modules


def test_rule_docs_check_names_the_command_that_regenerates_them(tmp_path: Path, monkeypatch) -> None:
    from sync_lint import docs

    stale = tmp_path / "SL101.md"
    stale.write_text("old text\n")
    monkeypatch.setattr(docs, "expected_files", lambda: {stale: "new text\n"})
    message = docs.check_message()
    assert message is not None and "python -m sync_lint.docs" in message and str(stale) in message
    stale.write_text("new text\n")
    assert docs.check_message() is None


def test_fixture_expectations_parse_several_codes() -> None:
    source = textwrap.dedent("""\
        a = 1  # expect: SL101, SL104
        b = 2
        """)
    assert expected_findings(source) == {(1, "SL101"), (1, "SL104")}
