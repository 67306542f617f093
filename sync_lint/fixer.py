"""Applying fixes: `check --fix`, `--unsafe-fixes`, `--diff`, `--show-fixes`.

How a file is fixed (`fix_source`):

1. Lint the text. Take the findings whose fix applies (safe ones; unsafe ones
   too with `--unsafe-fixes`), sorted by position, and accept each one whose
   edits do not overlap an edit already accepted. The rest wait for the next
   pass, where the re-lint reports them again at their new positions.
2. Adjust the accepted edits to the file: newlines in the replacement text
   become the file's newline (CRLF files stay CRLF), and a module the fix
   needs (`FixSpec.needs_imports`) is spelled with the file's own alias
   (`import torch as th` turns `torch.where` into `th.where`). A module the
   file does not import at all gets an `import` line after the module
   docstring, the `from __future__` imports and the leading import block.
3. Apply the edits; the result must parse. If it does not, the file is left
   as it was and a FileError names the rule(s) whose fix broke it.
4. Re-lint and check that no fix introduced a finding: every finding in the
   new text must be one that was there before (moved by the edits, matched by
   code and line). A new one inside the text a fix wrote, or one that a
   fix produces when applied alone, rolls that fix back; it is reported as an
   internal error of that rule's fix and never retried in this file.
5. Repeat until nothing is left to fix (at most MAX_PASSES passes).

`apply_fixes_to_results` does this for each file of a run that has an
applicable fix, then writes the file atomically (a temporary file in the same
directory, then os.replace) with its mode bits and its encoding (PEP 263
cookie or UTF-8 BOM) kept; it refuses read-only files and files that changed
on disk while they were being fixed. `--diff` writes nothing and returns a
unified diff. Source read from stdin is never written: the fixed text is
returned for the command line to print.

Every applied fix is also kept as data (`AppliedFix`: rule, text before, text
after) so the runtime verifier can replay it; `fix_snippet` fixes a snippet
with the built-in rules.
"""

from __future__ import annotations

import bisect
import difflib
import os
import re
import stat
import tempfile
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Iterator, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from sync_lint.analysis.imports import dotted_name
from sync_lint.config import Settings
from sync_lint.diagnostics import Diagnostic, FileError, FileResult, Position
from sync_lint.rule import Rule

MAX_PASSES = 10
# A file whose fixes keep getting rolled back still stops after this many attempts.
_MAX_ATTEMPTS = 40
# Beyond this many fixes in one pass, an introduced finding that no fix's own
# text contains is not traced to a fix by applying each one alone.
_MAX_SOLO_CHECKS = 64

_NEWLINE = re.compile(r"\r\n|\r|\n")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class FixError(Exception):
    """fix_snippet could not fix its input cleanly."""


@dataclass
class FixMode:
    unsafe: bool = False
    diff: bool = False


@dataclass(frozen=True)
class AppliedFix:
    """One fix as data: which rule, the text it replaced, the text it wrote.

    `start`/`end` locate the written text in the final source (1-based rows
    and columns, end exclusive). `before`/`after` join a fix's edits with
    " ... " when it has several; `imports` are the import lines it added.
    """

    code: str
    applicability: str
    message: str
    before: str
    after: str
    start: Position
    end: Position
    imports: tuple[str, ...] = ()


@dataclass
class FixOutcome:
    source: str
    new_source: str
    applied: Counter
    remaining: FileResult
    errors: list[FileError] = field(default_factory=list)
    records: list[AppliedFix] = field(default_factory=list)
    passes: int = 0

    @property
    def changed(self) -> bool:
        return self.new_source != self.source

    def __iter__(self) -> Iterator[object]:
        """Unpacks as (new_source, applied, remaining, errors)."""
        return iter((self.new_source, self.applied, self.remaining, self.errors))


@dataclass
class FixReport:
    remaining: list[FileResult]
    diff_text: str
    summary: str
    changed_files: list[str]
    # The fixed (or unchanged) stdin source, for the command line to print.
    stdin_output: str | None = None


# ==========================================================================================
# Text positions
# ==========================================================================================


