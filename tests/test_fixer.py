"""The fixer: passes, overlap, safety checks, file writing, and the CLI flags.

The rules here are fakes defined in this module, so the tests do not depend on
which built-in rules exist or what their fixes do.
"""

from __future__ import annotations

import os
import stat

import libcst as cst
import pytest
from click.testing import CliRunner

import sync_lint.cli
import sync_lint.registry
from sync_lint import api
from sync_lint.config import Settings
from sync_lint.fix import fix_snippet, fix_source, fix_summary, unified_diff
from sync_lint.rulekit import Fix, Rule

SETTINGS = Settings(target_torch_version="2.11")


def _called(node: cst.Call, name: str) -> bool:
    return isinstance(node.func, cst.Name) and node.func.value == name


class Zap(Rule):
    """`zap(x)` -> `zap_safe(x)`, safe."""

    code = "SL991"
    name = "zap-call"
    summary = "zap"
    triggers = ("zap(",)
    fix_availability = "always"

    def visit_Call(self, node: cst.Call) -> None:
        if _called(node, "zap"):
            new = node.with_changes(func=cst.Name("zap_safe"))
            self.report(node, "zap", fix=Fix("safe", "Use `zap_safe`", (self.replace(node, new),)))


class Danger(Rule):
    """`danger(x)` -> `torch.safe(x)`, unsafe, needs `torch`."""

    code = "SL992"
    name = "danger-call"
    summary = "danger"
    triggers = ("danger(",)
    fix_availability = "always"

    def visit_Call(self, node: cst.Call) -> None:
        if _called(node, "danger"):
            arg = self.ctx.code(node.args[0].value)
            fix = Fix("unsafe", "Use `torch.safe`", (self.replace(node, f"torch.safe({arg})"),), needs_imports=("torch",))
            self.report(node, "danger", fix=fix)


class Breaker(Rule):
    """`breakme(x)` -> `breakme(x` : a buggy fix whose output does not parse."""

    code = "SL993"
    name = "breaker"
    summary = "breaker"
    triggers = ("breakme(",)

    def visit_Call(self, node: cst.Call) -> None:
        if _called(node, "breakme"):
            self.report(node, "breakme", fix=Fix("safe", "break it", (self.replace(node, "breakme(x"),)))


class Reintroduce(Rule):
    """`bad(x)` -> `zap(x)`: the fix produces an SL991 finding at the fixed site."""

    code = "SL994"
    name = "reintroduce"
    summary = "reintroduce"
    triggers = ("bad(",)

    def visit_Call(self, node: cst.Call) -> None:
        if _called(node, "bad"):
            new = node.with_changes(func=cst.Name("zap"))
            self.report(node, "bad", fix=Fix("safe", "swap", (self.replace(node, new),)))


class NoOp(Rule):
    """`noop(x)` -> `noop(x)`: the fix does not remove its own finding."""

    code = "SL995"
    name = "noop"
    summary = "noop"
    triggers = ("noop(",)

    def visit_Call(self, node: cst.Call) -> None:
        if _called(node, "noop"):
            self.report(node, "noop", fix=Fix("safe", "nothing", (self.replace(node, self.ctx.code(node)),)))


class Far(Rule):
    """`far()` is a finding only after the name `FAR_ON` appeared; `turn_on()` -> `FAR_ON`.

    So the SL996 fix makes an SL997 finding appear on another line.
    """

    code = "SL996"
    name = "far-switch"
    summary = "far"
    triggers = ("turn_on(", "far(")

    def visit_Name(self, node: cst.Name) -> None:
        if node.value == "FAR_ON":
            type(self).seen = True

    def visit_Module(self, node: cst.Module) -> None:
        type(self).seen = False

    def visit_Call(self, node: cst.Call) -> None:
        if _called(node, "turn_on"):
            self.report(node, "turn_on", fix=Fix("safe", "switch", (self.replace(node, "FAR_ON"),)))


class FarCall(Rule):
    code = "SL997"
    name = "far-call"
    summary = "far call"
    triggers = ("far(",)

    def visit_Call(self, node: cst.Call) -> None:
        if _called(node, "far") and getattr(Far, "seen", False):
            self.report(node, "far")


FAKES = [Zap, Danger, Breaker, Reintroduce, NoOp, Far, FarCall]


