"""What a rule sees of the file it is checking, and where its findings go.

`FileContext` is read-only for rules: the file, the settings and the analyses the
walk keeps up to date. `Findings` collects what rules report during the walk;
positions, evidence text and fix locations are computed afterwards, and only for
files that have findings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Iterator

import libcst as cst

from sync_lint.analysis.conventions import cpu_function
from sync_lint.analysis.device import DeviceAnalysis
from sync_lint.analysis.facts import HANDLE_KINDS, Fact, explain_steps
from sync_lint.analysis.imports import ImportTable
from sync_lint.analysis.marks import SyntaxMarks
from sync_lint.analysis.mirrors import HostMirrors
from sync_lint.diagnostics import Diagnostic, EvidenceStep, Fix, Position
from sync_lint.engine.positions import Positions
from sync_lint.ranking import CONVENTION_IN_TEST, context_of
from sync_lint.suppression import is_suppressed

if TYPE_CHECKING:
    from sync_lint.analysis.provider import Provider
    from sync_lint.config import Settings
    from sync_lint.project.view import ProjectView
    from sync_lint.rulekit.rule import Rule


class FileContext:
    """One file under check: its text and tree, the settings, and the analyses (read-only for rules)."""

    def __init__(self, path: str, source: str, module: cst.Module, settings: "Settings",
                 project: "ProjectView | None" = None) -> None:
        self.path = path
        self.source = source
        self.module = module
        self.settings = settings
        self.project = project  # what the rest of the repository knows; None for a file on its own
        self.positions = Positions(module, source)
        self.marks = SyntaxMarks(settings.allowed_sync_contexts)
        self.imports = ImportTable()
        self.devices = DeviceAnalysis(self.imports, settings.device_settings(), project)
        self.mirrors = HostMirrors(self.marks, self.devices, frozenset(settings.cpu_attributes))

    @property
    def providers(self) -> tuple["Provider", ...]:
        """The analyses in the order the walk updates them on entering a node."""
        return (self.marks, self.imports, self.devices, self.mirrors)

    # --- the source of a node -----------------------------------------------------------
    def code(self, node: cst.CSTNode) -> str:
        """`node` rendered by libcst (normalised layout)."""
        return self.module.code_for_node(node)

    def span(self, node: cst.CSTNode, parentheses: bool = True) -> tuple[int, int]:
        """`node`'s start and end offsets in the source, with its own parentheses or without.

        Fixes splice the file's own text: libcst renders a detached multi-line node
        without the indentation of its enclosing block.
        """
        return self.positions.span(node, parentheses)

    def text(self, node: cst.CSTNode, parentheses: bool = True) -> str:
        """`node`'s source text as written in the file."""
        start, end = self.span(node, parentheses)
        return self.source[start:end]

    def line_of(self, node: cst.CSTNode) -> int:
        return self.positions.line_of(node)


@dataclass
class _Pending:
    rule: "Rule"
    node: cst.CSTNode
    message: str
    fact: Fact | None
    evidence: str | None
    fix: Fix | None
    classes: tuple[str, ...] = ()  # the classes around the node, as the index names them
    also: Fact | None = None  # a second fact the finding rests on (`Rule.report`)
    function: str | None = None  # the module-level function around the node
    innermost: str | None = None  # the function directly around the node
    host_path: str | None = None  # why the node is in code that runs only off CUDA (`SyntaxMarks.host_path`)


_UNSET = object()


def _enclosing(qualname: str) -> Iterator[str]:
    """`qualname` and the qualnames it is nested in, innermost first (`C.m`, then `C`)."""
    parts = qualname.split(".")
    for end in range(len(parts), 0, -1):
        yield ".".join(parts[:end])


def _confidence(fact: Fact | None) -> str:
    if fact is None:
        return "high"
    if fact.value_kind in HANDLE_KINDS or fact.value_kind == "tensor-type":
        # An event or stream waited on (SL401); a legacy GPU tensor type given data (SL304).
        return "convention" if fact.by_convention else "high"
    if not fact.is_tensor:
        return "strict"
    return "convention" if fact.by_convention else "high"


