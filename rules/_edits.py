"""Source edits the rules' fixes share: splice the file's own text.

A fix built from libcst nodes loses the indentation of continuation lines (libcst
renders a detached node without its enclosing block), so fixes copy the file's
text around their edits instead. Offsets come from `FileContext.span`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from sync_lint.rule import Replace

if TYPE_CHECKING:
    from sync_lint.context import FileContext

# (start offset, end offset, new text) in the file's source.
Edit = tuple[int, int, str]


def splice(ctx: FileContext, node: cst.CSTNode, edits: list[Edit], parentheses: bool = False) -> str:
    """The source of `node` with `edits` applied.

    Without `node`'s own parentheses by default, matching the range a `Replace`
    of `node` covers; with them when the result is pasted elsewhere.
    """
    start, end = ctx.span(node, parentheses)
    out, at = [], start
    for edit_start, edit_end, new in sorted(edits):
        out += [ctx.source[at:edit_start], new]
        at = edit_end
    return "".join(out) + ctx.source[at:end]


def append_arguments(ctx: FileContext, call: cst.Call, arguments: list[str]) -> Edit:
    """The edit that appends `arguments` (source text such as `non_blocking=True`) to `call`."""
    if call.args:
        end = ctx.span(call.args[-1])[1]
        return end, end, "".join(f", {a}" for a in arguments)
    close = ctx.span(call, parentheses=False)[1] - 1  # the `)` closing the arguments
    return close, close, ", ".join(arguments)


def set_keyword(ctx: FileContext, call: cst.Call, name: str, value: str) -> Edit:
    """The edit that makes `call` pass `name=value`: the argument's value replaced, else appended."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return (*ctx.span(arg.value), value)
    return append_arguments(ctx, call, [f"{name}={value}"])


def keyword_edit(ctx: FileContext, call: cst.Call, name: str, value: str) -> Replace:
    """`call` rewritten to pass `name=value`, whatever its layout."""
    return Replace(call, splice(ctx, call, [set_keyword(ctx, call, name, value)]))