class _Lines:
    """Offsets <-> 1-based (row, column), splitting lines the way libcst does."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]

    def offset(self, pos: Position) -> int:
        if pos.row < 1 or pos.row > len(self.starts) or pos.column < 1:
            raise ValueError(f"position {pos.row}:{pos.column} is outside the file")
        line_start = self.starts[pos.row - 1]
        line_end = self.starts[pos.row] if pos.row < len(self.starts) else len(self.text)
        offset = line_start + pos.column - 1
        if offset > line_end:
            raise ValueError(f"position {pos.row}:{pos.column} is past the end of its line")
        return offset

    def position(self, offset: int) -> Position:
        row = bisect.bisect_right(self.starts, offset)
        return Position(row, offset - self.starts[row - 1] + 1)

    def row(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)


def _file_newline(text: str) -> str:
    match = _NEWLINE.search(text)
    return match.group() if match else "\n"


def _with_newline(content: str, newline: str) -> str:
    content = content.replace("\r\n", "\n")
    return content if newline == "\n" else content.replace("\n", newline)


# ==========================================================================================
# Fixes as offset edits
# ==========================================================================================


@dataclass
class _Edit:
    start: int
    end: int
    content: str
    owners: tuple[int, ...]  # indexes of the fixes that need this edit
    is_import: bool = False


@dataclass
class _Candidate:
    diagnostic: Diagnostic
    edits: list[tuple[int, int, str]]  # (start, end, content), sorted
    signature: tuple

    @property
    def code(self) -> str:
        return self.diagnostic.code

    @property
    def needs_imports(self) -> tuple[str, ...]:
        return tuple(getattr(self.diagnostic.fix, "needs_imports", ()) or ())


def _is_applicable(diagnostic: Diagnostic, unsafe: bool) -> bool:
    fix = diagnostic.fix
    return fix is not None and bool(fix.edits) and (fix.applicability == "safe" or unsafe)


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    if a[0] == b[0]:
        return True  # two edits at one point: their order would be arbitrary
    return a[0] < b[1] and b[0] < a[1]


def _candidate(diagnostic: Diagnostic, lines: _Lines) -> _Candidate:
    """Raises ValueError when the fix's edits are malformed."""
    assert diagnostic.fix is not None
    edits = []
    for edit in diagnostic.fix.edits:
        start, end = lines.offset(edit.start), lines.offset(edit.end)
        if end < start:
            raise ValueError("an edit ends before it starts")
        edits.append((start, end, edit.content))
    edits.sort(key=lambda e: (e[0], e[1]))
    for first, second in zip(edits, edits[1:]):
        if _overlaps(first[:2], second[:2]):
            raise ValueError("the fix's edits overlap each other")
    signature = (diagnostic.code, tuple((lines.text[s:e], c) for s, e, c in edits))
    return _Candidate(diagnostic, edits, signature)


def _select(candidates: list[_Candidate]) -> list[_Candidate]:
    """Non-overlapping fixes, first come first served in position order."""
    accepted: list[_Candidate] = []
    taken: list[tuple[int, int]] = []
    for candidate in sorted(candidates, key=lambda c: (c.edits[0][0], c.edits[0][1], c.code)):
        spans = [(s, e) for s, e, _ in candidate.edits]
        if any(_overlaps(span, other) for span in spans for other in taken):
            continue
        accepted.append(candidate)
        taken.extend(spans)
    return accepted


def _apply(text: str, edits: Sequence[_Edit]) -> str:
    out: list[str] = []
    pos = 0
    for edit in edits:
        out.append(text[pos:edit.start])
        out.append(edit.content)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


def _new_spans(edits: Sequence[_Edit]) -> list[tuple[int, int]]:
    """Where each edit's content lies in the new text (offsets)."""
    spans = []
    delta = 0
    for edit in edits:
        start = edit.start + delta
        spans.append((start, start + len(edit.content)))
        delta += len(edit.content) - (edit.end - edit.start)
    return spans


def _map_offset(offset: int, edits: Sequence[_Edit], spans: Sequence[tuple[int, int]],
                at_end: bool = False) -> tuple[int, int | None]:
    """The new offset of an old one, and the index of the edit that swallowed it (or None)."""
    delta = 0
    for index, edit in enumerate(edits):
        inside = (edit.start < offset <= edit.end) if at_end else (edit.start <= offset < edit.end)
        if inside:
            return (spans[index][1] if at_end else spans[index][0]), index
        if edit.end <= offset and not (at_end and edit.start == edit.end == offset):
            delta += len(edit.content) - (edit.end - edit.start)
            continue
        break
    return offset + delta, None


# ==========================================================================================
# Imports a fix needs
# ==========================================================================================


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
class _Bindings:
    plain: set[str]  # modules usable under their own dotted name
    aliases: dict[str, str]  # module -> the local name bound to it

    @classmethod
    def of(cls, module: cst.Module) -> "_Bindings":
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


