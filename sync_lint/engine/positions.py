"""Where a node is in the source: rows, columns and offsets, computed only when asked.

Most files have nothing to report, and a finding needs the position of a handful
of nodes, so positions are computed on request for the *innermost statement*
holding the node: one position-tracking codegen of that statement alone (its
header only, for a compound statement), placed in the file by the line number
CPython's parser gives the statement. Columns need no work on the lines libcst
writes verbatim (continuation lines, strings) and shift by the statement's
indentation on the lines it indents itself.

The walk records which statement each node is in (`Positions.owners`); a node
the walk has not reached yet is looked up in the statement the walk is in, and a
file the walk never saw is indexed on first use. Whatever cannot be placed that
way (the two parsers disagreeing about a statement's lines) falls back to one
codegen of the whole module.
"""

from __future__ import annotations

import ast
import bisect
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider
from libcst.metadata.position_provider import PositionProvidingCodegenState

from sync_lint.diagnostics import Position
from sync_lint.syntax import walk_fields

_LINE_END = re.compile(r"\r\n|\r|\n")
# libcst's own line splitting, for the text a codegen wrote.
_CODEGEN_LINE_END = re.compile(r"\r\n?|\n")

# The nodes that start a line of their own, each positioned on its own: simple
# statement lines, compound statements, and the clauses of compound statements.
COMPOUND_TYPES: tuple[type[cst.CSTNode], ...] = (
    cst.If, cst.For, cst.While, cst.With, cst.Try, cst.TryStar, cst.FunctionDef, cst.ClassDef, cst.Match,
)
CLAUSE_TYPES: tuple[type[cst.CSTNode], ...] = (
    cst.ExceptHandler, cst.ExceptStarHandler, cst.Else, cst.Finally, cst.MatchCase,
)
UNIT_TYPES: frozenset[type] = frozenset((cst.SimpleStatementLine, *COMPOUND_TYPES, *CLAUSE_TYPES))
# A unit's codegen stops where its indented body (or another unit) begins.
_STOP_TYPES: frozenset[type] = UNIT_TYPES | {cst.IndentedBlock}


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


# --- which line each statement starts on --------------------------------------------------


class _Mismatch(Exception):
    """The two parsers see different statements here."""


def statement_lines(module: cst.Module, tree: ast.Module) -> dict[cst.CSTNode, int]:
    """The source line each statement (and clause) starts on, by pairing libcst's
    statements with CPython's, whose line numbers are exact.

    A decorated definition starts at its first decorator. Statements the two parsers
    disagree about are left out, with everything below them.
    """
    lines: dict[cst.CSTNode, int] = {}
    _pair_body(module.body, tree.body, lines)
    return lines


def _pair_body(statements: object, ast_statements: list[ast.stmt], lines: dict[cst.CSTNode, int]) -> None:
    cursor = 0
    for statement in statements:  # type: ignore[attr-defined]
        if cursor >= len(ast_statements):
            return
        if isinstance(statement, cst.SimpleStatementLine):
            lines[statement] = ast_statements[cursor].lineno
            # `a = 1; b = 2` is one libcst line holding two statements, two for `ast`.
            cursor += len(statement.body)
            continue
        try:
            _pair_compound(statement, ast_statements[cursor], lines)
        except _Mismatch:
            pass
        cursor += 1


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", None)
    return decorators[0].lineno if decorators else node.lineno


def _pair_block(body: cst.BaseSuite, ast_statements: list[ast.stmt], lines: dict[cst.CSTNode, int]) -> None:
    if isinstance(body, cst.IndentedBlock):
        _pair_body(body.body, ast_statements, lines)


def _pair_clause(clause: cst.CSTNode | None, ast_statements: list[ast.stmt], lines: dict[cst.CSTNode, int]) -> None:
    """An `else:` / `finally:` clause: its first line is known only when its body shares it."""
    if clause is None or not ast_statements:
        return
    body = clause.body  # type: ignore[attr-defined]
    if isinstance(body, cst.SimpleStatementSuite):
        lines[clause] = ast_statements[0].lineno
    _pair_block(body, ast_statements, lines)


_AST_TYPES: dict[type, tuple[type, ...]] = {
    cst.If: (ast.If,),
    cst.For: (ast.For, ast.AsyncFor),
    cst.While: (ast.While,),
    cst.With: (ast.With, ast.AsyncWith),
    cst.Try: (ast.Try,),
    cst.FunctionDef: (ast.FunctionDef, ast.AsyncFunctionDef),
    cst.ClassDef: (ast.ClassDef,),
    cst.Match: (ast.Match,),
}
if hasattr(ast, "TryStar"):
    _AST_TYPES[cst.TryStar] = (ast.TryStar,)