@pytest.fixture(autouse=True)
def fake_names_are_bound(monkeypatch):
    """The fakes write names (`zap_safe`, `FAR_ON`, ...) that no test source binds.

    The fixer's self-check refuses an edit that reads a name not bound at run time;
    here those names count as builtins, so the tests exercise the passes, not that rule.
    """
    import sync_lint.fix.scopes as scopes

    monkeypatch.setattr(scopes, "_BUILTINS", scopes._BUILTINS | {"zap", "zap_safe", "FAR_ON", "one", "a", "b", "x"})


def fix(source: str, *, unsafe: bool = False, rules=None):
    return fix_source(source, "example.py", rules or FAKES, SETTINGS, unsafe=unsafe)


# ==========================================================================================
# fix_source
# ==========================================================================================


def test_safe_fix_applied_and_unsafe_needs_the_flag():
    source = "x = zap(1)\ny = danger(2)\n"
    outcome = fix(source)
    assert outcome.new_source == "x = zap_safe(1)\ny = danger(2)\n"
    assert outcome.applied == {"SL991": 1}
    assert [d.code for d in outcome.remaining.diagnostics] == ["SL992"]
    assert outcome.remaining.diagnostics[0].start.row == 2
    assert outcome.errors == []

    unsafe = fix(source, unsafe=True)
    assert unsafe.new_source == "import torch\n\nx = zap_safe(1)\ny = torch.safe(2)\n"
    assert unsafe.applied == {"SL991": 1, "SL992": 1}
    assert unsafe.remaining.diagnostics == []


def test_sl101_has_no_fix_by_default():
    from sync_lint.rules.item import Item

    source = "import torch\nx = torch.ones(3, device='cuda')\nv = x.sum().item()\n"
    outcome = fix(source, unsafe=True, rules=[Item])
    assert not outcome.changed
    assert [d.code for d in outcome.remaining.diagnostics] == ["SL101"]


def test_overlapping_fixes_wait_for_the_next_pass():
    outcome = fix("x = zap(zap(zap(1)))\n")
    assert outcome.new_source == "x = zap_safe(zap_safe(zap_safe(1)))\n"
    assert outcome.applied == {"SL991": 3}
    assert outcome.passes == 3
    # The record of each fix says what it replaced and with what.
    assert [(r.before, r.after) for r in outcome.records] == [
        ("zap(zap(zap(1)))", "zap_safe(zap(zap(1)))"),
        ("zap(zap(1))", "zap_safe(zap(1))"),
        ("zap(1)", "zap_safe(1)"),
    ]
    # Their spans are positions in the final text.
    final = outcome.new_source.splitlines()
    spans = [final[r.start.row - 1][r.start.column - 1 : r.end.column - 1] for r in outcome.records]
    assert spans == ["zap_safe(zap_safe(zap_safe(1)))", "zap_safe(zap_safe(1))", "zap_safe(1)"]


def test_non_overlapping_fixes_in_one_pass():
    outcome = fix("a = zap(1); b = zap(2)\nc = zap(3)\n")
    assert outcome.new_source == "a = zap_safe(1); b = zap_safe(2)\nc = zap_safe(3)\n"
    assert outcome.passes == 1


def test_fixing_twice_changes_nothing():
    source = '"""Doc."""\nimport os\n\nx = zap(zap(1))\ny = danger(zap(2))\n'
    for unsafe in (False, True):
        first = fix(source, unsafe=unsafe)
        assert first.changed
        second = fix(first.new_source, unsafe=unsafe)
        assert not second.changed
        assert not second.applied


def test_fix_that_breaks_the_file_is_refused():
    source = "x = zap(1)\ny = breakme(2)\n"
    outcome = fix(source)
    assert outcome.new_source == source  # nothing applied, not even the good fix
    assert not outcome.applied
    [error] = outcome.errors
    assert error.path == "example.py"
    assert error.rule == "SL993"
    assert "does not parse" in error.message and "SL993" in error.message
    assert "SL991" not in error.message


def test_fix_that_reintroduces_a_finding_is_rolled_back():
    outcome = fix("x = bad(1)\ny = zap(2)\n")
    assert outcome.new_source == "x = bad(1)\ny = zap_safe(2)\n"
    assert outcome.applied == {"SL991": 1}
    [error] = outcome.errors
    assert error.rule == "SL994"
    assert "internal error in the SL994 fix" in error.message
    assert "SL991 at line 1" in error.message
    assert {d.code for d in outcome.remaining.diagnostics} == {"SL994"}


