"""The engine: read, prefilter, parse once, walk once, report.

`lint_source` checks one file's text. The walk is a single read-only traversal:
at each node the shared analyses update first (imports, device facts,
structural marks such as "this subscript is an assignment target"), then every
enabled rule's handler for that node type runs. `lint_paths` fans files out to
worker processes.
"""

from __future__ import annotations

import ast
import os
import tokenize
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Callable, Iterable, Sequence

import libcst as cst
import pathspec

from sync_lint.analysis.device import ACCELERATOR_NAMES, LEAVE_ATTR_TYPES
from sync_lint.config import Settings
from sync_lint.context import FileContext
from sync_lint.diagnostics import Diagnostic, FileError, FileResult, Position
from sync_lint.rule import Rule
from sync_lint.suppression import file_directives
from sync_lint.tree import walk_fields

SYNTAX_ERROR_CODE = "SL000"


# Tokens from which device inference can derive a GPU fact: `device=`, `.cuda()`,
# `.to(...)`, accelerator strings, and the default gpu-name-patterns. A file with none
# of them cannot hold a tensor the linter would call a GPU tensor.
GPU_EVIDENCE_TOKENS = ("device", ".to(", "_gpu", "_dev", *ACCELERATOR_NAMES)
# In --strict mode a tensor of unknown device is enough.
STRICT_EVIDENCE_TOKENS = ("Tensor", "torch")


@dataclass(frozen=True)
class Prefilter:
    """Decides from a file's text alone whether any enabled rule could fire in it.

    A rule fires only where one of its trigger tokens occurs; a rule that needs a
    GPU tensor also needs some GPU evidence in the file. Files that pass neither
    test are never parsed.
    """

    plain: tuple[str, ...]  # triggers of rules that need no GPU evidence
    gated: tuple[str, ...]  # triggers of rules that do
    evidence: tuple[str, ...] | None  # None: the evidence test is off

    @classmethod
    def for_rules(cls, rules: Sequence[type[Rule]], settings: Settings) -> "Prefilter":
        from sync_lint.analysis.device import GPU_NAMES_DEFAULT

        plain = sorted({t for r in rules if not r.needs_gpu_evidence for t in r.triggers})
        gated = sorted({t for r in rules if r.needs_gpu_evidence for t in r.triggers})
        evidence: tuple[str, ...] | None = (*GPU_EVIDENCE_TOKENS, *settings.gpu_attributes)
        if settings.strict:
            evidence = (*evidence, *STRICT_EVIDENCE_TOKENS)
        if tuple(settings.gpu_name_patterns) != GPU_NAMES_DEFAULT:
            evidence = None  # custom patterns: no token is known to be necessary
        return cls(tuple(plain), tuple(gated), evidence)

    def wants(self, text: str) -> bool:
        if any(token in text for token in self.plain):
            return True
        if not any(token in text for token in self.gated):
            return False
        return self.evidence is None or any(token in text for token in self.evidence)


class _Walker:
    """One read-only pass: analyses update, then every enabled rule's handlers run.

    libcst's own `visit` rebuilds and re-validates every node even for a visitor
    that changes nothing (a third of the run time on a real corpus); this walk
    only reads the syntactic fields.
    """

    def __init__(self, ctx: FileContext, rules: Sequence[Rule], errors: list[FileError]) -> None:
        self.ctx = ctx
        self.devices = ctx.devices
        self.errors = errors
        self.allowed = frozenset(ctx.settings.allowed_sync_contexts)
        self._visit: dict[type, list[tuple[Rule, Callable]]] = defaultdict(list)
        self._leave: dict[type, list[tuple[Rule, Callable]]] = defaultdict(list)
        for rule in rules:
            for kind, node_type, attr in rule.handlers():
                table = self._visit if kind == "visit" else self._leave
                table[node_type].append((rule, getattr(rule, attr)))
        self._allowed_withs: set[int] = set()

    # --- traversal -----------------------------------------------------------------------
    def walk(self, node: cst.CSTNode) -> None:
        node_type = type(node)
        marker = _MARKERS.get(node_type)
        if marker is not None:
            marker(self, node)
        devices = self.devices
        devices.enter(node)
        handlers = self._visit.get(node_type)
        if handlers:
            self._run(handlers, node)
        attribute_hooks = node_type in LEAVE_ATTR_TYPES
        for name in walk_fields(node_type):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                self.walk(value)
            elif isinstance(value, (tuple, list)):
                for child in value:
                    if isinstance(child, cst.CSTNode):
                        self.walk(child)
            if attribute_hooks:
                devices.leave_attribute(node, name)
        handlers = self._leave.get(node_type)
        if handlers:
            self._run(handlers, node)
        devices.leave(node)
        if node_type is cst.With and id(node) in self._allowed_withs:
            self.ctx.allowed_depth -= 1
        elif node_type is cst.SimpleStatementLine:
            self.ctx.statement = None

    def _run(self, handlers: list[tuple[Rule, Callable]], node: cst.CSTNode) -> None:
        for rule, handler in list(handlers):
            try:
                handler(node)
            except Exception as exc:  # one broken rule must not end the run
                self.errors.append(
                    FileError(self.ctx.path, f"rule raised {type(exc).__name__}: {exc}", rule=rule.code)
                )
                self._disable(rule)

    def _disable(self, rule: Rule) -> None:
        for table in (self._visit, self._leave):
            for node_type, handlers in table.items():
                table[node_type] = [h for h in handlers if h[0] is not rule]

    # --- structural marks ---------------------------------------------------------------
    def _mark_assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._mark_store(target.target)

    def _mark_store(self, target: cst.BaseExpression) -> None:
        self.ctx.mark_store(target)
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._mark_store(element.value)

    def _mark_aug_or_ann(self, node: cst.AugAssign | cst.AnnAssign) -> None:
        self.ctx.mark_store(node.target)

    def _mark_test(self, node: cst.If | cst.While | cst.Assert | cst.IfExp | cst.CompIf) -> None:
        self.ctx.mark_condition(node.test)

    def _mark_bool_op(self, node: cst.BooleanOperation) -> None:
        # `a and b`: `a` is always tested; `b` only when the whole is tested.
        self.ctx.mark_condition(node.left)
        if self.ctx.is_condition(node):
            self.ctx.mark_condition(node.right)

    def _mark_statement(self, node: cst.SimpleStatementLine) -> None:
        self.ctx.statement = node

    def _mark_not(self, node: cst.UnaryOperation) -> None:
        if isinstance(node.operator, cst.Not):
            self.ctx.mark_condition(node.expression)

    def _mark_with(self, node: cst.With) -> None:
        for item in node.items:
            call = item.item
            func = call.func if isinstance(call, cst.Call) else call
            name = func.attr.value if isinstance(func, cst.Attribute) else getattr(func, "value", None)
            if name in self.allowed:
                self._allowed_withs.add(id(node))
                self.ctx.allowed_depth += 1
                return