def _pair_compound(statement: cst.CSTNode, node: ast.stmt, lines: dict[cst.CSTNode, int]) -> None:
    if not isinstance(node, _AST_TYPES.get(type(statement), ())):
        raise _Mismatch
    lines[statement] = _first_line(node)
    if isinstance(statement, cst.If):
        _pair_block(statement.body, node.body, lines)  # type: ignore[attr-defined]
        orelse = statement.orelse
        if isinstance(orelse, cst.If):
            if len(node.orelse) != 1:  # type: ignore[attr-defined]
                raise _Mismatch
            _pair_compound(orelse, node.orelse[0], lines)  # type: ignore[attr-defined]
        else:
            _pair_clause(orelse, node.orelse, lines)  # type: ignore[attr-defined]
    elif isinstance(statement, (cst.For, cst.While)):
        _pair_block(statement.body, node.body, lines)  # type: ignore[attr-defined]
        _pair_clause(statement.orelse, node.orelse, lines)  # type: ignore[attr-defined]
    elif isinstance(statement, (cst.Try, cst.TryStar)):
        _pair_block(statement.body, node.body, lines)  # type: ignore[attr-defined]
        handlers = node.handlers  # type: ignore[attr-defined]
        if len(handlers) != len(statement.handlers):
            raise _Mismatch
        for handler, ast_handler in zip(statement.handlers, handlers):
            lines[handler] = ast_handler.lineno
            _pair_block(handler.body, ast_handler.body, lines)
        _pair_clause(statement.orelse, node.orelse, lines)  # type: ignore[attr-defined]
        _pair_clause(statement.finalbody, node.finalbody, lines)  # type: ignore[attr-defined]
    elif isinstance(statement, cst.Match):
        cases = node.cases  # type: ignore[attr-defined]
        if len(cases) != len(statement.cases):
            raise _Mismatch
        for case, ast_case in zip(statement.cases, cases):
            lines[case] = ast_case.pattern.lineno
            _pair_block(case.body, ast_case.body, lines)
    else:  # with, def, class
        _pair_block(statement.body, node.body, lines)  # type: ignore[attr-defined]


# --- one statement's positions ---------------------------------------------------------------


class _Stop(Exception):
    """The codegen of a statement reached its body: everything in its header is placed."""


@dataclass
class _HeaderCodegen(PositionProvidingCodegenState):
    """libcst's position-tracking codegen, stopped at the unit's body, recording plain tuples."""

    root: cst.CSTNode | None = None
    ranges: dict[cst.CSTNode, tuple[int, int, int, int]] = field(default_factory=dict)

    def before_codegen(self, node: cst.CSTNode) -> None:
        if node is not self.root and type(node) in _STOP_TYPES:
            raise _Stop
        self._stack.append((self.line, self.column))  # type: ignore[arg-type]

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._stack.pop()
        if node not in self.ranges:
            self.ranges[node] = (*start, self.line, self.column)  # type: ignore[misc]

    @contextmanager
    def record_syntactic_position(
        self, node: cst.CSTNode, *, start_node: cst.CSTNode | None = None, end_node: cst.CSTNode | None = None
    ) -> Iterator[None]:
        # No `finally`: a stopped codegen records nothing for the nodes it cut short.
        start = (self.line, self.column)
        yield
        end = (self.line, self.column)
        if start_node is not None:
            start = self.ranges[start_node][:2]
        if end_node is not None:
            end = self.ranges[end_node][2:]
        self.ranges[node] = (*start, *end)


@dataclass
class _UnitPositions:
    """One unit's node ranges as its own codegen wrote them, and how to move them into the file."""

    ranges: dict[cst.CSTNode, tuple[int, int, int, int]]
    line_shift: int
    column_shifts: dict[int, int]  # generated line -> columns to add on it

    def place(self, node: cst.CSTNode) -> CodeRange | None:
        span = self.ranges.get(node)
        if span is None:
            return None
        start_line, start_column, end_line, end_column = span
        shifts = self.column_shifts
        return CodeRange(
            (start_line + self.line_shift, start_column + shifts.get(start_line, 0)),
            (end_line + self.line_shift, end_column + shifts.get(end_line, 0)),
        )