def test_fix_that_keeps_its_finding_is_rolled_back():
    outcome = fix("x = noop(1)\n")
    assert not outcome.changed
    [error] = outcome.errors
    assert error.rule == "SL995" and "SL995 at line 1" in error.message


def test_fix_that_causes_a_finding_elsewhere_is_rolled_back():
    source = "turn_on()\nfar()\nx = zap(1)\n"
    outcome = fix(source)
    # The SL996 fix alone makes `far()` on line 2 a finding: it is traced and rolled back.
    assert outcome.new_source == "turn_on()\nfar()\nx = zap_safe(1)\n"
    [error] = outcome.errors
    assert error.rule == "SL996" and "SL997 at line 2" in error.message


def test_fix_never_introduces_a_finding_property():
    """Over a mix of good and bad fixes: fixing only ever removes findings."""
    from collections import Counter

    from sync_lint.engine import lint_source

    source = (
        "import torch as th\n"
        "a = zap(zap(1))\n"
        "b = danger(zap(2))\n"
        "c = bad(3)\n"
        "d = noop(4)\n"
        "turn_on()\n"
        "far()\n"
    )
    rules = [r for r in FAKES if r is not Breaker]
    for unsafe in (False, True):
        before = Counter(d.code for d in lint_source(source, "x.py", rules, SETTINGS).diagnostics)
        outcome = fix_source(source, "x.py", rules, SETTINGS, unsafe=unsafe)
        after = Counter(d.code for d in outcome.remaining.diagnostics)
        assert not after - before, f"fixing introduced {after - before}"
        assert sum(after.values()) < sum(before.values())
        assert {e.rule for e in outcome.errors} == {"SL994", "SL995", "SL996"}


def test_import_added_only_when_missing():
    outcome = fix("import torch\n\ny = danger(2)\n", unsafe=True)
    assert outcome.new_source == "import torch\n\ny = torch.safe(2)\n"
    # `import torch.nn` binds `torch` too.
    outcome = fix("import torch.nn\ny = danger(2)\n", unsafe=True)
    assert outcome.new_source == "import torch.nn\ny = torch.safe(2)\n"
    # Two fixes needing torch add one import.
    outcome = fix("import os\na = danger(1)\nb = danger(2)\n", unsafe=True)
    assert outcome.new_source == "import os\nimport torch\na = torch.safe(1)\nb = torch.safe(2)\n"
    assert outcome.records[0].imports == ("torch",)


def test_import_respects_the_file_alias():
    outcome = fix("import torch as th\n\ny = danger(2)\n", unsafe=True)
    assert outcome.new_source == "import torch as th\n\ny = th.safe(2)\n"
    assert outcome.records[0].after == "th.safe(2)"


def test_import_placement_after_docstring_future_and_imports():
    source = (
        '#!/usr/bin/env python\n"""Module doc."""\n\nfrom __future__ import annotations\n\nimport os\n'
        "import sys  # why\n\nx = danger(1)\n"
    )
    outcome = fix(source, unsafe=True)
    assert outcome.new_source == (
        '#!/usr/bin/env python\n"""Module doc."""\n\nfrom __future__ import annotations\n\nimport os\n'
        "import sys  # why\nimport torch\n\nx = torch.safe(1)\n"
    )
    # Docstring only: the import goes below it, with blank lines around.
    outcome = fix('"""Doc."""\nx = danger(1)\n', unsafe=True)
    assert outcome.new_source == '"""Doc."""\n\nimport torch\n\nx = torch.safe(1)\n'
    # Header comments (shebang, coding cookie) stay first.
    outcome = fix("# -*- coding: utf-8 -*-\nx = danger(1)\n", unsafe=True)
    assert outcome.new_source == "# -*- coding: utf-8 -*-\nimport torch\n\nx = torch.safe(1)\n"


def test_crlf_preserved_in_edits_and_imports():
    outcome = fix("import os\r\nx = zap(1)\r\ny = danger(2)\r\n", unsafe=True)
    assert outcome.new_source == "import os\r\nimport torch\r\nx = zap_safe(1)\r\ny = torch.safe(2)\r\n"


