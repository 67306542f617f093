"""What a rule sees of the file it is checking, and where its findings go.

Findings are recorded with their nodes during the walk; positions, evidence
text and fix edits are computed afterwards, and only for files that have
findings (resolving positions for a whole tree costs about as much as parsing
it, and most files have nothing to report).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from sync_lint.analysis.device import DeviceAnalysis
from sync_lint.analysis.facts import Fact, explain
from sync_lint.analysis.imports import ImportTable
from sync_lint.diagnostics import Diagnostic, Edit, Fix, Position
from sync_lint.suppression import is_suppressed

if TYPE_CHECKING:
    from sync_lint.config import Settings
    from sync_lint.rule import FixSpec, Rule


@dataclass
class _Pending:
    rule: "Rule"
    node: cst.CSTNode
    message: str
    fact: Fact | None
    evidence: str | None
    fix: "FixSpec | None"


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
        self._positions: dict[cst.CSTNode, CodeRange] | None = None

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
        if self._positions is None:
            wrapper = MetadataWrapper(self.module, unsafe_skip_copy=True)
            self._positions = dict(wrapper.resolve(PositionProvider))
        return self._positions[node]

    def line_of(self, node: cst.CSTNode) -> int:
        return self.position(node).start.line

    def diagnostics(self, ignored_codes: frozenset[str] = frozenset()) -> list[Diagnostic]:
        lines = self.source.splitlines()
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
