"""The imports a fix needs: spelled with the name bound at run time, or inserted.

A fix that writes `torch.full(...)` where `torch` is reachable at run time under
another name (`import torch as th` in the module, or in the edited function
before the edit) writes `th.full(...)`. Otherwise an import is inserted:

- in a module that keeps torch out of its import-time work (it imports torch
  only inside functions, or only under `if TYPE_CHECKING:`), at the top of the
  edited function's body, below its docstring: importing the module must still
  not import torch, and a TYPE_CHECKING import binds nothing at run time; the
  same where the function itself rebinds the name after the edit (`import
  torch.distributed` further down makes `torch` local to the whole function);
- anywhere else (and for an edit outside any function), `import torch` after
  the module docstring, the `from __future__` imports and the leading import block.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from sync_lint.fix.edits import TextLines
from sync_lint.fix.scopes import ScopeTree


def spell(content: str, module: str, local: str) -> str:
    return re.sub(rf"(?<![\w.]){re.escape(module)}(?!\w)", local, content)


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in stmt.body
    )


def import_insertion(module: cst.Module, lines: TextLines, modules: Sequence[str], newline: str) -> tuple[int, str]:
    """Where to insert `import X` lines for `modules`, and the text to insert."""
    body = list(module.body)
    imports = "".join(f"import {name}{newline}" for name in modules)
    index = 0
    docstring = bool(body) and _is_docstring(body[0])
    if docstring:
        index = 1
    last_import = None
    while index < len(body) and _is_import_line(body[index]):
        last_import = index
        index += 1
    anchor = last_import if last_import is not None else (0 if docstring else None)
    if anchor is None:
        header = "".join(module.code_for_node(line) for line in module.header)
        offset = len(header) if lines.text.startswith(header) else 0
        return offset, imports + (newline if body else "")
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    end = positions[body[anchor]].end
    row = end.line + 1 if end.column > 0 else end.line
    offset = lines.starts[row - 1] if row <= len(lines.starts) else len(lines.text)
    prefix = "" if offset == 0 or lines.text[offset - 1] in "\r\n" else newline
    if last_import is None:  # right after the docstring: keep a blank line around the imports
        after = body[1] if len(body) > 1 else None
        suffix = newline if after is not None and not after.leading_lines else ""
        return offset, prefix + newline + imports + suffix
    return offset, prefix + imports



def function_import_insertion(tree: ScopeTree, function: ast.FunctionDef | ast.AsyncFunctionDef,
                              modules: Sequence[str], newline: str) -> tuple[int, str]:
    """Where to insert `import X` lines at the top of `function`'s body, and the text to insert.

    Below the docstring, with the indentation of the first statement (tabs stay tabs);
    on a one-line body (`def f(x): return ...`) as `import X; ` before the statement.
    """
    body = function.body
    first = body[1] if len(body) > 1 and _is_docstring_node(body[0]) else body[0]
    start = tree.offsets.start(first)
    line_start = tree.offsets.line_start(start)
    indent = tree.offsets.text[line_start:start]
    if not indent.strip():
        return line_start, "".join(f"{indent}import {name}{newline}" for name in modules)
    return start, "".join(f"import {name}; " for name in modules)


def _is_docstring_node(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


@dataclass
class ImportPlan:
    """How each fix names the modules it needs, and the import lines to insert."""

    spellings: dict[int, dict[str, str]] = field(default_factory=dict)  # fix -> module -> name to write
    # (offset, text, the fixes it serves, the modules it imports)
    insertions: list[tuple[int, str, tuple[int, ...], tuple[str, ...]]] = field(default_factory=list)

    def imported_for(self, index: int) -> tuple[str, ...]:
        """The modules inserted for fix `index`."""
        return tuple(m for _, _, owners, modules in self.insertions if index in owners for m in modules)


def plan_imports(tree: ScopeTree, module: cst.Module, lines: TextLines,
                 needs: Sequence[tuple[int, int, Sequence[str]]], edits: Sequence[tuple[int, int]],
                 newline: str) -> ImportPlan:
    """The plan for fixes needing modules: `needs` holds (fix index, offset of its first edit, modules).

    `edits`: the (start, end) of every edit of the pass; a module-level insertion point
    that one of them spans moves to the start of that edit's line.
    """
    plan = ImportPlan()
    at_top: dict[str, list[int]] = {}
    in_function: dict[int, tuple[ast.FunctionDef | ast.AsyncFunctionDef, dict[str, list[int]]]] = {}
    for index, offset, modules in needs:
        for name in modules:
            local = tree.module_spelling(name, offset)
            if local is not None and tree.reaches(local, offset):
                if local != name:
                    plan.spellings.setdefault(index, {})[name] = local
                continue
            # A module's name the function rebinds later (`import torch.distributed` below
            # the edit makes `torch` local) must be imported in the function too.
            lazy = local is not None or tree.imports_lazily(name)
            function = tree.enclosing_function(offset) if lazy else None
            if function is None:
                at_top.setdefault(name, []).append(index)
            else:
                users = in_function.setdefault(id(function), (function, {}))[1]
                users.setdefault(name, []).append(index)
    if at_top:
        offset, content = import_insertion(module, lines, list(at_top), newline)
        for start, end in edits:
            if start < offset < end:  # a fix rewrites lines across the insertion point
                offset = lines.starts[lines.row(start) - 1]
        plan.insertions.append((offset, content, _owners(at_top), tuple(at_top)))
    for function, users in in_function.values():
        offset, content = function_import_insertion(tree, function, list(users), newline)
        plan.insertions.append((offset, content, _owners(users), tuple(users)))
    return plan


def _owners(users: dict[str, list[int]]) -> tuple[int, ...]:
    return tuple(sorted({i for indices in users.values() for i in indices}))