def test_multiline_fix_content_uses_file_newline():
    class Multi(Rule):
        code = "SL998"
        name = "multi"
        summary = "multi"
        triggers = ("multi(",)

        def visit_Call(self, node: cst.Call) -> None:
            if _called(node, "multi"):
                self.report(node, "multi", fix=Fix("safe", "m", (self.replace(node, "(\n    one(),\n)"),)))

    outcome = fix("x = multi()\r\ny = 1\r\n", rules=[Multi])
    assert outcome.new_source == "x = (\r\n    one(),\r\n)\r\ny = 1\r\n"


def test_ignored_codes_are_not_fixed():
    outcome = fix_source("x = zap(1)\n", "a.py", FAKES, SETTINGS, unsafe=False, ignored_codes=frozenset({"SL991"}))
    assert not outcome.changed


def test_noqa_suppressed_finding_is_not_fixed():
    outcome = fix("x = zap(1)  # noqa: SL991\n")
    assert not outcome.changed


def test_fix_snippet_uses_builtin_rules():
    source = "import torch\nx = torch.ones(3, device='cuda')\nv = x.sum().item()\n"
    assert fix_snippet(source, unsafe=False) == source  # SL101 has no general fix


def test_unified_diff_marks_missing_final_newline():
    diff = unified_diff("a = 1\nb = zap(1)", "a = 1\nb = zap_safe(1)", "f.py")
    assert diff.startswith("--- f.py\n+++ f.py\n")
    assert "-b = zap(1)\n\\ No newline at end of file\n+b = zap_safe(1)\n\\ No newline at end of file\n" in diff


# ==========================================================================================
# Fixing files on disk through the library API
# ==========================================================================================


def lint_then_fix(paths, *, unsafe=False, diff=False, rules=None) -> api.Report:
    rules = tuple(rules or FAKES)
    plan = api.Plan(SETTINGS, rules, {r.code: r for r in rules})
    return api.run_files(plan, [str(p) for p in paths], fix=api.FixMode(unsafe=unsafe, diff=diff), jobs=1)


def summary_of(report: api.Report, rules=None) -> str:
    return fix_summary(report.fixed, {r.code: r.name for r in (rules or FAKES)}, would=False)


def test_write_is_atomic_and_keeps_mode_bits(tmp_path):
    target = tmp_path / "mod.py"
    target.write_text("x = zap(1)\n")
    os.chmod(target, 0o751)
    inode = target.stat().st_ino
    report = lint_then_fix([target])
    assert target.read_text() == "x = zap_safe(1)\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o751
    assert target.stat().st_ino != inode  # replaced, not rewritten in place
    assert report.changed_files == [str(target)]
    assert summary_of(report) == f"Fixed 1 error:\n- {target}: 1 × SL991 (zap-call)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mod.py"]  # no temporary left behind
    assert report.results[0].fixes_applied == {"SL991": 1}


def test_symlink_target_is_written_and_link_kept(tmp_path):
    real = tmp_path / "real.py"
    real.write_text("x = zap(1)\n")
    link = tmp_path / "link.py"
    link.symlink_to(real)
    lint_then_fix([link])
    assert link.is_symlink()
    assert real.read_text() == "x = zap_safe(1)\n"


def test_crlf_file_stays_crlf(tmp_path):
    target = tmp_path / "crlf.py"
    target.write_bytes(b"import os\r\nx = zap(1)\r\ny = danger(2)\r\n")
    lint_then_fix([target], unsafe=True)
    assert target.read_bytes() == b"import os\r\nimport torch\r\nx = zap_safe(1)\r\ny = torch.safe(2)\r\n"


def test_utf8_bom_kept(tmp_path):
    target = tmp_path / "bom.py"
    target.write_bytes(b"\xef\xbb\xbfs = '\xc3\xa9'\nx = zap(1)\n")
    lint_then_fix([target])
    assert target.read_bytes() == b"\xef\xbb\xbfs = '\xc3\xa9'\nx = zap_safe(1)\n"


def test_latin1_cookie_kept(tmp_path):
    target = tmp_path / "latin.py"
    target.write_bytes(b"# -*- coding: latin-1 -*-\ns = '\xe9'\nx = zap(1)\n")
    lint_then_fix([target])
    assert target.read_bytes() == b"# -*- coding: latin-1 -*-\ns = '\xe9'\nx = zap_safe(1)\n"


