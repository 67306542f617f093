"""Positions resolved per top-level statement equal those of a whole-module codegen."""

from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

from sync_lint.config import Settings
from sync_lint.engine.context import FileContext
from sync_lint.engine.positions import resolve_positions
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


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_statement_positions_match_the_module(path: Path) -> None:
    _assert_same_positions(path.read_text(encoding="utf-8"))


def test_tricky_layout() -> None:
    _assert_same_positions(TRICKY)


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
