"""What a fix run tells the user: unified diffs and the "Fixed N errors" summary."""

from __future__ import annotations

import difflib
import re
from collections import Counter

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def unified_diff(old: str, new: str, path: str) -> str:
    """A unified diff of one file; lines without a final newline are marked like git does."""
    out = []
    for line in difflib.unified_diff(_LINE.findall(old), _LINE.findall(new), fromfile=path, tofile=path):
        out.append(line)
        if not line.endswith(("\n", "\r")):
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def fix_summary(counts: dict[str, Counter], names: dict[str, str], would: bool) -> str:
    """`Fixed 3 errors:` (or `Would fix`) and one line per file and rule."""
    total = sum(sum(c.values()) for c in counts.values())
    if not total:
        return ""
    noun = "error" if total == 1 else "errors"
    lines = [f"{'Would fix' if would else 'Fixed'} {total} {noun}:"]
    for path, counter in counts.items():
        for code, count in sorted(counter.items()):
            name = names.get(code)
            lines.append(f"- {path}: {count} × {code}" + (f" ({name})" if name else ""))
    return "\n".join(lines)