def test_read_only_file_is_reported_and_unchanged(tmp_path):
    target = tmp_path / "ro.py"
    target.write_text("x = zap(1)\n")
    os.chmod(target, 0o444)
    try:
        report = lint_then_fix([target])
    finally:
        os.chmod(target, 0o644)
    assert target.read_text() == "x = zap(1)\n"
    [result] = report.results
    assert any("read-only" in e.message and e.path == str(target) for e in result.errors)
    assert [d.code for d in result.diagnostics] == ["SL991"]  # still reported: not fixed
    assert report.changed_files == [] and summary_of(report) == ""


def test_file_changed_on_disk_is_not_overwritten(tmp_path, monkeypatch):
    import sync_lint.fix as fixer

    target = tmp_path / "race.py"
    target.write_text("x = zap(1)\n")
    real_fix_source = fixer.fix_source

    def racing_fix_source(*args, **kwargs):
        outcome = real_fix_source(*args, **kwargs)
        target.write_text("x = zap(1)\ny = 2\n")  # someone edits the file meanwhile
        return outcome

    monkeypatch.setattr(fixer, "fix_source", racing_fix_source)
    report = lint_then_fix([target])
    assert target.read_text() == "x = zap(1)\ny = 2\n"
    assert any("changed on disk" in e.message for e in report.results[0].errors)


def test_broken_fix_leaves_file_untouched_and_names_rule(tmp_path):
    target = tmp_path / "broken.py"
    target.write_text("x = zap(1)\ny = breakme(2)\n")
    report = lint_then_fix([target])
    assert target.read_text() == "x = zap(1)\ny = breakme(2)\n"
    errors = report.results[0].errors
    assert any(e.rule == "SL993" and e.path == str(target) and "does not parse" in e.message for e in errors)


def test_diff_mode_writes_nothing(tmp_path):
    target = tmp_path / "d.py"
    target.write_text("x = zap(1)\n")
    report = lint_then_fix([target], diff=True)
    assert target.read_text() == "x = zap(1)\n"
    assert "-x = zap(1)\n+x = zap_safe(1)\n" in report.diff_text
    assert report.changed_files == [str(target)]


def test_files_without_fixable_findings_are_not_touched(tmp_path):
    target = tmp_path / "clean.py"
    target.write_text("x = danger(1)\n")  # only an unsafe fix
    mtime = target.stat().st_mtime_ns
    report = lint_then_fix([target])
    assert target.stat().st_mtime_ns == mtime
    assert [d.code for d in report.results[0].diagnostics] == ["SL992"]


def test_encoding_failure_is_reported(tmp_path):
    class Euro(Rule):
        code = "SL999"
        name = "euro"
        summary = "euro"
        triggers = ("euro(",)

        def visit_Call(self, node: cst.Call) -> None:
            if _called(node, "euro"):
                self.report(node, "euro", fix=Fix("safe", "€", (self.replace(node, "'€'"),)))

    target = tmp_path / "enc.py"
    target.write_bytes(b"# coding: latin-1\nx = euro()\n")
    report = lint_then_fix([target], rules=[Euro])
    assert target.read_bytes() == b"# coding: latin-1\nx = euro()\n"
    assert any("cannot be encoded" in e.message for e in report.results[0].errors)


def test_malformed_fix_is_reported_not_applied():
    class Overlapping(Rule):
        code = "SL990"
        name = "overlapping"
        summary = "overlapping"
        triggers = ("twice(",)

        def visit_Call(self, node: cst.Call) -> None:
            if _called(node, "twice"):
                spec = Fix("safe", "two edits over one another", (self.replace(node, "a()"), self.replace(node.func, "b")))
                self.report(node, "twice", fix=spec)

    outcome = fix("x = twice()\ny = zap(1)\n", rules=[Overlapping, Zap])
    assert outcome.new_source == "x = twice()\ny = zap_safe(1)\n"
    [error] = outcome.errors
    assert error.rule == "SL990" and "overlap" in error.message


# ==========================================================================================
# The command line
# ==========================================================================================


@pytest.fixture
def fake_registry(monkeypatch):
    from sync_lint.rules.item import Item

    registry = {rule.code: rule for rule in [Item, *FAKES]}
    monkeypatch.setattr(sync_lint.registry, "all_rules", lambda: registry)
    return registry


def run_cli(*args: str, input: str | None = None):
    return CliRunner().invoke(sync_lint.cli.main, list(args), input=input, catch_exceptions=False)