_MARKERS: dict[type, Callable[[_Walker, cst.CSTNode], None]] = {
    cst.Assign: _Walker._mark_assign,
    cst.AugAssign: _Walker._mark_aug_or_ann,
    cst.AnnAssign: _Walker._mark_aug_or_ann,
    cst.If: _Walker._mark_test,
    cst.While: _Walker._mark_test,
    cst.Assert: _Walker._mark_test,
    cst.IfExp: _Walker._mark_test,
    cst.CompIf: _Walker._mark_test,
    cst.BooleanOperation: _Walker._mark_bool_op,
    cst.UnaryOperation: _Walker._mark_not,
    cst.With: _Walker._mark_with,
    cst.SimpleStatementLine: _Walker._mark_statement,
}


# ==========================================================================================
# One file
# ==========================================================================================


def decode_source(data: bytes, path: str) -> str:
    """Decode per PEP 263 (BOM or coding cookie, else UTF-8); raise ValueError naming the file."""
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        raise ValueError(f"{path}: cannot decode file: {exc}") from None


def lint_source(
    source: str,
    path: str,
    rules: Sequence[type[Rule]],
    settings: Settings,
    *,
    ignored_codes: frozenset[str] = frozenset(),
    prefilter: Prefilter | None = None,
) -> FileResult:
    result = FileResult(path=path)
    directives = file_directives(source)
    if directives.skip:
        return result
    active = [r for r in rules if r.code not in ignored_codes and r.code not in directives.ignored_codes]
    if not active:
        return result
    if prefilter is None or len(active) != len(rules):
        prefilter = Prefilter.for_rules(active, settings)
    if not prefilter.wants(source):
        return result
    too_deep = _nesting_error(source, path)
    if too_deep is not None:
        result.diagnostics.append(too_deep)
        return result
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        if SYNTAX_ERROR_CODE not in ignored_codes:
            result.diagnostics.append(_syntax_error(exc, path, source))
        return result
    except RecursionError:
        result.errors.append(FileError(path, "file is too deeply nested to parse"))
        return result
    result.parsed = True
    ctx = FileContext(path, source, module, settings)
    instances = [rule_class() for rule_class in active]
    for instance in instances:
        instance.ctx = ctx
    walker = _Walker(ctx, instances, result.errors)
    try:
        walker.walk(module)
    except RecursionError:
        result.errors.append(FileError(path, "file is too deeply nested to analyse"))
        return result
    if ctx.has_findings:
        result.diagnostics.extend(ctx.diagnostics(ignored_codes | directives.ignored_codes))
    result.diagnostics.sort(key=lambda d: d.sort_key)
    return result


_OPEN_CLOSE = str.maketrans({ch: None for ch in map(chr, range(128)) if ch not in "()[]{}"})


