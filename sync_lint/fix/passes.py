"""Fixing one file: passes of non-overlapping fixes, each checked before it is kept.

1. Lint the text. Take the findings whose fix applies (safe ones; unsafe ones
   too with `--unsafe-fixes`), sorted by position, and accept each one whose
   edits do not overlap an edit already accepted. The rest wait for the next
   pass, where the re-lint reports them again at their new positions.
2. Adjust the accepted edits to the file: newlines in the replacement text
   become the file's newline (CRLF files stay CRLF), and a module the fix
   needs is spelled with the name bound at run time where the fix writes, or
   imported (`imports.py`).
3. Apply the edits; the result must parse, and pass the self-check
   (`selfcheck.py`: it compiles, its syntax tree is unchanged outside the
   edited statements, every name the edits introduced is bound at run time).
   If it does not, the file is left as it was and a FileError names the
   rule(s) whose fix failed.
4. Re-lint and check that no fix introduced a finding: every finding in the
   new text must be one that was there before (moved by the edits, matched by
   code and line). A new one inside the text a fix wrote, or one that a
   fix produces when applied alone, rolls that fix back; it is reported as an
   internal error of that rule's fix and never retried in this file.
5. Repeat until nothing is left to fix (at most MAX_PASSES passes).

Every applied fix is also kept as data (`AppliedFix`: rule, text before, text
after) so the runtime verifier can replay it; `fix_snippet` fixes a snippet with
the built-in rules. Nothing here reads or writes files (`source.py` does).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import libcst as cst

from sync_lint.config import Settings
from sync_lint.diagnostics import Diagnostic, Edit, FileError, FileResult, Position
from sync_lint.engine.lint import lint_source
from sync_lint.engine.prefilter import Prefilter
from sync_lint.fix.edits import (
    Placed,
    TextLines,
    apply_edits,
    file_newline,
    map_offset,
    new_spans,
    overlaps,
    with_newline,
)
from sync_lint.fix.imports import plan_imports, spell
from sync_lint.fix.scopes import ScopeTree
from sync_lint.fix.selfcheck import check_pass, syntax_error_reason

if TYPE_CHECKING:
    from sync_lint.project.view import ProjectView
    from sync_lint.rulekit.rule import Rule

MAX_PASSES = 10
# A file whose fixes keep getting rolled back still stops after this many attempts.
_MAX_ATTEMPTS = 40
# Beyond this many fixes in one pass, an introduced finding that no fix's own
# text contains is not traced to a fix by applying each one alone.
_MAX_SOLO_CHECKS = 64


class FixError(Exception):
    """fix_snippet could not fix its input cleanly."""


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


@dataclass
class _Candidate:
    diagnostic: Diagnostic
    edits: list[Edit]  # sorted, not overlapping
    signature: tuple

    @property
    def code(self) -> str:
        return self.diagnostic.code

    @property
    def needs_imports(self) -> tuple[str, ...]:
        return tuple(getattr(self.diagnostic.fix, "needs_imports", ()) or ())


def is_applicable(diagnostic: Diagnostic, unsafe: bool) -> bool:
    fix = diagnostic.fix
    return fix is not None and bool(fix.edits) and (fix.applicability == "safe" or unsafe)


def _candidate(diagnostic: Diagnostic, text: str) -> _Candidate:
    """Raises ValueError when the fix's edits are malformed."""
    assert diagnostic.fix is not None
    edits = sorted(diagnostic.fix.edits, key=lambda e: (e.start, e.end))
    for edit in edits:
        if not 0 <= edit.start <= edit.end <= len(text):
            raise ValueError(f"an edit's range {edit.start}..{edit.end} is outside the file")
    for first, second in zip(edits, edits[1:]):
        if overlaps((first.start, first.end), (second.start, second.end)):
            raise ValueError("the fix's edits overlap each other")
    signature = (diagnostic.code, tuple((text[e.start:e.end], e.content) for e in edits))
    return _Candidate(diagnostic, edits, signature)


def _select(candidates: list[_Candidate]) -> list[_Candidate]:
    """Non-overlapping fixes, first come first served in position order."""
    accepted: list[_Candidate] = []
    taken: list[tuple[int, int]] = []
    for candidate in sorted(candidates, key=lambda c: (c.edits[0].start, c.edits[0].end, c.code)):
        spans = [(e.start, e.end) for e in candidate.edits]
        if any(overlaps(span, other) for span in spans for other in taken):
            continue
        accepted.append(candidate)
        taken.extend(spans)
    return accepted




