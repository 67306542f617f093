"""Helpers every reporter shares: ordering, counting, the summary lines."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sync_lint.diagnostics import DOCS_URL, Diagnostic, Edit, FileError, FileResult, Fix

if TYPE_CHECKING:
    from sync_lint.rulekit import Rule

RuleMap = dict[str, "type[Rule]"]

TOOL_NAME = "sync-lint"
from sync_lint import REPOSITORY  # noqa: E402

INFORMATION_URI = REPOSITORY


def tool_version() -> str:
    try:
        from sync_lint import __version__  # type: ignore[attr-defined]
    except ImportError:
        pass
    else:
        return str(__version__)
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # pragma: no cover - always there on 3.8+
        return "0"
    try:
        return version(TOOL_NAME)
    except PackageNotFoundError:
        return "0"


def sorted_diagnostics(results: list[FileResult]) -> list[Diagnostic]:
    # The engine already sorts, but reporters must be deterministic even when
    # results from parallel workers are concatenated out of order.
    return sorted((d for r in results for d in r.diagnostics), key=lambda d: d.sort_key)


def ranked_diagnostics(results: list[FileResult]) -> list[Diagnostic]:
    """The most costly first: per-step code before tests, benchmarks, examples and scripts;
    within each, file by file in position order (see `sync_lint.ranking`)."""
    from sync_lint.ranking import context_rank

    return sorted((d for r in results for d in r.diagnostics), key=lambda d: (context_rank(d.context), d.sort_key))


def sorted_errors(results: list[FileResult]) -> list[FileError]:
    return sorted(
        (e for r in results for e in r.errors),
        key=lambda e: (e.path, e.rule or "", e.message),
    )


def absolute(path: str) -> str:
    return os.path.abspath(path)


def rule_name(diagnostic: Diagnostic, rules: RuleMap) -> str:
    rule = rules.get(diagnostic.code)
    return rule.name if rule is not None else diagnostic.name


def rule_url(code: str, rules: RuleMap, fallback: str | None = None) -> str:
    if fallback:
        return fallback
    rule = rules.get(code)
    return rule.url() if rule is not None else DOCS_URL.format(code=code)


def is_applicable(fix: Fix | None, unsafe_fixes: bool) -> bool:
    """Whether `--fix` (plus `--unsafe-fixes` when set) would apply this fix."""
    if fix is None or not fix.edits:
        return False
    return fix.applicability == "safe" or unsafe_fixes


def fix_marker(diagnostic: Diagnostic, unsafe_fixes: bool) -> str:
    return "[*] " if is_applicable(diagnostic.fix, unsafe_fixes) else ""


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    word = singular if count == 1 else (plural_form or singular + "s")
    return f"{count} {word}"


def single_line_edit(diagnostic: Diagnostic) -> Edit | None:
    """The fix's edit when it is the only one and stays on the diagnostic's row.

    Only then can the fixed line be previewed from `source_line` alone.
    """
    fix = diagnostic.fix
    if fix is None or len(fix.edits) != 1:
        return None
    edit = fix.edits[0]
    row = diagnostic.start.row
    if edit.location is None or edit.end_location is None or edit.location.row != row or edit.end_location.row != row or "\n" in edit.content:
        return None
    return edit


def apply_edit(line: str, edit: Edit) -> str:
    assert edit.location is not None and edit.end_location is not None
    start = max(edit.location.column - 1, 0)
    end = max(edit.end_location.column - 1, start)
    return line[:start] + edit.content + line[end:]


def error_line(error: FileError) -> str:
    suffix = f" [rule {error.rule}]" if error.rule else ""
    return f"error: {error.path}: {error.message}{suffix}"


NO_SUCH_PATH = "no such file or directory"


@dataclass(frozen=True)
class Summary:
    total: int
    fixable: int
    hidden_unsafe: int
    files_with_errors: int
    missing_paths: int = 0
    # Findings in tests, benchmarks, examples and scripts (see `sync_lint.ranking`).
    in_setup: int = 0

    @classmethod
    def of(cls, diagnostics: list[Diagnostic], errors: list[FileError], unsafe_fixes: bool) -> "Summary":
        fixable = sum(1 for d in diagnostics if is_applicable(d.fix, unsafe_fixes))
        hidden = sum(
            1
            for d in diagnostics
            if d.fix is not None and d.fix.edits and not is_applicable(d.fix, unsafe_fixes)
        )
        missing = {e.path for e in errors if e.message == NO_SUCH_PATH}
        others = {e.path for e in errors} - missing
        in_setup = sum(1 for d in diagnostics if d.context != "per-step")
        return cls(len(diagnostics), fixable, hidden, len(others), len(missing), in_setup)

    def lines(self) -> list[str]:
        """ruff's closing lines, plus a note when some files were not fully checked."""
        out: list[str] = []
        if self.total:
            found = f"Found {plural(self.total, 'error')}"
            if self.in_setup:
                found += (f" ({self.in_setup} in tests, benchmarks, examples or scripts: listed last, "
                          "at lower severity)")
            out.append(found + ".")
            hidden = ""
            if self.hidden_unsafe:
                hidden = (
                    f"{plural(self.hidden_unsafe, 'hidden fix', 'hidden fixes')} "
                    "can be enabled with the --unsafe-fixes option"
                )
            if self.fixable:
                line = f"[*] {self.fixable} fixable with --fix"
                out.append(f"{line} ({hidden})." if hidden else f"{line}.")
            elif hidden:
                out.append(f"No fixes available ({hidden}).")
        elif self.files_with_errors:
            # "All checks passed!" would be a lie when some files were skipped.
            out.append("No errors found in the code that could be checked.")
        elif not self.missing_paths:
            out.append("All checks passed!")
        if self.files_with_errors:
            out.append(f"{plural(self.files_with_errors, 'file')} could not be fully checked (see errors above).")
        if self.missing_paths:
            out.append(f"{plural(self.missing_paths, 'path')} not found (see errors above).")
        return out
