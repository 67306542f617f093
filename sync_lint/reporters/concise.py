"""`concise`: one `path:row:col: CODE [*] message` line per diagnostic."""

from __future__ import annotations

from sync_lint.diagnostics import Diagnostic, FileResult
from sync_lint.reporters._common import (
    Summary,
    error_line,
    fix_marker,
    sorted_diagnostics,
    sorted_errors,
)


def diagnostic_line(d: Diagnostic, unsafe_fixes: bool) -> str:
    return f"{d.display_location}: {d.code} {fix_marker(d, unsafe_fixes)}{d.message}"


def render_concise(results: list[FileResult], *, statistics: str = "", unsafe_fixes: bool = False,
                   quiet: bool = False) -> str:
    diagnostics = sorted_diagnostics(results)
    errors = sorted_errors(results)
    lines = [] if statistics else [diagnostic_line(d, unsafe_fixes) for d in diagnostics]
    lines.extend(error_line(e) for e in errors)
    if lines and not quiet:
        lines.append("")
    if statistics:  # ruff: --statistics prints the table instead of the findings
        lines.append(statistics.rstrip("\n"))
        if not quiet:
            lines.append("")
    if not quiet:
        lines.extend(Summary.of(diagnostics, errors, unsafe_fixes).lines())
    return "\n".join(lines) + "\n" if lines else ""
