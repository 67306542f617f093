"""What a rule sees of the file it is checking, and where its findings go.

Findings are recorded with their nodes during the walk; positions, evidence
text and fix edits are computed afterwards, and only for files that have
findings (resolving positions for a whole tree costs about as much as parsing
it, and most files have nothing to report).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from sync_lint.analysis.device import DeviceAnalysis
from sync_lint.analysis.facts import Fact, explain
from sync_lint.analysis.imports import ImportTable
from sync_lint.diagnostics import Diagnostic, Edit, Fix, Position
from sync_lint.suppression import is_suppressed
from sync_lint.tree import descendants

if TYPE_CHECKING:
    from sync_lint.config import Settings
    from sync_lint.rule import FixSpec, Rule


_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass
class _Pending:
    rule: "Rule"
    node: cst.CSTNode
    message: str
    fact: Fact | None
    evidence: str | None
    fix: "FixSpec | None"


def _resolve_positions(module: cst.Module) -> dict[cst.CSTNode, CodeRange]:
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
    relative = _resolve_positions(alone)
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


class FileContext:
    def __init__(self, path: str, source: str, module: cst.Module, settings: "Settings") -> None:
        self.path = path
        self.source = source
        self.module = module
        self.settings = settings
        self.imports = ImportTable()
        self.devices = DeviceAnalysis(self.imports, settings.device_settings())
        self._pending: list[_Pending] = []
        self._store_targets: set[int] = set()
        self._conditions: set[int] = set()
        self.allowed_depth = 0
        # The simple statement the walk is in (None between statements and in headers).
        self.statement: cst.SimpleStatementLine | None = None
        self._positions: dict[cst.CSTNode, CodeRange] = {}
        self._statement_lines: list[int] | None = None
        self._owners: dict[int, set[int]] = {}
        self._lines = source.splitlines()
        self._line_starts: list[int] | None = None

    # --- structural facts the walk records for rules --------------------------------
    def mark_store(self, node: cst.CSTNode) -> None:
        self._store_targets.add(id(node))

    def is_store(self, node: cst.CSTNode) -> bool:
        """True when `node` is being assigned to (`t[0] = ...`), not read."""
        return id(node) in self._store_targets

    def mark_condition(self, node: cst.CSTNode) -> None:
        self._conditions.add(id(node))

    def is_condition(self, node: cst.CSTNode) -> bool:
        """True when Python evaluates `node` for its truth (`if`, `while`, `assert`, `and`/`or`/`not`)."""
        return id(node) in self._conditions

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    # --- recording ------------------------------------------------------------------------
    def add_finding(
        self,
        rule: "Rule",
        node: cst.CSTNode,
        message: str,
        *,
        fact: Fact | None,
        evidence: str | None,
        fix: "FixSpec | None",
    ) -> None:
        if self.allowed_depth:
            return
        self._pending.append(_Pending(rule, node, message, fact, evidence, fix))

    @property
    def has_findings(self) -> bool:
        return bool(self._pending)

    # --- finalisation -----------------------------------------------------------------------
    def position(self, node: cst.CSTNode) -> CodeRange:
        """The node's range. Only the top-level statement holding it is generated."""
        known = self._positions.get(node)
        if known is not None:
            return known
        if self._statement_lines is None:
            self._statement_lines = _statement_start_lines(self.module, self.source)
        index = self._top_statement_of(node) if self._statement_lines else None
        shifted = None
        if index is not None:
            shifted = _statement_positions(self.module, index, self._statement_lines[index], self._lines)
        self._positions.update(shifted if shifted is not None else _resolve_positions(self.module))
        return self._positions[node]

    def _top_statement_of(self, node: cst.CSTNode) -> int | None:
        for index, statement in enumerate(self.module.body):
            owned = self._owners.get(index)
            if owned is None:
                owned = self._owners[index] = {id(n) for n in descendants(statement)}
            if id(node) in owned:
                return index
        return None

    def span(self, node: cst.CSTNode, parentheses: bool = True) -> tuple[int, int]:
        """`node`'s start and end offsets in the source, with its own parentheses or without.

        Fixes splice the file's own text: libcst renders a detached multi-line node
        without the indentation of its enclosing block.
        """
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in _LINE_END.finditer(self.source)]
        first = last = node
        if parentheses and getattr(node, "lpar", None):
            first, last = node.lpar[0], node.rpar[-1]  # type: ignore[attr-defined]
        start, end = self.position(first).start, self.position(last).end
        return self._line_starts[start.line - 1] + start.column, self._line_starts[end.line - 1] + end.column

    def text(self, node: cst.CSTNode, parentheses: bool = True) -> str:
        """`node`'s source text as written in the file."""
        start, end = self.span(node, parentheses)
        return self.source[start:end]

    def line_of(self, node: cst.CSTNode) -> int:
        return self.position(node).start.line

    def diagnostics(self, ignored_codes: frozenset[str] = frozenset()) -> list[Diagnostic]:
        lines = self._lines
        out: list[Diagnostic] = []
        seen: set[tuple[str, int, int]] = set()
        for pending in self._pending:
            code = pending.rule.code
            if code in ignored_codes:
                continue
            span = self.position(pending.node)
            start = Position(span.start.line, span.start.column + 1)
            end = Position(span.end.line, span.end.column + 1)
            key = (code, start.row, start.column)
            if key in seen:  # two visits of one construct report it once
                continue
            seen.add(key)
            if is_suppressed(code, lines, (start.row, end.row)):
                continue
            evidence = pending.evidence
            if evidence is None and pending.fact is not None:
                evidence = explain(pending.fact, self.line_of, self.code) or None
            out.append(
                Diagnostic(
                    code=code,
                    name=pending.rule.name,
                    message=pending.message,
                    path=self.path,
                    start=start,
                    end=end,
                    evidence=evidence,
                    fix=self._fix(pending.fix),
                    noqa_row=start.row,
                    source_line=lines[start.row - 1] if start.row <= len(lines) else "",
                    confidence="high" if pending.fact is None or pending.fact.is_tensor else "strict",
                    url=pending.rule.url(),
                )
            )
        return out

    def _fix(self, spec: "FixSpec | None") -> Fix | None:
        if spec is None:
            return None
        edits = []
        for replacement in spec.replacements:
            span = self.position(replacement.node)
            content = replacement.new if isinstance(replacement.new, str) else self.module.code_for_node(replacement.new)
            edits.append(
                Edit(
                    content=content,
                    start=Position(span.start.line, span.start.column + 1),
                    end=Position(span.end.line, span.end.column + 1),
                )
            )
        return Fix(spec.applicability, spec.message, tuple(edits), tuple(spec.needs_imports))
