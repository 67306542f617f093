"""Parsing a file with libcst, without re-validating what the parser has just built.

Every libcst node validates itself when it is constructed (`CSTNode.__post_init__`
calls `_validate`), which checks the invariants a hand-built tree could break:
whitespace that must contain no newline, parentheses that must pair up, and so
on. A tree the parser built from source text satisfies them by construction, and
the checks cost about a sixth of `parse_module` on a real corpus (libcst's own
comment on `__post_init__` suggests moving them out of parsing). Nodes built
later (rules' `with_changes`, the fixer) are validated as usual.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import libcst as cst


def _no_validation(self: cst.CSTNode) -> None:
    pass


@contextmanager
def _trusted_construction() -> Iterator[None]:
    original = cst.CSTNode.__dict__.get("__post_init__")
    if original is None:  # pragma: no cover - a libcst that validates elsewhere
        yield
        return
    cst.CSTNode.__post_init__ = _no_validation  # type: ignore[method-assign]
    try:
        yield
    finally:
        cst.CSTNode.__post_init__ = original  # type: ignore[method-assign]


def parse_module(source: str) -> cst.Module:
    """`libcst.parse_module(source)`, the same tree, built without per-node validation."""
    with _trusted_construction():
        return cst.parse_module(source)
