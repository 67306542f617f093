"""One file: prefilter, parse once, walk once, report."""

from __future__ import annotations

import ast
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import libcst as cst

from sync_lint.diagnostics import Diagnostic, FileError, FileResult, Position
from sync_lint.engine.context import FileContext, Findings
from sync_lint.engine.parse import parse_ahead, parse_module
from sync_lint.engine.prefilter import Prefilter, rules_to_run
from sync_lint.engine.walker import Walker
from sync_lint.source import SourceError, read_source
from sync_lint.suppression import file_directives

UNUSED_NOQA_CODE = "SL900"

if TYPE_CHECKING:
    from sync_lint.config import Settings
    from sync_lint.project.view import ProjectView
    from sync_lint.rulekit.rule import Rule

SYNTAX_ERROR_CODE = "SL000"


def lint_source(
    source: str,
    path: str,
    rules: Sequence[type["Rule"]],
    settings: "Settings",
    *,
    ignored_codes: frozenset[str] = frozenset(),
    prefilter: Prefilter | None = None,
    project: "ProjectView | None" = None,
) -> FileResult:
    """Check one file's text with `rules`; the result holds its diagnostics and errors.

    `project` is what the rest of the repository knows (None: the file on its own).
    """
    result = FileResult(path=path)
    active = rules_to_run(source, path, rules, settings, ignored_codes=ignored_codes, prefilter=prefilter,
                          in_project=project is not None, root=project.root if project is not None else None)
    if not active:
        return result
    directives = file_directives(source)
    too_deep = _nesting_error(source, path)
    if too_deep is not None:
        result.diagnostics.append(too_deep)
        return result
    try:
        module = parse_module(source)
    except cst.ParserSyntaxError as exc:
        if SYNTAX_ERROR_CODE not in ignored_codes:
            result.diagnostics.append(_syntax_error(exc, path, source))
        return result
    except RecursionError:
        result.errors.append(FileError(path, "file is too deeply nested to parse"))
        return result
    result.parsed = True
    ctx = FileContext(path, source, module, settings, project)
    findings = Findings(ctx)
    instances = [rule_class() for rule_class in active]
    for instance in instances:
        instance.ctx = ctx
        instance.findings = findings
    try:
        try:
            Walker(ctx, instances, result.errors).walk(module)
        except RecursionError:
            result.errors.append(FileError(path, "file is too deeply nested to analyse"))
            return result
        if findings:
            result.diagnostics.extend(findings.diagnostics(ignored_codes | directives.ignored_codes))
    finally:
        findings.release()
        ctx.devices.release()
    if UNUSED_NOQA_CODE in {r.code for r in active}:
        from sync_lint.engine.unused_noqa import unused_noqa

        checked = {r.code for r in active} - ignored_codes - directives.ignored_codes - {UNUSED_NOQA_CODE}
        result.diagnostics.extend(unused_noqa(source, path, checked, findings.used_noqa, ctx.positions.lines))
    result.diagnostics.sort(key=lambda d: d.sort_key)
    result.diagnostics = merge_same_line(result.diagnostics)
    return result


def merge_same_line(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """One finding per line, rule and cause: `a[s[i]:s[i + 1]]` is one problem, not two.

    Findings merge when they share the row, the code, the message and the evidence; the
    merged one keeps the first's position and counts the sites (`occurrences`). Fixes
    merge when all have one of the same kind and their edits do not overlap; otherwise
    the findings stay apart, so that no fix is lost.
    """
    groups: dict[tuple, list[Diagnostic]] = {}
    order: list[tuple] = []
    for d in diagnostics:
        key = (d.code, d.start.row, d.message, d.evidence)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(d)
    out: list[Diagnostic] = []
    for key in order:
        group = groups[key]
        if len(group) == 1:
            out.append(group[0])
            continue
        fixes = [d.fix for d in group]
        if all(f is None for f in fixes):
            fix = None
        elif all(f is not None for f in fixes) and len({(f.applicability, f.message) for f in fixes}) == 1:
            edits = sorted((e for f in fixes for e in f.edits), key=lambda e: (e.start, e.end))
            if any(b.start < a.end for a, b in zip(edits, edits[1:])):
                out.extend(group)
                continue
            first = fixes[0]
            needs = tuple(dict.fromkeys(m for f in fixes for m in f.needs_imports))
            fix = replace(first, edits=tuple(edits), needs_imports=needs)
        else:
            out.extend(group)
            continue
        out.append(replace(group[0], fix=fix, occurrences=sum(d.occurrences for d in group)))
    return out


def lint_file(
    path: str,
    rules: Sequence[type["Rule"]],
    settings: "Settings",
    ignored_codes: frozenset[str] = frozenset(),
    prefilter: Prefilter | None = None,
) -> FileResult:
    """Read, decode and check one file; read and engine errors become FileErrors, never exceptions."""
    try:
        source = read_source(path).text
    except SourceError as exc:
        return FileResult(path, errors=[FileError(path, str(exc))])
    try:
        return lint_source(source, path, rules, settings, ignored_codes=ignored_codes, prefilter=prefilter)
    except Exception as exc:  # an engine bug on one file must not end the run
        return FileResult(path, errors=[FileError(path, f"internal error: {type(exc).__name__}: {exc}")])


def parse_file_ahead(path: str, rules: Sequence[type["Rule"]], settings: "Settings") -> None:
    """Parse a file before its check (with its project) asks for the tree (`parse.parse_ahead`), on a
    deep stack as the check does; a file the check would not parse as it stands is left alone."""
    from sync_lint.engine.stack import call_with_deep_stack

    try:
        source = read_source(path).text
    except SourceError:
        return
    if path.endswith(".ipynb") or file_directives(source).skip or _nesting_error(source, path) is not None:
        return
    if not Prefilter.for_rules([r for r in rules if not r.project_rule], settings, project=True).wants(source):
        return
    call_with_deep_stack(parse_ahead, source)


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
            return _syntax_diagnostic(path, source, exc.lineno or 1, exc.offset or 1, exc.msg)
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
    return _syntax_diagnostic(path, source, row, column, message)


def _syntax_diagnostic(path: str, source: str, row: int, column: int, message: str) -> Diagnostic:
    lines = source.splitlines()
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
