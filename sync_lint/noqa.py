"""`check --add-noqa`: suppress today's findings in place, one `# noqa: CODE` per line.

Each finding's `noqa_row` gets the codes reported on it; a line that already has
`# noqa: X` gets the new codes added to its list. A file is written only when the
edited text still parses to the same statements (a row inside a multi-line string
cannot take a comment), and never for notebooks.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict

from sync_lint.diagnostics import FileResult
from sync_lint.source import SourceError, read_source, write_source
from sync_lint.suppression import noqa_codes

_NOQA_LIST = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*[,\s]\s*[A-Z]+[0-9]+)*)", re.IGNORECASE)


def add_noqa_directives(results: list[FileResult]) -> tuple[int, list[str]]:
    """Add the directives; (how many lines got one, problems as `path: message`)."""
    added = 0
    problems: list[str] = []
    for result in results:
        if not result.diagnostics or result.path.endswith(".ipynb") or result.path == "-":
            continue
        rows: dict[int, set[str]] = defaultdict(set)
        for d in result.diagnostics:
            rows[d.noqa_row or d.start.row].add(d.code)
        try:
            original = read_source(result.path)
        except SourceError as exc:
            problems.append(f"{result.path}: {exc}")
            continue
        lines = original.text.splitlines(keepends=True)
        count = 0
        for row, codes in sorted(rows.items()):
            if not 1 <= row <= len(lines):
                continue
            edited = add_to_line(lines[row - 1], codes)
            if edited != lines[row - 1]:
                lines[row - 1] = edited
                count += 1
        new_text = "".join(lines)
        if not count:
            continue
        if not _same_program(original.text, new_text):
            problems.append(f"{result.path}: a finding's line cannot take a comment (inside a string?); "
                            "no noqa added to this file")
            continue
        problem = write_source(original, new_text)
        if problem is not None:
            problems.append(f"{result.path}: {problem}")
            continue
        added += count
    return added, problems


def add_to_line(line: str, codes: set[str]) -> str:
    """`line` with `codes` in its `# noqa` (appended, or merged into an existing list)."""
    body = line.rstrip("\r\n")
    ending = line[len(body):]
    existing = noqa_codes(body)
    if existing is not None and not existing:
        return line  # a bare `# noqa` already covers everything
    if existing is not None:
        missing = sorted(codes - existing)
        if not missing:
            return line
        match = _NOQA_LIST.search(body)
        assert match is not None
        merged = ", ".join(sorted(existing | codes))
        return body[: match.start("codes")] + merged + body[match.end("codes"):] + ending
    return f"{body.rstrip()}  # noqa: {', '.join(sorted(codes))}{ending}"


def _same_program(before: str, after: str) -> bool:
    try:
        return ast.dump(ast.parse(before)) == ast.dump(ast.parse(after))
    except (SyntaxError, ValueError, RecursionError):
        return False
