"""Applying offset edits to a text, and following offsets through them."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Sequence

from sync_lint.diagnostics import Edit, Position

_NEWLINE = re.compile(r"\r\n|\r|\n")


class TextLines:
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


def file_newline(text: str) -> str:
    match = _NEWLINE.search(text)
    return match.group() if match else "\n"


def with_newline(content: str, newline: str) -> str:
    content = content.replace("\r\n", "\n")
    return content if newline == "\n" else content.replace("\n", newline)


@dataclass(frozen=True)
class Placed:
    """An edit of one pass, with the fixes that need it (an import can serve several)."""

    edit: Edit
    owners: tuple[int, ...]
    is_import: bool = False

    @property
    def start(self) -> int:
        return self.edit.start

    @property
    def end(self) -> int:
        return self.edit.end

    @property
    def content(self) -> str:
        return self.edit.content


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    if a[0] == b[0]:
        return True  # two edits at one point: their order would be arbitrary
    return a[0] < b[1] and b[0] < a[1]


def apply_edits(text: str, edits: Sequence[Placed]) -> str:
    out: list[str] = []
    pos = 0
    for edit in edits:
        out.append(text[pos:edit.start])
        out.append(edit.content)
        pos = edit.end
    out.append(text[pos:])
    return "".join(out)


def new_spans(edits: Sequence[Placed]) -> list[tuple[int, int]]:
    """Where each edit's content lies in the new text (offsets)."""
    spans = []
    delta = 0
    for edit in edits:
        start = edit.start + delta
        spans.append((start, start + len(edit.content)))
        delta += len(edit.content) - (edit.end - edit.start)
    return spans


def map_offset(offset: int, edits: Sequence[Placed], spans: Sequence[tuple[int, int]],
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
