"""The imports a fix needs: spelled with the file's own alias, or inserted.

A fix that writes `torch.full(...)` in a file that says `import torch as th`
writes `th.full(...)`; in a file that does not import torch at all, the fixer
inserts `import torch` after the module docstring, the `from __future__` imports
and the leading import block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from sync_lint.fix.edits import TextLines
from sync_lint.syntax import dotted_name


def _top_level_statements(module: cst.Module) -> Iterator[cst.BaseSmallStatement]:
    """Small statements at module level, including inside top-level `if`/`try` blocks."""

    def walk(body: Sequence[cst.CSTNode]) -> Iterator[cst.BaseSmallStatement]:
        for stmt in body:
            if isinstance(stmt, cst.SimpleStatementLine):
                yield from stmt.body
            elif isinstance(stmt, cst.If):
                yield from walk(stmt.body.body)
                orelse = stmt.orelse
                while orelse is not None:
                    yield from walk(orelse.body.body)
                    orelse = orelse.orelse if isinstance(orelse, cst.If) else None
            elif isinstance(stmt, cst.Try):
                yield from walk(stmt.body.body)
                for handler in stmt.handlers:
                    yield from walk(handler.body.body)

    yield from walk(module.body)


@dataclass
class Bindings:
    plain: set[str]  # modules usable under their own dotted name
    aliases: dict[str, str]  # module -> the local name bound to it

    @classmethod
    def of(cls, module: cst.Module) -> "Bindings":
        plain: set[str] = set()
        aliases: dict[str, str] = {}
        for small in _top_level_statements(module):
            if isinstance(small, cst.Import):
                for alias in small.names:
                    full = dotted_name(alias.name)
                    if full is None:
                        continue
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        aliases.setdefault(full, alias.asname.name.value)
                    else:
                        parts = full.split(".")
                        plain.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
            elif isinstance(small, cst.ImportFrom):
                if small.relative or small.module is None or isinstance(small.names, cst.ImportStar):
                    continue
                base = dotted_name(small.module)
                if base is None:
                    continue
                for alias in small.names:
                    name = dotted_name(alias.name)
                    if name is None:
                        continue
                    local = name
                    if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                        local = alias.asname.name.value
                    aliases.setdefault(f"{base}.{name}", local)
        return cls(plain, aliases)

    def local_name(self, module: str) -> tuple[str | None, bool]:
        """(the alias to write instead of `module`, or None; whether an import must be added)."""
        if module in self.plain:
            return None, False
        if module in self.aliases:
            local = self.aliases[module]
            return (None if local == module else local), False
        return None, True


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

