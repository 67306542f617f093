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
    return f"{d.path}:{d.start.row}:{d.start.column}: {d.code} {fix_marker(d, unsafe_fixes)}{d.message}"


def render_concise(results: list[FileResult], *, statistics: str = "", unsafe_fixes: bool = False) -> str:
    diagnostics = sorted_diagnostics(results)
    errors = sorted_errors(results)
    lines = [diagnostic_line(d, unsafe_fixes) for d in diagnostics]
    lines.extend(error_line(e) for e in errors)
    if lines:
        lines.append("")
    if statistics:
        lines.append(statistics.rstrip("\n"))
        lines.append("")
    lines.extend(Summary.of(diagnostics, errors, unsafe_fixes).lines())
    return "\n".join(lines) + "\n"