class Findings:
    """What the rules reported in one file, turned into diagnostics after the walk."""

    def __init__(self, ctx: FileContext) -> None:
        self._ctx = ctx
        self._pending: list[_Pending] = []
        # (row, code) of every `# noqa` that suppressed a finding (for SL900, unused-noqa).
        self.used_noqa: set[tuple[int, str]] = set()
        self._cpu_side_known: dict[tuple[str, ...], bool] = {}
        self._off_cuda_known: dict[str, object] = {}

    def add(self, rule: "Rule", node: cst.CSTNode, message: str, *, fact: Fact | None, evidence: str | None,
            fix: Fix | None, also: Fact | None = None) -> None:
        marks = self._ctx.marks
        if marks.in_allowed_context or marks.in_device_code or marks.on_error_path:
            return
        binder = self._ctx.devices.binder
        self._pending.append(_Pending(rule, node, message, fact, evidence, fix, binder.enclosing_classes(), also,
                                      binder.outermost_function(), binder.function_qualname(),
                                      marks.host_path))

    def __bool__(self) -> bool:
        return bool(self._pending)

    def release(self) -> None:
        """Forget the findings once `diagnostics` made them: each holds the rule that reported it, which
        holds this object (a cycle only the collector would free)."""
        self._pending.clear()

    def diagnostics(self, ignored_codes: frozenset[str] = frozenset()) -> list[Diagnostic]:
        ctx = self._ctx
        lines = ctx.positions.lines
        out: list[Diagnostic] = []
        seen: set[tuple[str, int, int]] = set()
        for pending in self._pending:
            code = pending.rule.code
            if code in ignored_codes:
                continue
            span = ctx.positions.range(pending.node)
            start = Position(span.start.line, span.start.column + 1)
            end = Position(span.end.line, span.end.column + 1)
            key = (code, start.row, start.column)
            if key in seen:  # two visits of one construct report it once
                continue
            seen.add(key)
            if is_suppressed(code, lines, (start.row, end.row)):
                self.used_noqa.update(((start.row, code), (end.row, code)))
                continue
            confidence = _confidence(pending.fact)
            if confidence == "convention" and self._cpu_side(pending.classes):
                continue
            left_to_strict = self._left_to_strict(pending, confidence, start.row)
            if left_to_strict and not ctx.settings.strict:
                continue
            evidence = pending.evidence
            steps: tuple[EvidenceStep, ...] = ()
            if evidence is None and pending.fact is not None:
                found = explain_steps(pending.fact, ctx.line_of, ctx.code)
                if pending.also is not None:
                    found += [step for step in explain_steps(pending.also, ctx.line_of, ctx.code) if step not in found]
                evidence = "; ".join(text for text, _where, _line in found if text) or None
                steps = tuple(self._step(text, where, line) for text, where, line in found if text)
            elif evidence is not None:
                steps = (EvidenceStep(evidence, ctx.path, start.row),)
            if left_to_strict:
                confidence = "strict"
                steps += tuple(left_to_strict)
                evidence = "; ".join([*([evidence] if evidence else []), *(step.message for step in left_to_strict)])
            out.append(
                Diagnostic(
                    code=code,
                    name=pending.rule.name,
                    message=pending.message,
                    path=ctx.path,
                    start=start,
                    end=end,
                    evidence=evidence,
                    fix=self._located(pending.fix),
                    noqa_row=start.row,
                    source_line=lines[start.row - 1] if start.row <= len(lines) else "",
                    confidence=confidence,
                    url=pending.rule.url(),
                    evidence_steps=steps,
                )
            )
        return out

    def _cpu_side(self, classes: tuple[str, ...]) -> bool:
        """Inside a data processor's class (`cpu-side-bases`), whose tensors are on the CPU unless a
        device is passed: a GPU that is only a convention is not evidence there."""
        ctx = self._ctx
        bases = ctx.settings.cpu_side_bases
        if ctx.project is None or not bases:
            return False
        known = self._cpu_side_known.get(classes)
        if known is None:  # asked once per class: a file's findings are mostly in a few
            known = self._cpu_side_known[classes] = ctx.project.cpu_side_class(classes, frozenset(bases)) is not None
        return known

    def _left_to_strict(self, pending: _Pending, confidence: str, row: int) -> list[EvidenceStep]:
        """Why the finding is reported only with `--strict`, one step per reason (none: reported by default)."""
        out = []
        # A GPU known only by a convention, in a module-level function that no code that runs
        # mentions: the convention stands for what callers pass, and there are none.
        if confidence == "convention" and pending.function is not None and self._unreferenced(pending.function):
            out.append(self._unreferenced_step(pending.function))
        # A GPU known only by a convention, in a test: a test builds its own inputs, often on the CPU
        # (a CPU unit test, a device patched to the CPU), where the names the conventions read hold
        # CPU tensors. Audits read 37 such findings: 28 false, 9 intended, none real.
        if confidence == "convention" and self._in_test():
            out.append(EvidenceStep(CONVENTION_IN_TEST, self._ctx.path, row))
        # Code written for the CPU platform (`cpu-functions`): a dispatched operator's `forward_cpu`.
        for_cpu = cpu_function(pending.innermost, self._ctx.settings.cpu_functions)
        if for_cpu is not None:
            text = f"`{for_cpu.rsplit('.', 1)[-1]}` runs on the CPU platform, where its tensors are on the " \
                   "CPU (`cpu-functions`)"
            functions = self._ctx.project.summary.functions if self._ctx.project is not None else {}
            info = functions.get(for_cpu)
            out.append(EvidenceStep(text, self._ctx.path, info.line if info is not None else None))
        # An arm that runs only off CUDA: a test of the platform says there is no accelerator, or a tensor
        # is tested not to be on CUDA.
        predicate = self._off_cuda_arm(pending.innermost, row) if pending.host_path is None else None
        if pending.host_path is not None:
            out.append(EvidenceStep(f"this code runs only where {pending.host_path}", self._ctx.path, row))
        elif predicate is not None:
            out.append(EvidenceStep(f"this code runs only where `{predicate.rsplit('.', 1)[-1]}(...)` says the code "
                                    "runs off CUDA (a function returning such a test)", self._ctx.path, row))
        else:
            called = self._called_off_cuda(pending.innermost)
            if called is not None:
                function, where = called
                out.append(self._step(f"`{function.rsplit('.', 1)[-1]}` is called only where the code runs off CUDA, "
                                      "besides tests", where, None))
        # A line that no known call runs: it needs a parameter None and every call passes a value, or
        # not None (true) and every call leaves it None (false).
        if pending.innermost is not None:
            never = self._never_runs(pending.innermost, row)
            if never is not None:
                out.append(self._never_runs_step(pending.innermost, *never))
        return out

    def _in_test(self) -> bool:
        """Whether the file is a test (`ranking.context_of`, from the project's root)."""
        ctx = self._ctx
        root = ctx.project.root if ctx.project is not None and ctx.project.root else ctx.settings.root
        return context_of(ctx.path, root) == "test"

    def _off_cuda_arm(self, innermost: str | None, row: int) -> str | None:
        """The project function whose result puts `row` in code that runs only off CUDA, in the function
        around the node or one it is nested in (`ProjectView.off_cuda_arm`), or None."""
        project = self._ctx.project
        if innermost is None or project is None:
            return None
        return next((found for function in _enclosing(innermost)
                     if (found := project.off_cuda_arm(function, row)) is not None), None)

    def _called_off_cuda(self, innermost: str | None) -> tuple[str, str] | None:
        """(function, `path:line` of a call) when the function around the node, or one it is nested in,
        is called only where the code runs off CUDA (`ProjectView.off_cuda_only`)."""
        project = self._ctx.project
        if innermost is None or project is None:
            return None
        known = self._off_cuda_known.get(innermost, _UNSET)
        if known is _UNSET:  # asked once per function: a file's findings are mostly in a few
            known = next(((function, where) for function in _enclosing(innermost)
                          if (where := project.off_cuda_only(function)) is not None), None)
            self._off_cuda_known[innermost] = known
        return known  # type: ignore[return-value]

    def _unreferenced(self, function: str) -> bool:
        """Whether no code that runs mentions the module-level function (`report-unreferenced` off)."""
        ctx = self._ctx
        # The index remembers each answer: no cache here.
        return ctx.project is not None and not ctx.settings.report_unreferenced and ctx.project.unreferenced(function)

    def _unreferenced_step(self, function: str) -> EvidenceStep:
        from sync_lint.project.infer import unreferenced_reason

        return self._step_at_function(unreferenced_reason(function), function)

    def _never_runs(self, function: str, row: int) -> tuple[str, str] | None:
        """(parameter, what the line needs of it) when no known call of the function runs the line."""
        ctx = self._ctx
        return ctx.project.never_runs(function, row) if ctx.project is not None else None

    def _never_runs_step(self, function: str, param: str, needs: str) -> EvidenceStep:
        from sync_lint.project.infer import never_runs_reason

        return self._step_at_function(never_runs_reason(function, param, needs), function)

    def _step_at_function(self, text: str, function: str) -> EvidenceStep:
        """A step at the `def` line of the module's function `function` (a local qualname)."""
        info = self._ctx.project.summary.functions.get(function)  # type: ignore[union-attr]
        return EvidenceStep(text, self._ctx.path, info.line if info is not None else None)

    def _step(self, text: str, where: str | None, line: int | None) -> EvidenceStep:
        """A step in this file (its line) or in another file of the project (`path:line` from the root)."""
        if where is None:
            return EvidenceStep(text, self._ctx.path, line)
        path, _, row = where.rpartition(":")
        project = self._ctx.project
        if project is not None and project.root:
            path = os.path.relpath(os.path.join(project.root, path))
        return EvidenceStep(text, path, int(row) if row.isdigit() else None)

    def _located(self, fix: Fix | None) -> Fix | None:
        """The fix with each edit's rows and columns filled in, for reports."""
        if fix is None:
            return None
        position = self._ctx.positions.position
        edits = tuple(replace(e, location=position(e.start), end_location=position(e.end)) for e in fix.edits)
        return replace(fix, edits=edits)