@dataclass
class _Attempt:
    text: str
    edits: list[Placed]
    spans: list[tuple[int, int]]
    imports: dict[int, tuple[str, ...]]  # fix index -> the modules imported for it
    # Why the fixed text is refused: it does not parse, or it fails the self-check.
    parse_error: str | None = None
    check_error: str | None = None
    tree: ScopeTree | None = None  # the fixed text's scopes, when it passed the self-check
    result: FileResult | None = None


class _FileFixer:
    def __init__(self, path: str, rules: Sequence[type[Rule]], settings: Settings, unsafe: bool,
                 ignored_codes: frozenset[str], project: "ProjectView | None" = None) -> None:
        self.path = path
        self.rules = rules
        self.settings = settings
        self.unsafe = unsafe
        self.ignored_codes = ignored_codes
        self.prefilter = Prefilter.for_rules(rules, settings, project=project is not None)
        self.errors: list[FileError] = []
        self.blocked: set[tuple] = set()
        self.project = project

    def lint(self, text: str) -> FileResult:
        return lint_source(text, self.path, self.rules, self.settings, ignored_codes=self.ignored_codes,
                           prefilter=self.prefilter, project=self.project)

    def error(self, message: str, rule: str | None) -> None:
        self.errors.append(FileError(self.path, message, rule=rule))

    # --- building and checking one pass ----------------------------------------------
    def candidates(self, text: str, result: FileResult) -> list[_Candidate]:
        out = []
        for diagnostic in result.diagnostics:
            if not is_applicable(diagnostic, self.unsafe):
                continue
            try:
                candidate = _candidate(diagnostic, text)
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

    def attempt(self, text: str, module: cst.Module, tree: ScopeTree, fixes: Sequence[_Candidate]) -> _Attempt:
        """Apply `fixes` to `text`; parse, self-check and re-lint the result."""
        newline = file_newline(text)
        lines = TextLines(text)
        needs = [(index, fix.edits[0].start, fix.needs_imports) for index, fix in enumerate(fixes) if fix.needs_imports]
        plan = plan_imports(tree, module, lines, needs, [(e.start, e.end) for f in fixes for e in f.edits], newline)
        edits: list[Placed] = []
        for index, fix in enumerate(fixes):
            spelled = plan.spellings.get(index, {})
            for edit in fix.edits:
                content = with_newline(edit.content, newline)
                # Longest module names first: `torch.nn` before `torch`.
                for needed in sorted(spelled, key=len, reverse=True):
                    content = spell(content, needed, spelled[needed])
                edits.append(Placed(Edit(edit.start, edit.end, content), (index,)))
        for offset, content, owners, _modules in plan.insertions:
            edits.append(Placed(Edit(offset, offset, content), owners, is_import=True))
        edits.sort(key=lambda e: (e.start, e.end))
        new_text = apply_edits(text, edits)
        spans = new_spans(edits)
        attempt = _Attempt(new_text, edits, spans, {i: plan.imported_for(i) for i in range(len(fixes))})
        try:
            cst.parse_module(new_text)
        except cst.ParserSyntaxError as exc:
            attempt.parse_error = (exc.message or "invalid syntax").splitlines()[0]
            return attempt
        except RecursionError:
            attempt.parse_error = "too deeply nested to parse"
            return attempt
        verdict = check_pass(tree, new_text, edits, spans)
        if verdict.problem is not None:
            attempt.check_error = verdict.problem
            return attempt
        attempt.tree = verdict.tree
        attempt.result = self.lint(new_text)
        return attempt

    def introduced(self, old_text: str, old: FileResult, fixes: Sequence[_Candidate],
                   attempt: _Attempt) -> list[Diagnostic]:
        """Findings in the new text that were not there before the fixes."""
        assert attempt.result is not None
        old_lines = TextLines(old_text)
        fixed = {id(f.diagnostic) for f in fixes}
        new_lines = TextLines(attempt.text)
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
            new_offset, inside = map_offset(offset, attempt.edits, attempt.spans)
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

    def culprits(self, text: str, module: cst.Module, tree: ScopeTree, old: FileResult,
                 fixes: Sequence[_Candidate], attempt: _Attempt,
                 introduced: list[Diagnostic]) -> dict[int, list[Diagnostic]]:
        """Which fixes introduced which findings."""
        new_lines = TextLines(attempt.text)
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
                solo = self.attempt(text, module, tree, [fix])
                if solo.result is None:
                    continue
                found = self.introduced(text, old, [fix], solo)
                if found:
                    blame[index] = found
        elif unexplained and len(fixes) == 1:
            blame[0] = unexplained
        return blame

    # --- the loop ----------------------------------------------------------------------
    def run(self, source: str, first: FileResult | None = None) -> FixOutcome:
        text = source
        result = first if first is not None else self.lint(text)
        first_result = result
        applied: Counter = Counter()
        # (fix, before, after, imports, span of the written text in the current text)
        records: list[tuple[_Candidate, str, str, tuple[str, ...], int, int]] = []
        seen = {text}
        tree: ScopeTree | None = None  # the current text's scopes, parsed when there is something to fix
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
            if tree is None:
                try:
                    tree = ScopeTree.parse(text)
                except (SyntaxError, ValueError, RecursionError) as exc:
                    listed = ", ".join(sorted({f.code for f in fixes}))
                    self.error(f"not fixed: the fixer checks its edits with Python's own parser, which rejects "
                               f"this file ({syntax_error_reason(exc)}); file left unchanged", listed)
                    break
            attempt = self.attempt(text, module, tree, fixes)
            if attempt.parse_error is not None or attempt.check_error is not None:
                return self.refuse(source, first_result, text, module, tree, fixes, attempt)
            introduced = self.introduced(text, result, fixes, attempt)
            if introduced:
                blame = self.culprits(text, module, tree, result, fixes, attempt, introduced)
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
                new_start, _ = map_offset(start, attempt.edits, attempt.spans)
                new_end, _ = map_offset(end, attempt.edits, attempt.spans, at_end=True)
                moved.append((fix, before, after, imports, new_start, max(new_start, new_end)))
            records = moved
            own: dict[int, list[tuple[Placed, tuple[int, int]]]] = {}
            for edit, span in zip(attempt.edits, attempt.spans):
                if not edit.is_import:
                    own.setdefault(edit.owners[0], []).append((edit, span))
            for index, fix in enumerate(fixes):
                mine = own[index]
                before = " ... ".join(text[e.start:e.end] for e, _ in mine)
                after = " ... ".join(e.content for e, _ in mine)
                imports = attempt.imports[index]
                records.append((fix, before, after, imports, mine[0][1][0], mine[-1][1][1]))
                applied[fix.code] += 1
            text = attempt.text
            tree = attempt.tree
            assert attempt.result is not None
            result = attempt.result
            passes += 1
        lines = TextLines(text)
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
        result.fixes_applied = dict(applied)
        return FixOutcome(source, text, applied, result, self.errors, applied_fixes, passes)

    def refuse(self, source: str, first_result: FileResult, text: str, module: cst.Module, tree: ScopeTree,
               fixes: Sequence[_Candidate], attempt: _Attempt) -> FixOutcome:
        """The fixed text does not parse or fails the self-check: name the rule(s), keep the file as it was."""
        broken = []
        if len(fixes) > 1:
            for fix in fixes:
                solo = self.attempt(text, module, tree, [fix])
                if solo.parse_error is not None or solo.check_error is not None:
                    broken.append(fix.code)
        codes = sorted(set(broken or [f.code for f in fixes]))
        listed = ", ".join(codes)
        if attempt.parse_error is not None:
            why = f"produced code that does not parse ({attempt.parse_error})"
        else:
            why = f"failed the fixer's self-check: {attempt.check_error}"
        self.error(f"not fixed: the {listed} fix {why}; file left unchanged", listed)
        return FixOutcome(source, source, Counter(), first_result, self.errors, [], 0)


def fix_source(
    source: str,
    path: str,
    rules: Sequence[type[Rule]],
    settings: Settings,
    *,
    unsafe: bool,
    ignored_codes: frozenset[str] = frozenset(),
    first: FileResult | None = None,
    project: "ProjectView | None" = None,
) -> FixOutcome:
    """Fix `source` as far as it goes; see the module docstring for the passes.

    `first`: the result of linting `source` with the same rules, when the caller has it;
    `project`: the project knowledge that lint used.
    """
    return _FileFixer(path, rules, settings, unsafe, ignored_codes, project).run(source, first)


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

