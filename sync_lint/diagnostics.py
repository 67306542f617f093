"""The data every stage of sync-lint passes around: diagnostics, fixes, edits.

A diagnostic is a plain, picklable value: worker processes send them back to the
parent, reporters format them, the fixer applies their edits. Rows and columns
are 1-based, as in ruff's JSON; an end position is exclusive. An edit is one type
from the rule that makes it to the fixer that applies it: offsets into the decoded
text the finding was made on, with the same range as rows and columns for reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Applicability = Literal["safe", "unsafe"]

DOCS_URL = "https://sync-lint.readthedocs.io/en/latest/rules/{code}.html"


@dataclass(frozen=True, order=True)
class Position:
    row: int
    column: int


@dataclass(frozen=True)
class Edit:
    """Replace the text from offset `start` to `end` (exclusive) with `content`.

    `location` and `end_location` are the same range as rows and columns; the engine
    fills them in when it turns a finding into a diagnostic.
    """

    start: int
    end: int
    content: str
    location: Position | None = None
    end_location: Position | None = None


@dataclass(frozen=True)
class Fix:
    applicability: Applicability
    message: str
    edits: tuple[Edit, ...]
    # Modules the fixed code names (e.g. ("torch",)); the fixer adds the imports
    # that are missing, or spells the module with the file's alias.
    needs_imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvidenceStep:
    """One step of why the linter believes what it reports: a sentence and where it happened."""

    message: str
    path: str
    row: int | None = None


@dataclass(frozen=True)
class Diagnostic:
    code: str
    name: str
    message: str
    path: str
    start: Position
    end: Position
    evidence: str | None = None
    fix: Fix | None = None
    noqa_row: int | None = None
    # The text of the first line of the span, kept so reporters never re-read files.
    source_line: str = ""
    # How sure the finding is: "high" when device inference proved the tensor is on the GPU,
    # "convention" when a step rests on a naming convention or one learned from the repository,
    # "strict" when it was only reported because of --strict.
    confidence: str = "high"
    url: str | None = None
    # The evidence as steps, each with its place (this file, or another file of the project).
    evidence_steps: tuple[EvidenceStep, ...] = ()

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.start.row, self.start.column, self.code)


@dataclass(frozen=True)
class FileError:
    """A problem that stopped a file (or one rule on it) from being checked."""

    path: str
    message: str
    rule: str | None = None


@dataclass
class FileResult:
    path: str
    diagnostics: list[Diagnostic] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    parsed: bool = False
    # Fix runs: the fixes applied per code, and with --diff the unified diff of the file.
    fixes_applied: dict[str, int] = field(default_factory=dict)
    diff: str = ""
