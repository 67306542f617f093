"""Baselines: record today's findings so that only new ones fail a check.

A baseline entry identifies a finding by its file, its rule code and a
fingerprint of the flagged source line and its nearest non-blank neighbours,
never by line number: an unrelated edit that shifts the file must not bring an
accepted finding back, while editing the flagged line (or the code right around
it) makes the finding new again.

Matching is a multiset: N entries with the same (file, code, fingerprint) absorb
at most N findings, so duplicating a flagged line reports the copy.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from sync_lint.diagnostics import Diagnostic
from sync_lint.source import write_atomic

BASELINE_VERSION = 1
TOOL_NAME = "sync-lint"

ReadLines = Callable[[str], list[str]]


class BaselineError(Exception):
    """The baseline file cannot be read or written; the message names the file."""


@dataclass(frozen=True)
class BaselineEntry:
    file: str
    code: str
    fingerprint: str
    occurrence: int
    # The flagged line alone: the fallback match when a neighbour changed.
    line_fingerprint: str = ""
    # Informational only: where and what the finding was when the baseline was made.
    line: int = 0
    message: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.file, self.code, self.fingerprint)

    @property
    def sort_key(self) -> tuple[str, int, str, str, int]:
        # Source order reads best in review; the rest makes the order total.
        return (self.file, self.line, self.code, self.fingerprint, self.occurrence)


@dataclass(frozen=True)
class BaselineResult:
    new: list[Diagnostic]
    matched: int
    stale: list[BaselineEntry]


def _normalize(line: str) -> str:
    return " ".join(line.split())


def fingerprint(code: str, lines: list[str], row: int) -> str:
    """Hash the rule code with the text of line `row` (1-based) and its context.

    The context is the nearest non-blank line on each side, so inserting or
    removing blank lines next to a finding doesn't make it new.
    """
    index = row - 1
    center = _normalize(lines[index]) if 0 <= index < len(lines) else ""
    above = next(
        (text for text in map(_normalize, reversed(lines[: max(index, 0)])) if text), ""
    )
    below = next((text for text in map(_normalize, lines[index + 1 :]) if text), "")
    digest = hashlib.sha256("\n".join((code, above, center, below)).encode("utf-8"))
    return digest.hexdigest()


def line_fingerprint(code: str, lines: list[str], row: int) -> str:
    """Hash the rule code with the flagged line alone (no context)."""
    index = row - 1
    center = _normalize(lines[index]) if 0 <= index < len(lines) else ""
    return hashlib.sha256(f"{code}\n{center}".encode("utf-8")).hexdigest()


def _relative_file(path: str, base_dir: Path) -> str:
    """`path` (absolute or relative to the cwd) relative to `base_dir`, posix style."""
    absolute = Path(path)
    if not absolute.is_absolute():
        absolute = Path.cwd() / absolute
    absolute = absolute.resolve()
    try:
        return Path(os.path.relpath(absolute, base_dir)).as_posix()
    except ValueError:
        # Another drive on Windows: no relative path exists.
        return absolute.as_posix()


def _keyed(
    diagnostics: list[Diagnostic], base_dir: Path, read_lines: ReadLines
) -> dict[tuple[str, str, str], list[int]]:
    """Group the indices of `diagnostics` by entry key, each group in source order."""
    files: dict[str, str] = {}
    groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for index, diagnostic in enumerate(diagnostics):
        if diagnostic.path not in files:
            files[diagnostic.path] = _relative_file(diagnostic.path, base_dir)
        key = (
            files[diagnostic.path],
            diagnostic.code,
            fingerprint(
                diagnostic.code, read_lines(diagnostic.path), diagnostic.start.row
            ),
        )
        groups[key].append(index)
    for group in groups.values():
        group.sort(key=lambda i: (diagnostics[i].start, diagnostics[i].end))
    return groups


class Baseline:
    def __init__(self, entries: Iterable[BaselineEntry], base_dir: Path) -> None:
        # Entry files are relative to this directory, the baseline file's own.
        self.base_dir = base_dir.resolve()
        self.entries = sorted(entries, key=lambda e: e.sort_key)

    def filter(
        self,
        diagnostics: list[Diagnostic],
        read_lines: ReadLines,
        checked_paths: Iterable[str] | None = None,
    ) -> BaselineResult:
        """Split `diagnostics` into the new ones and those the baseline absorbs.

        `new` keeps the input order. `stale` lists entries that matched nothing;
        pass `checked_paths` (the files this run checked) to limit it to those
        files, since a run over part of the tree can't tell whether entries for
        the rest still match.
        """
        by_key: dict[tuple[str, str, str], list[BaselineEntry]] = defaultdict(list)
        for entry in self.entries:
            by_key[entry.key].append(entry)

        absorbed: set[int] = set()
        unused: list[BaselineEntry] = []
        for key, group in _keyed(diagnostics, self.base_dir, read_lines).items():
            entries = sorted(by_key.pop(key, ()), key=lambda e: e.occurrence)
            # Which of N identical findings is "the new one" is unknowable; the
            # last ones in the file are reported, like a line appended below.
            absorbed.update(group[: len(entries)])
            unused.extend(entries[len(group) :])
        for entries in by_key.values():
            unused.extend(entries)

        # Second tier: a finding whose neighbours changed (code added right above
        # or below it) still matches an entry with the same flagged line.
        by_line: dict[tuple[str, str, str], list[BaselineEntry]] = defaultdict(list)
        for entry in unused:
            by_line[(entry.file, entry.code, entry.line_fingerprint)].append(entry)
        files: dict[str, str] = {}
        for index, diagnostic in enumerate(diagnostics):
            if index in absorbed:
                continue
            if diagnostic.path not in files:
                files[diagnostic.path] = _relative_file(diagnostic.path, self.base_dir)
            key = (files[diagnostic.path], diagnostic.code,
                   line_fingerprint(diagnostic.code, read_lines(diagnostic.path), diagnostic.start.row))
            candidates = by_line.get(key)
            if candidates:
                candidates.pop(0)
                absorbed.add(index)
        stale = [entry for entries in by_line.values() for entry in entries]
        if checked_paths is not None:
            checked = {_relative_file(path, self.base_dir) for path in checked_paths}
            stale = [entry for entry in stale if entry.file in checked]

        return BaselineResult(
            new=[d for i, d in enumerate(diagnostics) if i not in absorbed],
            matched=len(absorbed),
            stale=sorted(stale, key=lambda e: e.sort_key),
        )


def create_baseline(
    diagnostics: list[Diagnostic], baseline_path: Path, read_lines: ReadLines
) -> int:
    """Write `diagnostics` as a baseline to `baseline_path`; return the entry count."""
    base_dir = baseline_path.absolute().parent.resolve()
    entries = [
        BaselineEntry(
            file=file,
            code=code,
            fingerprint=digest,
            occurrence=occurrence,
            line_fingerprint=line_fingerprint(code, read_lines(diagnostics[index].path), diagnostics[index].start.row),
            line=diagnostics[index].start.row,
            message=diagnostics[index].message,
        )
        for (file, code, digest), group in _keyed(
            diagnostics, base_dir, read_lines
        ).items()
        for occurrence, index in enumerate(group)
    ]
    entries.sort(key=lambda e: e.sort_key)
    document = {
        "tool": TOOL_NAME,
        "version": BASELINE_VERSION,
        "entries": [
            {
                "file": e.file,
                "code": e.code,
                "fingerprint": e.fingerprint,
                "occurrence": e.occurrence,
                "line_fingerprint": e.line_fingerprint,
                "line": e.line,
                "message": e.message,
            }
            for e in entries
        ],
    }
    _write_atomically(
        baseline_path, json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    )
    return len(entries)


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BaselineError(f"cannot write baseline {path}: {error.strerror or error}") from error
    problem = write_atomic(str(path), text.encode("utf-8"))
    if problem is not None:
        raise BaselineError(f"cannot write baseline {path}: {problem}")


def load_baseline(path: Path) -> Baseline:
    """Read a baseline file, raising BaselineError if it is missing or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"baseline file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"cannot read baseline {path}: {error}") from error
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise BaselineError(
            f"invalid baseline {path}: not valid JSON ({error})"
        ) from None
    if not isinstance(document, dict) or document.get("tool") != TOOL_NAME:
        raise BaselineError(f"invalid baseline {path}: not a {TOOL_NAME} baseline")
    version = document.get("version")
    if version != BASELINE_VERSION:
        raise BaselineError(
            f"unsupported baseline version {version!r} in {path} (expected "
            f"{BASELINE_VERSION}); recreate it with `sync-lint baseline create`"
        )
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list):
        raise BaselineError(f"invalid baseline {path}: 'entries' must be a list")
    entries = [_parse_entry(raw, path, index) for index, raw in enumerate(raw_entries)]
    return Baseline(entries, path.absolute().parent)


def _parse_entry(raw: Any, path: Path, index: int) -> BaselineEntry:
    required = {"file": str, "code": str, "fingerprint": str, "occurrence": int}
    optional = {"line": int, "message": str, "line_fingerprint": str}
    if not isinstance(raw, dict):
        raise BaselineError(f"invalid baseline {path}: entry {index} is not an object")
    for name, kind in {**required, **optional}.items():
        present = name in raw
        if (not present and name in required) or (present and not _is(raw[name], kind)):
            raise BaselineError(
                f"invalid baseline {path}: entry {index} needs "
                f"{kind.__name__} field {name!r}"
            )
    return BaselineEntry(
        **{name: raw[name] for name in (*required, *optional) if name in raw}
    )


def _is(value: Any, kind: type) -> bool:
    # bool is an int subclass, but `"line": true` is still malformed.
    return isinstance(value, kind) and not isinstance(value, bool)
