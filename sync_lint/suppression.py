"""`# noqa` comments and file-level directives, with ruff's semantics.

`# noqa` on a line suppresses every finding that starts (or ends) on it;
`# noqa: SL101, SL102` only those codes. `# sync-lint: skip-file` (or
`# sync-lint: noqa`) on a line of its own skips the whole file;
`# sync-lint: noqa: SL101` ignores those codes in the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NOQA = re.compile(
    r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:\s*[,\s]\s*[A-Z]+[0-9]+)*))?",
    re.IGNORECASE,
)
_FILE_DIRECTIVE = re.compile(
    r"^[ \t]*#[ \t]*sync-lint:[ \t]*(?P<what>skip-file|noqa)(?::[ \t]*(?P<codes>[A-Z0-9, \t]+))?[ \t]*$",
    re.MULTILINE,
)
_CODE_SPLIT = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class FileDirectives:
    skip: bool
    ignored_codes: frozenset[str]


def file_directives(source: str) -> FileDirectives:
    if "sync-lint:" not in source:
        return FileDirectives(False, frozenset())
    skip = False
    codes: set[str] = set()
    for match in _FILE_DIRECTIVE.finditer(source):
        listed = match.group("codes")
        if match.group("what") == "skip-file" or not listed:
            skip = True
        else:
            codes.update(c for c in _CODE_SPLIT.split(listed.strip()) if c)
    return FileDirectives(skip, frozenset(codes))


def noqa_codes(line: str) -> frozenset[str] | None:
    """None when the line has no noqa; an empty set for a blanket `# noqa`."""
    if "#" not in line:
        return None
    match = _NOQA.search(line)
    if match is None:
        return None
    listed = match.group("codes")
    if not listed:
        return frozenset()
    return frozenset(c.upper() for c in _CODE_SPLIT.split(listed) if c)


def is_suppressed(code: str, lines: list[str], rows: tuple[int, ...]) -> bool:
    for row in rows:
        if 1 <= row <= len(lines):
            codes = noqa_codes(lines[row - 1])
            if codes is not None and (not codes or code in codes):
                return True
    return False
