"""Where a node is in the source: rows, columns and offsets, computed only when asked.

Resolving positions for a whole tree costs about as much as parsing it, and most
files have nothing to report, so positions are computed after the walk and only
for the top-level statement that holds a node that needs one.
"""

from __future__ import annotations

import ast
import bisect
import re

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from sync_lint.diagnostics import Position
from sync_lint.syntax import descendants

_LINE_END = re.compile(r"\r\n|\r|\n")


def resolve_positions(module: cst.Module) -> dict[cst.CSTNode, CodeRange]:
    """Every node's position, from one position-tracking codegen of the module.

    `MetadataWrapper.resolve` first runs a full batched visit (which rebuilds every
    node) before the codegen: about 40% of its cost, spent on nothing we need. The
    provider's codegen alone gives the same positions; the wrapper stays as the
    fallback should libcst's internals change.
    """
    provider = PositionProvider()
    try:
        provider._gen_impl(module)
        computed = provider._computed
    except AttributeError:  # pragma: no cover - a libcst without these internals
        return dict(MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider))
    return computed


def _statement_start_lines(module: cst.Module, source: str) -> list[int]:
    """First line of each top-level statement, from CPython's parser (fast, in C).

    Empty when the two parsers disagree about the statements (or CPython rejects
    syntax libcst accepts): positions then come from the whole module.
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    lines: list[int] = []
    cursor = 0
    for statement in module.body:
        if cursor >= len(tree.body):
            return []
        # Both parsers place a decorated definition at its `def` / `class` line.
        lines.append(tree.body[cursor].lineno)
        # `a = 1; b = 2` is one libcst line holding two statements, two for `ast`.
        cursor += len(statement.body) if isinstance(statement, cst.SimpleStatementLine) else 1
    return lines if cursor == len(tree.body) else []


def _statement_positions(
    module: cst.Module, index: int, first_line: int, source_lines: list[str]
) -> dict[cst.CSTNode, CodeRange] | None:
    """Positions of one top-level statement's nodes, shifted to where it starts.

    None when the statement's first generated line is not the source line it was
    mapped to (a layout where the two parsers count lines differently).
    """
    statement = module.body[index]
    alone = module.with_changes(body=[statement], header=[], footer=[])
    relative = resolve_positions(alone)
    start = relative[statement].start.line
    generated = alone.code.splitlines()
    if not (0 < first_line <= len(source_lines) and 0 < start <= len(generated)) or (
        generated[start - 1] != source_lines[first_line - 1]
    ):
        return None
    shift = first_line - start
    return {
        node: CodeRange((span.start.line + shift, span.start.column), (span.end.line + shift, span.end.column))
        for node, span in relative.items()
        if node is not alone
    }


class Positions:
    """Node positions in one file, resolved lazily, one top-level statement at a time."""

    def __init__(self, module: cst.Module, source: str) -> None:
        self.module = module
        self.source = source
        self.lines = source.splitlines()
        self._positions: dict[cst.CSTNode, CodeRange] = {}
        self._statement_lines: list[int] | None = None
        self._owners: dict[int, set[int]] = {}
        self._line_starts: list[int] | None = None

    def range(self, node: cst.CSTNode) -> CodeRange:
        """The node's range. Only the top-level statement holding it is generated."""
        known = self._positions.get(node)
        if known is not None:
            return known
        if self._statement_lines is None:
            self._statement_lines = _statement_start_lines(self.module, self.source)
        index = self._top_statement_of(node) if self._statement_lines else None
        shifted = None
        if index is not None:
            shifted = _statement_positions(self.module, index, self._statement_lines[index], self.lines)
        self._positions.update(shifted if shifted is not None else resolve_positions(self.module))
        return self._positions[node]

    def _top_statement_of(self, node: cst.CSTNode) -> int | None:
        for index, statement in enumerate(self.module.body):
            owned = self._owners.get(index)
            if owned is None:
                owned = self._owners[index] = {id(n) for n in descendants(statement)}
            if id(node) in owned:
                return index
        return None

    @property
    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in _LINE_END.finditer(self.source)]
        return self._line_starts

    def span(self, node: cst.CSTNode, parentheses: bool = True) -> tuple[int, int]:
        """`node`'s start and end offsets in the source, with its own parentheses or without."""
        first = last = node
        if parentheses and getattr(node, "lpar", None):
            first, last = node.lpar[0], node.rpar[-1]  # type: ignore[attr-defined]
        start, end = self.range(first).start, self.range(last).end
        starts = self.line_starts
        return starts[start.line - 1] + start.column, starts[end.line - 1] + end.column

    def position(self, offset: int) -> Position:
        """The 1-based row and column of a source offset."""
        row = bisect.bisect_right(self.line_starts, offset)
        return Position(row, offset - self.line_starts[row - 1] + 1)

    def line_of(self, node: cst.CSTNode) -> int:
        return self.range(node).start.line
