"""Torch versions: parsing, and whether a target release still has a sync."""

from __future__ import annotations


def parse_version(text: str) -> tuple[int, ...]:
    """`2.13.0+cu130` -> (2, 13, 0); stops at the first part without digits."""
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def before_release(target: str | None, release: str | None) -> bool:
    """True when `target` predates `release` (no release, or no target: the sync is assumed)."""
    if release is None or target is None:
        return True
    return parse_version(target) < parse_version(release)
