"""SL900 (`unused-noqa`, ruff's RUF100): a `# noqa: SLxxx` that suppresses nothing.

Only codes of rules that ran on the file count: a code of a rule that is not
selected, is off for the target torch, or ignored for the file might fire in
another configuration, and codes of other tools (`E501`) are none of our business.
A bare `# noqa` is left alone. The fix (safe) removes the unused codes, or the
whole comment when none is left.
"""

from __future__ import annotations

import io
import re
import tokenize

from sync_lint.diagnostics import Diagnostic, Edit, Fix, Position
from sync_lint.suppression import noqa_codes

CODE = "SL900"
NAME = "unused-noqa"
_DIRECTIVE = re.compile(r"#\s*noqa:\s*(?P<codes>[A-Z]+[0-9]+(?:\s*[,\s]\s*[A-Z]+[0-9]+)*)", re.IGNORECASE)


def _comments(source: str) -> list[tuple[int, int, str]]:
    """(row, column from 0, text) of every comment; a file tokenize rejects has none we trust."""
    try:
        return [(tok.start[0], tok.start[1], tok.string)
                for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return []


def _may_list_checked(source: str, checked: set[str]) -> bool:
    """Whether any comment could list a checked code: every `#` of a line that mentions `noqa` is
    taken as a comment's start, so this over-approximates what `_comments` finds. Tokenizing took
    10 ms of a one-file check of vLLM's `gpu_input_batch.py`; most `noqa` comments name other
    tools' codes (`E501`) and need none."""
    for line in source.split("\n"):  # not `splitlines`: a form feed inside a comment does not end it
        if "noqa" not in line.lower():
            continue
        start = line.find("#")
        while start != -1:
            if checked & (noqa_codes(line[start:]) or frozenset()):
                return True
            start = line.find("#", start + 1)
    return False


def unused_noqa(source: str, path: str, checked: set[str], used: set[tuple[int, str]],
                lines: list[str]) -> list[Diagnostic]:
    if "noqa" not in source or not _may_list_checked(source, checked):
        return []
    out: list[Diagnostic] = []
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    for row, column, comment in _comments(source):
        codes = noqa_codes(comment)
        match = _DIRECTIVE.search(comment)
        if not codes or match is None:
            continue
        unused = sorted(code for code in codes if code in checked and (row, code) not in used)
        if not unused:
            continue
        kept = [code for code in re.split(r"[,\s]+", match.group("codes").strip()) if code and code.upper() not in unused]
        line = lines[row - 1] if row <= len(lines) else ""
        start_col = column + match.start()
        end_col = column + match.end()
        if kept:
            new_text = comment[: match.start("codes")] + ", ".join(kept) + comment[match.end("codes"):]
            edit_start, edit_end, content = column, column + len(comment), new_text
            message = "Remove the unused codes"
        else:
            # The directive is the whole comment or its tail: drop it with the spaces before it.
            before = line[:start_col]
            trimmed = before.rstrip()
            rest = comment[match.end():].strip()
            if comment[: match.start()].strip("# \t"):
                edit_start, edit_end, content = column + match.start(), column + match.end(), ""
            elif rest:
                edit_start, edit_end, content = column, column + len(comment), "# " + rest.lstrip("# ")
            else:
                edit_start, edit_end, content = len(trimmed), column + len(comment), ""
            message = "Remove the unused `noqa` directive"
        base = offsets[row - 1]
        edit = Edit(base + edit_start, base + edit_end, content, Position(row, edit_start + 1),
                    Position(row, edit_end + 1))
        listed = ", ".join(f"`{code}`" for code in unused)
        out.append(Diagnostic(
            code=CODE, name=NAME,
            message=f"unused `noqa` directive: {listed} reported nothing on this line",
            path=path, start=Position(row, start_col + 1), end=Position(row, end_col + 1),
            fix=Fix("safe", message, (edit,)), noqa_row=row, source_line=line,
        ))
    return out
