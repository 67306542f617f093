"""The fixer's self-check: a fix whose output compiles wrongly, reaches beyond its
statements or reads a name not bound at run time is refused, and nothing is written.

The rules are fakes, each with one kind of bad fix.
"""

from __future__ import annotations

import libcst as cst

from sync_lint import api
from sync_lint.config import Settings
from sync_lint.fix import fix_source
from sync_lint.fix.scopes import ScopeTree
from sync_lint.rulekit import Fix, Rule

SETTINGS = Settings(target_torch_version="2.11")


def _rule(code: str, call: str, replacement: str, needs: tuple[str, ...] = ()) -> type[Rule]:
    """A rule reporting `call(...)` whose fix replaces the call with `replacement` ({arg}: its argument)."""

    def visit_Call(self: Rule, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == call:
            arg = self.ctx.code(node.args[0].value) if node.args else ""
            fix = Fix("safe", "fix it", (self.replace(node, replacement.format(arg=arg)),), needs_imports=needs)
            self.report(node, call, fix=fix)

    return type(f"Rule{code}", (Rule,), {
        "code": code, "name": f"fake-{code.lower()}", "summary": call, "triggers": (f"{call}(",),
        "visit_Call": visit_Call,
    })


SECOND_STATEMENT = _rule("SL981", "twostep", "{arg}; print({arg})")
YIELDS = _rule("SL982", "gen", "(yield {arg})")
TH_ALIAS = _rule("SL983", "viath", "th.ones({arg})")
NEEDS_TORCH = _rule("SL984", "needtorch", "torch.ones({arg})", needs=("torch",))
ABS = _rule("SL985", "myabs", "abs({arg})")


def _fix(source: str, *rules: type[Rule]):
    return fix_source(source, "m.py", list(rules), SETTINGS, unsafe=True)


def _refused(source: str, rule: type[Rule], why: str) -> None:
    outcome = _fix(source, rule)
    assert outcome.new_source == source
    assert not outcome.applied
    [error] = outcome.errors
    assert error.rule == rule.code and error.path == "m.py"
    assert "failed the fixer's self-check" in error.message and why in error.message, error.message


def test_a_fix_that_writes_a_second_statement_is_refused():
    _refused("def f(x):\n    y = twostep(x)\n    return y\n", SECOND_STATEMENT,
             "syntax tree changed outside the edited statements")


def test_code_only_the_compiler_rejects_is_refused():
    _refused("x = gen(1)\n", YIELDS, "'yield' outside function")


def test_a_name_bound_only_under_type_checking_is_refused():
    source = "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    import torch as th\n\ny = viath(3)\n"
    _refused(source, TH_ALIAS, "`th` is bound only under `if TYPE_CHECKING:`")
    # In the `else` branch of the same test the import does run.
    runs = source.replace("    import torch as th\n", "    pass\nelse:\n    import torch as th\n")
    assert _fix(runs, TH_ALIAS).new_source.endswith("y = th.ones(3)\n")


def test_a_local_name_bound_after_the_edit_is_refused():
    # `th` is local to `f` (its own import below), so the module's `th` is not reachable there.
    source = "import torch as th\n\n\ndef f():\n    y = viath(1)\n    import torch as th\n    return y\n"
    _refused(source, TH_ALIAS, "`th` is local to the function but not bound before it is used")
    # A fix that declares the module it needs gets it imported in the function instead.
    source = "import torch\n\n\ndef f():\n    y = needtorch(1)\n    import torch\n    return y\n"
    assert _fix(source, NEEDS_TORCH).new_source == source.replace(
        "def f():\n    y = needtorch(1)", "def f():\n    import torch\n    y = torch.ones(1)")


def test_builtins_parameters_and_earlier_locals_are_bound():
    assert _fix("def f(n):\n    return myabs(n)\n", ABS).new_source == "def f(n):\n    return abs(n)\n"
    source = "def f():\n    import torch as th\n    return viath(2)\n"
    assert _fix(source, TH_ALIAS).new_source == "def f():\n    import torch as th\n    return th.ones(2)\n"


def test_a_file_python_cannot_parse_is_not_fixed():
    # libcst reads 3.12 syntax that this interpreter's parser may not: the fix cannot be checked.
    source = "type Alias = int\nx = myabs(1)\n"
    try:
        ScopeTree.parse(source)
    except SyntaxError:
        outcome = _fix(source, ABS)
        assert outcome.new_source == source
        [error] = outcome.errors
        assert error.rule == "SL985" and "Python's own parser" in error.message
    else:
        assert _fix(source, ABS).new_source == "type Alias = int\nx = abs(1)\n"


def test_a_refused_file_is_not_written(tmp_path):
    target = tmp_path / "m.py"
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch as th\ny = viath(3)\nz = myabs(-1)\n"
    target.write_text(source)
    rules = (TH_ALIAS, ABS)
    plan = api.Plan(SETTINGS, rules, {r.code: r for r in rules})
    report = api.run_files(plan, [str(target)], fix=api.FixMode(unsafe=True), jobs=1)
    assert target.read_text() == source  # not even the good fix is written
    [error] = report.results[0].errors
    assert error.path == str(target) and error.rule == "SL983"
    assert report.changed_files == []
