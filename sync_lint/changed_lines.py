"""Changed-lines mode: which lines were added or modified since a git revision.

`git diff -U0 REV --` compares REV with the working tree, so uncommitted and
staged edits count; untracked files (minus ignored ones) count as entirely
added. Renamed files are tracked under their new name, and only their changed
hunks count.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from sync_lint.diagnostics import Diagnostic


class ChangedLinesError(Exception):
    """Git could not tell what changed; the message says why."""


@dataclass
class ChangedLines:
    # Git's top level; every key below is relative to it, posix style.
    root: Path
    # Relative paths given to `contains` resolve against this directory.
    cwd: Path
    rows: dict[str, set[int]] = field(default_factory=dict)
    whole_files: set[str] = field(default_factory=set)

    def contains(self, path: str, row: int) -> bool:
        """Whether line `row` (1-based) of `path` was added or modified."""
        key = self._key(path)
        if key is None:
            return False
        return key in self.whole_files or row in self.rows.get(key, ())

    def touches(self, path: str) -> bool:
        """Whether any line of `path` was added or modified (only such files need linting)."""
        key = self._key(path)
        return key is not None and (key in self.whole_files or bool(self.rows.get(key)))

    def _key(self, path: str) -> str | None:
        candidate = Path(os.path.abspath(self.cwd / path))
        # abspath keeps a symlinked cwd as the user spelled it, while git
        # reports the real top level; fall back to the resolved path for that.
        for absolute in (candidate, candidate.resolve()):
            try:
                return absolute.relative_to(self.root).as_posix()
            except ValueError:
                continue
        return None


def filter_diagnostics(
    diagnostics: Iterable[Diagnostic], changed: ChangedLines
) -> list[Diagnostic]:
    """Keep the diagnostics whose span touches an added or modified line."""
    return [
        d for d in diagnostics if any(changed.contains(d.path, row) for row in _rows(d))
    ]


def _rows(diagnostic: Diagnostic) -> range:
    last = diagnostic.end.row
    # The end is exclusive: a span ending at column 1 covers nothing on that row.
    if last > diagnostic.start.row and diagnostic.end.column <= 1:
        last -= 1
    return range(diagnostic.start.row, max(last, diagnostic.start.row) + 1)


def changed_lines(rev: str, cwd: Path) -> ChangedLines:
    """Collect the lines added or modified since `rev` in the repository of `cwd`."""
    cwd = Path(os.path.abspath(cwd))
    top = _git(["rev-parse", "--show-toplevel"], cwd)
    if top.returncode != 0:
        detail = top.stderr.decode("utf-8", errors="replace").strip()
        message = f"not a git repository: {cwd}"
        # Git refuses real repositories too (e.g. "dubious ownership"): say why.
        if detail and "not a git repository" not in detail:
            message += f" (git: {detail})"
        raise ChangedLinesError(message)
    root = Path(os.fsdecode(top.stdout.rstrip(b"\r\n"))).resolve()

    # Reject option-like revisions outright rather than let git parse them.
    commit = None if rev.startswith("-") else _resolve_commit(rev, root)
    if commit is None:
        raise ChangedLinesError(f"unknown revision '{rev}'")

    diff = _git_checked(
        [
            # Names with special characters are C-quoted regardless; this keeps
            # non-ASCII ones readable and avoids octal escapes in the common case.
            "-c",
            "core.quotepath=false",
            "diff",
            "-U0",
            "-M",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            # Explicit prefixes override diff.noprefix / diff.mnemonicPrefix.
            "--src-prefix=a/",
            "--dst-prefix=b/",
            commit,
            "--",
        ],
        root,
    )
    untracked = _git_checked(["ls-files", "-z", "--others", "--exclude-standard"], root)
    return ChangedLines(
        root=root,
        cwd=cwd,
        rows=parse_diff(diff.decode("utf-8", errors="surrogateescape")),
        whole_files={os.fsdecode(name) for name in untracked.split(b"\0") if name},
    )


def _resolve_commit(rev: str, root: Path) -> str | None:
    result = _git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], root)
    if result.returncode != 0:
        return None
    return result.stdout.decode("ascii").strip()


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False)
    except FileNotFoundError:
        raise ChangedLinesError("git is not installed or not on PATH") from None


def _git_checked(args: list[str], cwd: Path) -> bytes:
    result = _git(args, cwd)
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", errors="replace").strip()
        raise ChangedLinesError(f"`git {' '.join(args)}` failed: {detail}")
    return result.stdout


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def parse_diff(text: str) -> dict[str, set[int]]:
    """Map each file of a `git diff -U0` (a/ b/ prefixes) to its added line numbers."""
    rows: dict[str, set[int]] = {}
    current: str | None = None
    # Only lines between "diff --git" and the first hunk are headers: inside a
    # hunk, an added line "++ x" reads "+++ x" and must not switch files.
    in_header = False
    for line in text.split("\n"):
        if line.startswith("diff --git "):
            current, in_header = None, True
        elif in_header and line.startswith("+++ "):
            name = _unquote(line[4:])
            # "/dev/null" marks a deleted file: it has no lines left to report.
            current = name[2:] if name.startswith("b/") else None
        elif line.startswith("@@"):
            in_header = False
            match = _HUNK.match(line)
            if current is None or match is None:
                continue
            start, count = int(match.group(1)), int(match.group(2) or "1")
            # "+N,0" is a pure deletion: no line of the new file changed.
            rows.setdefault(current, set()).update(range(start, start + count))
    return rows


_ESCAPES = {
    "a": 7,
    "b": 8,
    "t": 9,
    "n": 10,
    "v": 11,
    "f": 12,
    "r": 13,
    '"': 34,
    "\\": 92,
}


def _unquote(name: str) -> str:
    """Undo git's quoting of a path in a diff header."""
    if not name.startswith('"'):
        # Git appends a tab to unquoted names containing a space (GNU diff
        # style); a name that really ends in a tab would have been quoted.
        return name[:-1] if name.endswith("\t") and " " in name else name
    raw = bytearray()
    chars = name[1 : name.rindex('"')]
    i = 0
    while i < len(chars):
        char = chars[i]
        if char != "\\":
            raw += char.encode("utf-8", errors="surrogateescape")
            i += 1
        elif chars[i + 1] in _ESCAPES:
            raw.append(_ESCAPES[chars[i + 1]])
            i += 2
        else:
            # Octal escape of one byte of a UTF-8 (or other) encoded name.
            raw.append(int(chars[i + 1 : i + 4], 8))
            i += 4
    return raw.decode("utf-8", errors="surrogateescape")
