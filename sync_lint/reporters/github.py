"""`github`: GitHub Actions workflow commands, which become PR annotations.

    ::error title=sync-lint (SL001),file=/abs/a.py,line=3,col=5,endLine=3,endColumn=11::a.py:3:5: SL001 message

File errors are emitted too (as annotations without a rule code), because in
Actions stderr is not annotated and a file that failed to parse would
otherwise go unnoticed in the PR view.
"""

from __future__ import annotations

from sync_lint.diagnostics import Diagnostic, FileError, FileResult
from sync_lint.reporters._common import (
    TOOL_NAME,
    absolute,
    sorted_diagnostics,
    sorted_errors,
)


def escape_data(text: str) -> str:
    # Order matters: `%` first, or the escapes themselves would be re-escaped.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(properties: dict[str, str | int], message: str, level: str = "error") -> str:
    props = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{level} {props}::{message}"


def diagnostic_command(d: Diagnostic) -> str:
    properties: dict[str, str | int] = {
        "title": f"{TOOL_NAME} ({d.code})",
        "file": absolute(d.path),
        "line": d.start.row,
        "col": d.start.column,
        "endLine": d.end.row,
        "endColumn": d.end.column,
    }
    message = escape_data(f"{d.display_location}: {d.code} {d.message}")
    if d.evidence:
        message += "%0A  evidence: " + escape_data(d.evidence)
    from sync_lint.ranking import severity

    return _command(properties, message, severity(d.context))


def error_command(error: FileError) -> str:
    title = f"{TOOL_NAME} error" + (f" ({error.rule})" if error.rule else "")
    return _command({"title": title, "file": absolute(error.path)}, escape_data(f"{error.path}: {error.message}"))


def render_github(results: list[FileResult]) -> str:
    lines = [diagnostic_command(d) for d in sorted_diagnostics(results)]
    lines.extend(error_command(e) for e in sorted_errors(results))
    return "".join(line + "\n" for line in lines)