def _spell(content: str, module: str, local: str) -> str:
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


def _import_edit(module: cst.Module, lines: _Lines, modules: Sequence[str], newline: str) -> tuple[int, str]:
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


# ==========================================================================================
# One file
# ==========================================================================================


@dataclass
class _Attempt:
    text: str
    edits: list[_Edit]
    spans: list[tuple[int, int]]
    imports: tuple[str, ...]
    parse_error: str | None = None
    result: FileResult | None = None


class _FileFixer:
    def __init__(self, path: str, rules: Sequence[type[Rule]], settings: Settings, unsafe: bool,
                 ignored_codes: frozenset[str]) -> None:
        from sync_lint.engine import Prefilter

        self.path = path
        self.rules = rules
        self.settings = settings
        self.unsafe = unsafe
        self.ignored_codes = ignored_codes
        self.prefilter = Prefilter.for_rules(rules, settings)
        self.errors: list[FileError] = []
        self.blocked: set[tuple] = set()

    def lint(self, text: str) -> FileResult:
        from sync_lint.engine import lint_source

        return lint_source(text, self.path, self.rules, self.settings, ignored_codes=self.ignored_codes,
                           prefilter=self.prefilter)

    def error(self, message: str, rule: str | None) -> None:
        self.errors.append(FileError(self.path, message, rule=rule))

    # --- building and checking one pass ----------------------------------------------
    def candidates(self, text: str, result: FileResult) -> list[_Candidate]:
        lines = _Lines(text)
        out = []
        for diagnostic in result.diagnostics:
            if not _is_applicable(diagnostic, self.unsafe):
                continue
            try:
                candidate = _candidate(diagnostic, lines)
            except ValueError as exc:
                key = ("malformed", diagnostic.code, diagnostic.start, diagnostic.fix)
                if key not in self.blocked:
                    self.blocked.add(key)
                    self.error(f"internal error in the {diagnostic.code} fix at line {diagnostic.start.row}: "
                               f"{exc}; fix not applied", diagnostic.code)
                continue
            if candidate.signature not in self.blocked:
                out.append(candidate)
        return out

    def attempt(self, text: str, module: cst.Module | None, fixes: Sequence[_Candidate]) -> _Attempt:
        """Apply `fixes` to `text`; parse and re-lint the result."""
        newline = _file_newline(text)
        lines = _Lines(text)
        edits: list[_Edit] = []
        missing: dict[str, list[int]] = {}
        bindings = _Bindings.of(module) if module is not None and any(f.needs_imports for f in fixes) else None
        for index, fix in enumerate(fixes):
            spelled = {}
            for needed in fix.needs_imports:
                assert bindings is not None
                local, add = bindings.local_name(needed)
                if local is not None:
                    spelled[needed] = local
                if add:
                    missing.setdefault(needed, []).append(index)
            for start, end, content in fix.edits:
                content = _with_newline(content, newline)
                # Longest module names first: `torch.nn` before `torch`.
                for needed in sorted(spelled, key=len, reverse=True):
                    content = _spell(content, needed, spelled[needed])
                edits.append(_Edit(start, end, content, (index,)))
        if missing and module is not None:
            offset, content = _import_edit(module, lines, list(missing), newline)
            for edit in edits:
                if edit.start < offset < edit.end:  # a fix rewrites lines across the insertion point
                    offset = lines.starts[lines.row(edit.start) - 1]
            owners = tuple(sorted({i for users in missing.values() for i in users}))
            edits.append(_Edit(offset, offset, content, owners, is_import=True))
        edits.sort(key=lambda e: (e.start, e.end))
        new_text = _apply(text, edits)
        attempt = _Attempt(new_text, edits, _new_spans(edits), tuple(missing))
        try:
            cst.parse_module(new_text)
        except cst.ParserSyntaxError as exc:
            attempt.parse_error = (exc.message or "invalid syntax").splitlines()[0]
            return attempt
        except RecursionError:
            attempt.parse_error = "too deeply nested to parse"
            return attempt
        attempt.result = self.lint(new_text)
        return attempt

    def introduced(self, old_text: str, old: FileResult, fixes: Sequence[_Candidate],
                   attempt: _Attempt) -> list[Diagnostic]:
        """Findings in the new text that were not there before the fixes."""
        assert attempt.result is not None
        old_lines = _Lines(old_text)
        fixed = {id(f.diagnostic) for f in fixes}
        new_lines = _Lines(attempt.text)
        exact: Counter = Counter()
        swallowed: list[tuple[str, int, int]] = []
        for diagnostic in old.diagnostics:
            if id(diagnostic) in fixed:
                continue
            try:
                offset = old_lines.offset(diagnostic.start)
            except ValueError:
                exact[(diagnostic.code, diagnostic.start.row)] += 1
                continue
            new_offset, inside = _map_offset(offset, attempt.edits, attempt.spans)
            if inside is None:
                exact[(diagnostic.code, new_lines.row(new_offset))] += 1
            else:
                start, end = attempt.spans[inside]
                swallowed.append((diagnostic.code, new_lines.row(start), new_lines.row(max(start, end - 1))))
        out = []
        for diagnostic in attempt.result.diagnostics:
            key = (diagnostic.code, diagnostic.start.row)
            if exact[key] > 0:
                exact[key] -= 1
                continue
            match = next((s for s in swallowed if s[0] == diagnostic.code and s[1] <= key[1] <= s[2]), None)
            if match is not None:
                swallowed.remove(match)
                continue
            out.append(diagnostic)
        return out

    def culprits(self, text: str, module: cst.Module, old: FileResult, fixes: Sequence[_Candidate],
                 attempt: _Attempt, introduced: list[Diagnostic]) -> dict[int, list[Diagnostic]]:
        """Which fixes introduced which findings."""
        new_lines = _Lines(attempt.text)
        blame: dict[int, list[Diagnostic]] = {}
        unexplained = []
        for diagnostic in introduced:
            owners: set[int] = set()
            for edit, (start, end) in zip(attempt.edits, attempt.spans):
                if new_lines.row(start) <= diagnostic.start.row <= new_lines.row(max(start, end - 1)):
                    owners.update(edit.owners)
            if owners:
                for owner in owners:
                    blame.setdefault(owner, []).append(diagnostic)
            else:
                unexplained.append(diagnostic)
        if unexplained and len(fixes) > 1 and len(fixes) <= _MAX_SOLO_CHECKS:
            for index, fix in enumerate(fixes):
                if index in blame:
                    continue
                solo = self.attempt(text, module, [fix])
                if solo.result is None:
                    continue
                found = self.introduced(text, old, [fix], solo)
                if found:
                    blame[index] = found
        elif unexplained and len(fixes) == 1:
            blame[0] = unexplained
        return blame

    # --- the loop ----------------------------------------------------------------------
    def run(self, source: str) -> FixOutcome:
        text = source
        result = self.lint(text)
        first_result = result
        applied: Counter = Counter()
        # (fix, before, after, imports, span of the written text in the current text)
        records: list[tuple[_Candidate, str, str, tuple[str, ...], int, int]] = []
        seen = {text}
        passes = 0
        attempts = 0
        while passes < MAX_PASSES and attempts < _MAX_ATTEMPTS:
            attempts += 1
            if not result.parsed:
                break
            fixes = _select(self.candidates(text, result))
            if not fixes:
                break
            try:
                module = cst.parse_module(text)
            except Exception:  # lint parsed it; this cannot really happen
                break
            attempt = self.attempt(text, module, fixes)
            if attempt.parse_error is not None:
                return self.refuse(source, first_result, text, module, fixes, attempt.parse_error)
            introduced = self.introduced(text, result, fixes, attempt)
            if introduced:
                blame = self.culprits(text, module, result, fixes, attempt, introduced)
                if blame:
                    for index, found in sorted(blame.items()):
                        fix = fixes[index]
                        self.blocked.add(fix.signature)
                        what = ", ".join(sorted({f"{d.code} at line {d.start.row}" for d in found}))
                        self.error(f"internal error in the {fix.code} fix at line {fix.diagnostic.start.row}: "
                                   f"it introduced {what}; fix not applied", fix.code)
                    continue  # retry this pass without the culprits
            if attempt.text in seen:
                break  # the fixes go round in circles
            seen.add(attempt.text)
            # Move the spans of earlier fixes through this pass's edits, then add this pass's.
            moved = []
            for fix, before, after, imports, start, end in records:
                new_start, _ = _map_offset(start, attempt.edits, attempt.spans)
                new_end, _ = _map_offset(end, attempt.edits, attempt.spans, at_end=True)
                moved.append((fix, before, after, imports, new_start, max(new_start, new_end)))
            records = moved
            own: dict[int, list[tuple[_Edit, tuple[int, int]]]] = {}
            for edit, span in zip(attempt.edits, attempt.spans):
                if not edit.is_import:
                    own.setdefault(edit.owners[0], []).append((edit, span))
            for index, fix in enumerate(fixes):
                mine = own[index]
                before = " ... ".join(text[e.start:e.end] for e, _ in mine)
                after = " ... ".join(e.content for e, _ in mine)
                imports = tuple(name for name in attempt.imports if name in fix.needs_imports)
                records.append((fix, before, after, imports, mine[0][1][0], mine[-1][1][1]))
                applied[fix.code] += 1
            text = attempt.text
            assert attempt.result is not None
            result = attempt.result
            passes += 1
        lines = _Lines(text)
        applied_fixes = [
            AppliedFix(
                code=fix.code,
                applicability=fix.diagnostic.fix.applicability if fix.diagnostic.fix else "safe",
                message=fix.diagnostic.fix.message if fix.diagnostic.fix else "",
                before=before,
                after=after,
                start=lines.position(start),
                end=lines.position(end),
                imports=imports,
            )
            for fix, before, after, imports, start, end in records
        ]
        if text != source:
            result.fixed_source = text
        result.fixes_applied = dict(applied)
        return FixOutcome(source, text, applied, result, self.errors, applied_fixes, passes)

    def refuse(self, source: str, first_result: FileResult, text: str, module: cst.Module,
               fixes: Sequence[_Candidate], message: str) -> FixOutcome:
        """The fixed text does not parse: name the rule(s) responsible, keep the file as it was."""
        broken = []
        if len(fixes) > 1:
            for fix in fixes:
                if self.attempt(text, module, [fix]).parse_error is not None:
                    broken.append(fix.code)
        codes = sorted(set(broken or [f.code for f in fixes]))
        listed = ", ".join(codes)
        self.error(f"not fixed: the {listed} fix produced code that does not parse ({message}); "
                   "file left unchanged", listed)
        return FixOutcome(source, source, Counter(), first_result, self.errors, [], 0)