def _generated_first_line(unit: cst.CSTNode) -> int:
    """The line of the unit's first token in its own codegen (its leading comments come first)."""
    line = 1 + len(getattr(unit, "leading_lines", ()))
    decorators = getattr(unit, "decorators", ())
    if decorators:
        line += len(decorators[0].leading_lines)
    return line


# --- the file's positions ----------------------------------------------------------------------


class Positions:
    """Node positions in one file, resolved lazily, one innermost statement at a time."""

    def __init__(self, module: cst.Module, source: str, tree: ast.Module | None = None) -> None:
        self.module = module
        self.source = source
        self.lines = source.splitlines()
        # Filled by the walk: id(node) -> the innermost unit holding it; `current` is the
        # unit the walk is in.
        self.owners: dict[int, cst.CSTNode] = {}
        self.current: cst.CSTNode | None = None
        self._tree = tree
        self._first_lines: dict[cst.CSTNode, int] | None = None
        self._units: dict[cst.CSTNode, _UnitPositions | None] = {}
        self._whole: dict[cst.CSTNode, CodeRange] | None = None
        self._indexed = False
        self._line_starts: list[int] | None = None

    def range(self, node: cst.CSTNode) -> CodeRange:
        """The node's range. Only the innermost statement holding it is generated."""
        unit = self.owners.get(id(node))
        if unit is None and not self._indexed and self.current is None:
            self._index_owners()  # positions asked for outside a walk
            unit = self.owners.get(id(node))
        for candidate in (unit, self.current):
            if candidate is not None:
                placed = self._unit(candidate)
                found = placed.place(node) if placed is not None else None
                if found is not None:
                    return found
        return self._whole_module()[node]

    def _whole_module(self) -> dict[cst.CSTNode, CodeRange]:
        if self._whole is None:
            self._whole = resolve_positions(self.module)
        return self._whole

    def _index_owners(self) -> None:
        """Which unit each node is in, for a tree no walk has recorded."""
        self._indexed = True
        owners = self.owners
        stack: list[tuple[cst.CSTNode, cst.CSTNode | None]] = [(self.module, None)]
        while stack:
            node, unit = stack.pop()
            node_type = type(node)
            if node_type in UNIT_TYPES:
                unit = node
            if unit is not None:
                owners[id(node)] = unit
            for name in walk_fields(node_type):
                value = getattr(node, name)
                if type(value) in (tuple, list):
                    stack.extend((child, unit) for child in value if isinstance(child, cst.CSTNode))
                elif isinstance(value, cst.CSTNode):
                    stack.append((value, unit))

    def _unit(self, unit: cst.CSTNode) -> _UnitPositions | None:
        if unit in self._units:
            return self._units[unit]
        placed = self._units[unit] = self._place_unit(unit)
        return placed

    def _place_unit(self, unit: cst.CSTNode) -> _UnitPositions | None:
        """The unit's positions: by finding its text in the file where that is unambiguous (no other
        parse), else at the line CPython's parser gives it."""
        first = _generated_first_line(unit)
        is_if = type(unit) is cst.If
        codegens = {False if is_if else None: self._codegen(unit, False if is_if else None)}
        found = self._search(codegens, first)
        if found is not None and is_if and found[1]:
            # `elif` is written `el` + the `if` line: its rows are searched only where that text stands.
            _ranges, generated, _stopped = codegens[False]
            if self._rows_holding("el" + generated[first - 1], prefix=True):
                codegens[True] = self._codegen(unit, True)
                found = self._search(codegens, first)
        if found is not None and len(found[0]) == 1:
            # The unit's own text always stands where the unit is (libcst writes the file back
            # verbatim), so the one place that holds that text is the unit's place.
            return found[0][0]
        first_line = self._statement_first_lines().get(unit)
        if first_line is None:
            return None
        variant = (type(unit) is cst.If and self._is_elif(unit)) if is_if else None  # type: ignore[arg-type]
        if variant not in codegens:
            codegens[variant] = self._codegen(unit, variant)
        ranges, generated, stopped = codegens[variant]
        return self._placement(ranges, generated, stopped, first, first_line)

    def _search(self, codegens: dict, first: int) -> tuple[list[_UnitPositions], bool] | None:
        """The places holding the unit's text (stopping at two) for each way of writing it, and whether
        the search can say more (it found no place); None when the text cannot be searched for."""
        found: list[_UnitPositions] = []
        for ranges, generated, stopped in codegens.values():
            if first > len(generated) or not generated[first - 1].strip() or generated[first - 1][0] in " \t\f":
                return None
            # A header cut short at its colon may stand on a row that goes on (a comment).
            for row in self._rows_holding(generated[first - 1], prefix=stopped and first == len(generated)):
                placed = self._placement(ranges, generated, stopped, first, row)
                if placed is not None:
                    found.append(placed)
                    if len(found) > 1:
                        return found, False
        return found, True

    def _codegen(self, unit: cst.CSTNode, is_elif: bool | None) -> tuple[dict, list[str], bool]:
        """The unit's header generated on its own: its node ranges, its lines, and whether it was cut short."""
        state = _HeaderCodegen(
            default_indent=self.module.default_indent, default_newline=self.module.default_newline,
            provider=None, root=unit,  # type: ignore[arg-type]
        )
        stopped = False
        try:
            if is_elif is None:
                unit._codegen(state)
            else:
                unit._codegen(state, is_elif=is_elif)  # type: ignore[call-arg]
        except _Stop:
            stopped = True
        generated = _CODEGEN_LINE_END.split("".join(state.tokens))
        if generated[-1] == "":  # the text ends with the unit's newline
            generated.pop()
        return state.ranges, generated, stopped

    def _rows_holding(self, text: str, prefix: bool) -> list[int]:
        """The source rows that read `text` after their indentation (with `prefix`: that start with it)."""
        source, starts = self.source, self.line_starts
        rows: list[int] = []
        at = source.find(text)
        while at != -1:
            row = bisect.bisect_right(starts, at)
            if not source[starts[row - 1]:at].strip(" \t\f"):
                end = at + len(text)
                if prefix or end == len(source) or source[end] in "\r\n":
                    rows.append(row)
            at = source.find(text, at + 1)
        return rows

    def _placement(self, ranges: dict, generated: list[str], stopped: bool, first: int,
                   first_line: int) -> _UnitPositions | None:
        """The unit's positions if its generated line `first` is source row `first_line`; None if the
        source there is not the unit's text."""
        line_shift = first_line - first
        # The indentation of the unit's block: libcst writes it before each line it starts itself
        # (and continuation lines marked to be indented), and the codegen here writes none.
        first_text = self._source_line(first_line)
        indent = first_text[: len(first_text) - len(first_text.lstrip(" \t\f"))] if first_text is not None else ""
        column_shifts: dict[int, int] = {}
        for line in range(first, len(generated) + 1):
            shift = self._column_shift(line + line_shift, generated[line - 1], indent,
                                       cut_short=stopped and line == len(generated))
            if shift is None:
                return None  # the statement is not there
            if shift:
                column_shifts[line] = shift
        return _UnitPositions(ranges, line_shift, column_shifts)

    def _source_line(self, row: int) -> str | None:
        starts = self.line_starts
        if not 0 < row <= len(starts):
            return None
        end = starts[row] if row < len(starts) else len(self.source)
        return self.source[starts[row - 1]:end].rstrip("\r\n")

    @staticmethod
    def _matches(actual: str, written: str, cut_short: bool) -> bool:
        return actual == written or (cut_short and actual.startswith(written))

    def _column_shift(self, row: int, written: str, indent: str, cut_short: bool) -> int | None:
        """How far right of its generated column a node on source line `row` is; None: not that line.

        libcst writes some lines verbatim and starts others with the block's indentation;
        a header cut short at its colon lacks its trailing comment.
        """
        actual = self._source_line(row)
        if actual is None:
            return None
        if self._matches(actual, written, cut_short):
            return 0
        if indent and actual.startswith(indent) and self._matches(actual[len(indent):], written, cut_short):
            return len(indent)
        return None

    def _is_elif(self, node: cst.If) -> bool:
        line = self._statement_first_lines().get(node)
        if line is None:
            return False
        text = self.source[self.line_starts[line - 1]:].lstrip(" \t\f")
        return text.startswith("elif")

    def _statement_first_lines(self) -> dict[cst.CSTNode, int]:
        if self._first_lines is None:
            tree = self._tree
            if tree is None:
                try:
                    tree = ast.parse(self.source)
                except (SyntaxError, ValueError, RecursionError, MemoryError):
                    tree = None
            self._first_lines = statement_lines(self.module, tree) if tree is not None else {}
        return self._first_lines

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
