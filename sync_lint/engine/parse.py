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


# Trees parsed ahead of their check (`parse_ahead`), by source text; each is taken once.
_AHEAD: dict[str, cst.Module] = {}


def parse_module(source: str) -> cst.Module:
    """`libcst.parse_module(source)`, the same tree, built without per-node validation."""
    ahead = _AHEAD.pop(source, None)
    if ahead is not None:
        return ahead
    with _trusted_construction():
        return cst.parse_module(source)


def forget_parsed_ahead() -> None:
    """Drop the trees parsed ahead that no check asked for (a file the prefilter passed over, a run
    that failed): a process that lives on (a test run, a daemon's caller) must not keep them."""
    _AHEAD.clear()


def parse_ahead(source: str) -> None:
    """Parse `source` now, for the `parse_module` call that will ask for it (while another process
    does other work); a text that does not parse is left to that call, which reports it."""
    try:
        with _trusted_construction():
            _AHEAD[source] = cst.parse_module(source)
    except Exception:
        pass