def fix_source(
    source: str,
    path: str,
    rules: Sequence[type[Rule]],
    settings: Settings,
    *,
    unsafe: bool,
    ignored_codes: frozenset[str] = frozenset(),
) -> FixOutcome:
    """Fix `source` as far as it goes; see the module docstring for the passes."""
    return _FileFixer(path, rules, settings, unsafe, ignored_codes).run(source)


# ==========================================================================================
# Snippets (for the runtime verifier)
# ==========================================================================================


def snippet_fixes(before: str, *, unsafe: bool, target_torch_version: str = "2.11") -> FixOutcome:
    """Fix a snippet with every built-in rule active for `target_torch_version`."""
    from sync_lint.registry import builtin_rules

    rules = sorted((r for r in builtin_rules() if r.active_for_torch(target_torch_version)), key=lambda r: r.code)
    settings = Settings(target_torch_version=target_torch_version)
    return fix_source(before, "<snippet>", rules, settings, unsafe=unsafe)


def fix_snippet(before: str, *, unsafe: bool, target_torch_version: str = "2.11") -> str:
    """The snippet with every applicable built-in fix applied; FixError when a fix misbehaved."""
    outcome = snippet_fixes(before, unsafe=unsafe, target_torch_version=target_torch_version)
    if outcome.errors:
        raise FixError("; ".join(f"{e.message}" for e in outcome.errors))
    return outcome.new_source


