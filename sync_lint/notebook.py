"""Jupyter notebooks: lint the code cells as one module, report positions in cells.

The code cells are joined in order (a blank line between cells keeps a cell's last
statement from running into the next one); IPython magics and shell escapes
(`%timeit ...`, `!pip ...`, `%%bash` cells) become comments of the same length, so
rows and columns stay put. A finding's row is then mapped back to its cell: the
report says `train.ipynb:cell 3:2:5` (cell numbers count code cells from 1, as
ruff does). Fixes are never written into notebooks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from sync_lint.diagnostics import Diagnostic, EvidenceStep, Position


class NotebookError(Exception):
    """The file is not a notebook sync-lint can read; the message says why."""


@dataclass(frozen=True)
class Notebook:
    text: str
    # For each code cell: (its number among code cells, from 1; its first row in `text`, from 1; its row count).
    cells: tuple[tuple[int, int, int], ...]

    def locate(self, row: int) -> tuple[int, int] | None:
        """(cell number, row within the cell) of a row of the joined text."""
        for number, first, count in self.cells:
            if first <= row < first + count:
                return number, row - first + 1
        return None


def _neutral(line: str) -> str:
    """A magic or shell line as a comment of the same width."""
    stripped = line.lstrip()
    if stripped.startswith(("%", "!", "?")):
        indent = len(line) - len(stripped)
        return line[:indent] + "#" + stripped[1:]
    return line


def parse_notebook(data: str) -> Notebook:
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise NotebookError(f"not a valid notebook (JSON error: {exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise NotebookError("not a valid notebook (no `cells` list)")
    language = (document.get("metadata") or {}).get("language_info", {}).get("name", "python")
    if language not in ("python", "ipython", "python3"):
        raise NotebookError(f"not a Python notebook (language {language!r})")
    lines: list[str] = []
    cells: list[tuple[int, int, int]] = []
    number = 0
    for cell in document["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        number += 1
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        cell_lines = text.splitlines() or [""]
        if cell_lines[0].lstrip().startswith("%%"):
            cell_lines = ["#" + line for line in cell_lines]  # a cell magic: not Python
        else:
            cell_lines = [_neutral(line) for line in cell_lines]
        cells.append((number, len(lines) + 1, len(cell_lines)))
        lines.extend(cell_lines)
        lines.append("")  # a separator row that belongs to no cell
    return Notebook("\n".join(lines) + "\n", tuple(cells))


def map_diagnostic(diagnostic: Diagnostic, notebook: Notebook) -> Diagnostic:
    """The diagnostic with rows inside its cell, the cell number set and no fix."""
    where = notebook.locate(diagnostic.start.row)
    if where is None:
        return replace(diagnostic, fix=None)
    cell, row = where
    shift = diagnostic.start.row - row
    end = diagnostic.end
    end = Position(max(end.row - shift, 1), end.column)
    steps = tuple(
        replace(step, row=notebook.locate(step.row)[1] if step.row is not None and step.path == diagnostic.path
                and notebook.locate(step.row) else step.row)
        for step in diagnostic.evidence_steps
    )
    return replace(diagnostic, start=Position(row, diagnostic.start.column), end=end, cell=cell, fix=None,
                   noqa_row=None if diagnostic.noqa_row is None else diagnostic.noqa_row - shift,
                   evidence_steps=steps)


def is_notebook(path: str) -> bool:
    return path.endswith(".ipynb")


__all__ = ["Notebook", "NotebookError", "parse_notebook", "map_diagnostic", "is_notebook", "EvidenceStep"]
