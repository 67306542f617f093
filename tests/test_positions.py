"""Positions resolved per innermost statement equal those of a whole-module codegen."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import CodePosition

from sync_lint.config import Settings
from sync_lint.engine.context import FileContext
from sync_lint.engine.positions import UNIT_TYPES, Positions, resolve_positions
from sync_lint.engine.walker import Walker
from sync_lint.syntax import descendants

ROOT = Path(__file__).resolve().parent.parent
# Every fixture, and every eighth of the project's own modules: varied layouts at a bounded cost.
SOURCES = sorted(ROOT.glob("fixtures/**/*.py")) + sorted([*ROOT.glob("sync_lint/**/*.py"), *ROOT.glob("rules/*.py")])[::8]
TRICKY = '''\
"""doc"""
import os; import sys
# a comment before a decorated function

@staticmethod
@property
def f(
    a,
):
    return (a +
            1)
x = 1; y = [
  2, 3]  # trailing
class C:  # c
    z = f(1)
'''
# Headers, clauses and continuation lines: the layouts where a statement is easy to misplace.
HEADERS = '''\
if a:  # trailing comment on a header
    pass
elif (b or
      c):  # an elif over two lines
    x = [i for i in y if i]
else: z = 1  # an else whose body shares its line

for i in range(3): print(i)
else:
    pass

try: import foo
except (ImportError,
        OSError) as exc:  # a handler over two lines
    foo = None
else: pass
finally: done = True

class A(
    Base,  # a base on its own line
):
    # a comment before a decorator
    @decorator  # a comment after it
    # and one between decorators
    @other(
        arg,
    )
    async def f(self, x=lambda y: y if y else 0) -> "T":  # trailing
        async with ctx() as c, \\
                other() as d:
            return await g(
                x,
                c[
                    1:2
                ],
            )

match command:
    case Point(x=0) if flag:  # a guard
        pass
    case [first, *rest]:
        pass
if t:
\tline = "tab indented"
'''


def _assert_same_positions(source: str) -> None:
    module = cst.parse_module(source)
    full = resolve_positions(module)
    ctx = FileContext("p.py", source, module, Settings())
    checked = 0
    for statement in module.body:
        for node in descendants(statement):
            assert ctx.positions.range(node) == full[node], (type(node).__name__, ctx.code(node))
            checked += 1
    assert checked or not module.body


def _assert_placed_by_statement(source: str, walked: bool = False) -> None:
    """Every node in a statement (a compound statement's header) is placed from that statement
    alone, never from a codegen of the whole module."""
    module = cst.parse_module(source)
    full = resolve_positions(module)
    ctx = FileContext("p.py", source, module, Settings())
    if walked:
        Walker(ctx, [], []).walk(module)
    positions = ctx.positions

    def no_whole_module() -> None:
        raise AssertionError("fell back to a whole-module codegen")

    positions._whole_module = no_whole_module  # type: ignore[method-assign]
    placed = 0
    for node in descendants(module):
        if type(node) in UNIT_TYPES or isinstance(node, (cst.IndentedBlock, cst.Module)):
            continue  # a compound statement's own span covers its body: the whole-module path
        if walked:
            assert id(node) in positions.owners, f"the walk did not record where {type(node).__name__} is"
        assert positions.range(node) == full[node], (type(node).__name__, ctx.code(node))
        placed += 1
    assert placed or not module.body


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_statement_positions_match_the_module(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    _assert_same_positions(source)
    _assert_placed_by_statement(source)


@pytest.mark.parametrize("source", [TRICKY, HEADERS, HEADERS.replace("\n", "\r\n")], ids=["tricky", "headers", "crlf"])
def test_tricky_layouts_are_placed_by_their_own_statement(source: str) -> None:
    _assert_same_positions(source)
    _assert_placed_by_statement(source)
    _assert_placed_by_statement(source, walked=True)


def test_a_node_the_walk_has_not_reached_is_placed_from_the_current_statement() -> None:
    source = "import torch\nx = torch.zeros(3, device='cuda')\n"
    module = cst.parse_module(source)
    positions = Positions(module, source)
    statement = module.body[1]
    positions.current = statement  # a rule's `visit_` handler runs before the walk reaches the children
    call = statement.body[0].value  # type: ignore[attr-defined]
    assert positions.range(call).start == CodePosition(2, 4)
    assert not positions.owners  # the file was not indexed to find it


def test_leading_line_continuation_is_placed_on_its_real_line() -> None:
    # libcst drops a leading `\\` continuation line (its code does not round-trip),
    # so its whole-module positions are one line early; CPython's line numbers,
    # which the per-statement positions use, are the real ones.
    source = "\\\n\"\"\"doc\"\"\"\nx = 1\n"
    module = cst.parse_module(source)
    ctx = FileContext("p.py", source, module, Settings())
    assert ctx.positions.range(module.body[0]).start.line == 2
    assert ctx.positions.range(module.body[1]).start.line == 3


def test_source_and_tree_disagreeing_falls_back_to_the_whole_module() -> None:
    source = "x = 1\ny = 2\n"
    module = cst.parse_module(source)
    ctx = FileContext("p.py", "x = 1\n", module, Settings())  # one statement for CPython, two for libcst
    assert ctx.positions.range(module.body[1]).start.line == 2


# A statement whose text stands elsewhere too: a cut-short header (`if x:`) matching a row with a
# trailing comment, an `elif` whose `if` text stands alone elsewhere, and repeated statements.
LOOKALIKES = '''\
def f(owner):
    if owner.device is None:
        y = owner.item()
    return y


def g(owner):
    if owner.device is None:  # a comment makes the row longer than the header
        y = owner.item()
    elif owner.device is None:
        y = owner.item()
    return y
'''


@pytest.mark.parametrize("source", [LOOKALIKES, LOOKALIKES.replace("\n", "\r\n")], ids=["lf", "crlf"])
def test_statements_whose_text_repeats_are_placed_where_they_are(source: str) -> None:
    _assert_same_positions(source)
    _assert_placed_by_statement(source)
    _assert_placed_by_statement(source, walked=True)