# ==========================================================================================
# Many files
# ==========================================================================================


def _read(path: str) -> tuple[bytes, str, str]:
    """(raw bytes, text, encoding) per PEP 263; `utf-8-sig` keeps a BOM on re-encoding."""
    data = Path(path).read_bytes()
    try:
        encoding, _ = tokenize.detect_encoding(BytesIO(data).readline)
        return data, data.decode(encoding), encoding
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        raise ValueError(f"cannot decode file: {exc}") from None


def _write_atomic(path: str, data: bytes, original: bytes) -> str | None:
    """Replace the file's contents; an error message, or None on success."""
    real = os.path.realpath(path)
    try:
        info = os.stat(real)
    except OSError as exc:
        return f"cannot write file: {exc.strerror or exc}"
    if not info.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(real, os.W_OK):
        return "file is read-only; fixes not written"
    try:
        current = Path(real).read_bytes()
    except OSError as exc:
        return f"cannot re-read file: {exc.strerror or exc}"
    if current != original:
        return "file changed on disk while it was being fixed; fixes not written"
    directory = os.path.dirname(real) or "."
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(real)}.", suffix=".sync-lint.tmp", dir=directory)
    except OSError as exc:
        return f"cannot write file: {exc.strerror or exc}"
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, stat.S_IMODE(info.st_mode))
        if hasattr(os, "chown") and (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
            try:
                os.chown(temp, info.st_uid, info.st_gid)
            except OSError:
                pass
        os.replace(temp, real)
    except OSError as exc:
        try:
            os.unlink(temp)
        except OSError:
            pass
        return f"cannot write file: {exc.strerror or exc}"
    return None


def unified_diff(old: str, new: str, path: str) -> str:
    """A unified diff of one file; lines without a final newline are marked like git does."""
    out = []
    for line in difflib.unified_diff(_LINE.findall(old), _LINE.findall(new), fromfile=path, tofile=path):
        out.append(line)
        if not line.endswith(("\n", "\r")):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def _summary(counts: dict[str, Counter], names: dict[str, str], would: bool) -> str:
    total = sum(sum(c.values()) for c in counts.values())
    if not total:
        return ""
    noun = "error" if total == 1 else "errors"
    lines = [f"{'Would fix' if would else 'Fixed'} {total} {noun}:"]
    for path, counter in counts.items():
        for code, count in sorted(counter.items()):
            name = names.get(code)
            lines.append(f"- {path}: {count} × {code}" + (f" ({name})" if name else ""))
    return "\n".join(lines)


def apply_fixes_to_results(
    results: list[FileResult],
    rules: Sequence[type[Rule]],
    settings: Settings,
    mode: FixMode,
    *,
    stdin_used: bool = False,
    stdin_source: str | None = None,
) -> FixReport:
    """Fix every file of `results` that has an applicable fix.

    With `stdin_used`, `results[0]` is the source read from stdin (its text in
    `stdin_source`): it is never written; with --fix (not --diff) the fixed, or
    unchanged, text comes back in `stdin_output`.
    """
    from sync_lint.engine import PerFileIgnores
    from sync_lint.registry import all_rules

    ignores: PerFileIgnores | None = None
    names = {rule.code: rule.name for rule in rules}
    remaining: list[FileResult] = []
    diffs: list[str] = []
    changed: list[str] = []
    counts: dict[str, Counter] = {}
    stdin_output: str | None = None

    for index, result in enumerate(results):
        is_stdin = stdin_used and index == 0
        fixable = any(_is_applicable(d, mode.unsafe) for d in result.diagnostics)
        if is_stdin and stdin_source is not None and not mode.diff:
            stdin_output = stdin_source
        if not fixable or (is_stdin and stdin_source is None):
            remaining.append(result)
            continue
        if ignores is None:
            ignores = PerFileIgnores(settings, all_rules())
        ignored = ignores.codes_for(result.path)
        original = b""
        encoding = "utf-8"
        if is_stdin:
            assert stdin_source is not None
            text = stdin_source
        else:
            try:
                original, text, encoding = _read(result.path)
            except (OSError, ValueError) as exc:
                message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                result.errors.append(FileError(result.path, f"cannot fix: {message}"))
                remaining.append(result)
                continue
        try:
            outcome = fix_source(text, result.path, rules, settings, unsafe=mode.unsafe, ignored_codes=ignored)
        except Exception as exc:  # a fixer bug on one file must not end the run
            result.errors.append(FileError(result.path, f"internal error while fixing: {type(exc).__name__}: {exc}"))
            remaining.append(result)
            continue
        fixed = outcome.remaining
        fixed.errors.extend(outcome.errors)
        if not outcome.changed:
            remaining.append(fixed)
            continue
        if mode.diff:
            diffs.append(unified_diff(text, outcome.new_source, result.path))
            changed.append(result.path)
            counts[result.path] = outcome.applied
            remaining.append(fixed)
            continue
        if is_stdin:
            stdin_output = outcome.new_source
        else:
            try:
                data = outcome.new_source.encode(encoding)
            except UnicodeEncodeError as exc:
                error = f"the fixed text cannot be encoded as {encoding} ({exc.reason}); fixes not written"
            else:
                error = _write_atomic(result.path, data, original)
            if error is not None:
                result.errors.extend(outcome.errors)
                result.errors.append(FileError(result.path, error))
                remaining.append(result)
                continue
            changed.append(result.path)
        counts[result.path] = outcome.applied
        remaining.append(fixed)

    return FixReport(
        remaining=remaining,
        diff_text="".join(diffs),
        summary=_summary(counts, names, would=mode.diff),
        changed_files=changed,
        stdin_output=stdin_output,
    )