def test_cli_diff_writes_nothing_and_exits_1(tmp_path, fake_registry):
    target = tmp_path / "a.py"
    target.write_text("x = zap(1)\n")
    result = run_cli("check", "--isolated", "--jobs", "1", "--diff", str(target))
    assert result.exit_code == 1
    assert "-x = zap(1)\n+x = zap_safe(1)\n" in result.stdout
    assert target.read_text() == "x = zap(1)\n"


def test_cli_diff_exits_0_without_changes(tmp_path, fake_registry):
    target = tmp_path / "a.py"
    target.write_text("x = danger(1)\n")  # unsafe only
    result = run_cli("check", "--isolated", "--jobs", "1", "--diff", str(target))
    assert result.exit_code == 0
    assert result.stdout == ""
    result = run_cli("check", "--isolated", "--jobs", "1", "--diff", "--unsafe-fixes", str(target))
    assert result.exit_code == 1
    assert "+import torch\n" in result.stdout


def test_cli_fix_and_show_fixes(tmp_path, fake_registry):
    target = tmp_path / "a.py"
    target.write_text("x = zap(zap(1))\ny = danger(2)\n")
    result = run_cli("check", "--isolated", "--jobs", "1", "--fix", "--show-fixes", "--output-format", "concise",
                     str(target))
    assert target.read_text() == "x = zap_safe(zap_safe(1))\ny = danger(2)\n"
    assert f"Fixed 2 errors:\n- {target}: 2 × SL991 (zap-call)" in result.stderr
    assert result.exit_code == 1  # the unsafe one remains
    assert "SL992" in result.stdout and "SL991" not in result.stdout
    # Second run: nothing changes.
    again = run_cli("check", "--isolated", "--jobs", "1", "--fix", "--show-fixes", str(target))
    assert target.read_text() == "x = zap_safe(zap_safe(1))\ny = danger(2)\n"
    assert "Fixed" not in again.stderr


def test_cli_fix_command_with_unsafe(tmp_path, fake_registry):
    target = tmp_path / "a.py"
    target.write_text("import torch as th\nx = danger(zap(1))\n")
    result = run_cli("fix", "--isolated", "--jobs", "1", "--unsafe-fixes", str(target))
    assert target.read_text() == "import torch as th\nx = th.safe(zap_safe(1))\n"
    assert result.exit_code == 0


def test_cli_fix_stdin_prints_fixed_source(fake_registry):
    result = run_cli("check", "--isolated", "--fix", "--output-format", "concise", "-",
                     input="x = zap(1)\ny = danger(2)\n")
    assert result.stdout == "x = zap_safe(1)\ny = danger(2)\n"
    assert "SL992" in result.stderr  # the report goes to stderr
    assert result.exit_code == 1


def test_cli_fix_stdin_without_fixes_echoes_source(fake_registry):
    result = run_cli("check", "--isolated", "--fix", "-", input="x = 1\n")
    assert result.stdout == "x = 1\n"
    assert result.exit_code == 0


def test_cli_fix_stdin_filename_never_writes(tmp_path, fake_registry):
    target = tmp_path / "a.py"
    target.write_text("x = zap(1)\n")
    result = run_cli("check", "--isolated", "--fix", "--stdin-filename", str(target), "-", input="x = zap(2)\n")
    assert result.stdout == "x = zap_safe(2)\n"
    assert target.read_text() == "x = zap(1)\n"


def test_cli_read_only_file_exit_2(tmp_path, fake_registry):
    target = tmp_path / "ro.py"
    target.write_text("x = zap(1)\n")
    os.chmod(target, 0o444)
    try:
        result = run_cli("check", "--isolated", "--jobs", "1", "--fix", str(target))
    finally:
        os.chmod(target, 0o644)
    assert result.exit_code == 2
    assert "read-only" in result.output and str(target) in result.output
    assert target.read_text() == "x = zap(1)\n"


def test_cli_fix_several_files(tmp_path, fake_registry):
    # --jobs 1: worker processes would load the real registry, not the fake rules.
    paths = []
    for i in range(6):
        p = tmp_path / f"m{i}.py"
        p.write_text(f"x = zap({i})\n" if i % 2 == 0 else "x = 1\n")
        paths.append(str(p))
    result = run_cli("check", "--isolated", "--jobs", "1", "--fix", "--show-fixes", *paths)
    assert result.exit_code == 0
    assert "Fixed 3 errors:" in result.stderr
    for i, p in enumerate(paths):
        expected = f"x = zap_safe({i})\n" if i % 2 == 0 else "x = 1\n"
        assert open(p).read() == expected