def _nesting_error(source: str, path: str) -> Diagnostic | None:
    """SL000 for bracket nesting CPython rejects; libcst's native parser can crash on it.

    CPython refuses more than 200 nested brackets, libcst segfaults somewhere past
    1,000: a crashed worker would end the whole run, so such files never reach it.
    Brackets inside strings inflate the estimate, which only costs an extra compile.
    """
    depth = deepest = 0
    for ch in source.translate(_OPEN_CLOSE):
        if ch in "([{":
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    if deepest <= 150:
        return None
    try:
        compile(source, path, "exec", ast.PyCF_ONLY_AST)
    except SyntaxError as exc:
        if "nested" in (exc.msg or ""):
            row = exc.lineno or 1
            column = exc.offset or 1
            lines = source.splitlines()
            return Diagnostic(code=SYNTAX_ERROR_CODE, name="syntax-error", message=f"syntax error: {exc.msg}",
                              path=path, start=Position(row, column), end=Position(row, column + 1), noqa_row=row,
                              source_line=lines[row - 1] if row <= len(lines) else "")
    except (ValueError, RecursionError, MemoryError):
        pass
    return None


def _syntax_error(exc: cst.ParserSyntaxError, path: str, source: str) -> Diagnostic:
    lines = source.splitlines()
    row = max(exc.raw_line, 1)
    column = exc.raw_column + 1
    message = exc.message.splitlines()[0] if exc.message else "invalid syntax"
    # libcst's error position is often a line late (`x = = 1` lands on line 2);
    # CPython's parser points at the offending token, so prefer it when it agrees
    # that the file is invalid.
    try:
        compile(source, path, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as py_exc:
        if py_exc.lineno:
            row = min(max(py_exc.lineno, 1), max(len(lines), 1))
            column = max(py_exc.offset or 1, 1)
            message = py_exc.msg or message
    except (ValueError, RecursionError, MemoryError):
        pass
    return Diagnostic(
        code=SYNTAX_ERROR_CODE,
        name="syntax-error",
        message=f"syntax error: {message}",
        path=path,
        start=Position(row, column),
        end=Position(row, column + 1),
        noqa_row=row,
        source_line=lines[row - 1] if row <= len(lines) else "",
    )


# ==========================================================================================
# Many files
# ==========================================================================================


class PerFileIgnores:
    def __init__(self, settings: Settings, known_codes: Iterable[str]) -> None:
        from sync_lint.selection import expand_selectors

        self.root = settings.root
        self._specs = [
            (pathspec.GitIgnoreSpec.from_lines([glob]), frozenset(expand_selectors(codes, known_codes)))
            for glob, codes in settings.per_file_ignores
        ]

    def codes_for(self, path: str) -> frozenset[str]:
        if not self._specs:
            return frozenset()
        try:
            relative = Path(path).resolve().relative_to(self.root).as_posix()
        except ValueError:
            relative = Path(path).as_posix()
        ignored: set[str] = set()
        for spec, codes in self._specs:
            if spec.match_file(relative):
                ignored |= codes
        return frozenset(ignored)


# Worker-process state: set once by the pool initializer, so each task ships only a path.
_WORKER: dict[str, object] = {}


def _init_worker(codes: tuple[str, ...], settings: Settings) -> None:
    from sync_lint.registry import all_rules

    registry = all_rules()
    rules = tuple(registry[c] for c in codes)
    _WORKER.update(rules=rules, settings=settings, prefilter=Prefilter.for_rules(rules, settings),
                   ignores=PerFileIgnores(settings, registry))


def lint_file(path: str, rules: Sequence[type[Rule]], settings: Settings, ignores: PerFileIgnores,
              prefilter: Prefilter | None = None) -> FileResult:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return FileResult(path, errors=[FileError(path, "no such file")])
    except IsADirectoryError:
        return FileResult(path, errors=[FileError(path, "is a directory")])
    except OSError as exc:
        return FileResult(path, errors=[FileError(path, f"cannot read file: {exc.strerror or exc}")])
    try:
        source = decode_source(data, path)
    except ValueError as exc:
        return FileResult(path, errors=[FileError(path, str(exc).split(": ", 1)[-1])])
    try:
        return lint_source(source, path, rules, settings, ignored_codes=ignores.codes_for(path), prefilter=prefilter)
    except Exception as exc:  # an engine bug on one file must not end the run
        return FileResult(path, errors=[FileError(path, f"internal error: {type(exc).__name__}: {exc}")])


def _worker_lint(path: str) -> FileResult:
    return lint_file(path, _WORKER["rules"], _WORKER["settings"], _WORKER["ignores"],  # type: ignore[arg-type]
                     _WORKER["prefilter"])  # type: ignore[arg-type]


def lint_paths(
    paths: Sequence[str],
    rules: Sequence[type[Rule]],
    settings: Settings,
    *,
    jobs: int | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Lint files, in parallel when it pays; results come back in input order."""
    from sync_lint.registry import all_rules

    jobs = jobs or os.cpu_count() or 1
    results: list[FileResult] = []
    if jobs == 1 or len(paths) < 4:
        ignores = PerFileIgnores(settings, all_rules())
        prefilter = Prefilter.for_rules(rules, settings)
        for path in paths:
            result = lint_file(path, rules, settings, ignores, prefilter)
            results.append(result)
            if on_result:
                on_result(result)
        return results
    codes = tuple(r.code for r in rules)
    chunksize = max(1, min(16, len(paths) // (jobs * 8) or 1))
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker, initargs=(codes, settings)) as pool:
        for result in pool.map(_worker_lint, paths, chunksize=chunksize):
            results.append(result)
            if on_result:
                on_result(result)
    return results
