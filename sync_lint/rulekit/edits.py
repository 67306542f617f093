"""Fix edits built from the file's own text.

A fix built from libcst nodes loses the indentation of continuation lines (libcst
renders a detached multi-line node without its enclosing block), so fixes splice
the file's text around their edits instead. Every edit is a `diagnostics.Edit`:
replace the source between two offsets with new text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import libcst as cst

from sync_lint.diagnostics import Edit

if TYPE_CHECKING:
    from sync_lint.engine.context import FileContext


def replace(ctx: FileContext, node: cst.CSTNode, new: str | cst.CSTNode) -> Edit:
    """Swap `node` (without its own parentheses) for `new` (source text, or a node rendered by libcst)."""
    start, end = ctx.span(node, parentheses=False)
    return Edit(start, end, new if isinstance(new, str) else ctx.module.code_for_node(new))


def splice(ctx: FileContext, node: cst.CSTNode, edits: Sequence[Edit], parentheses: bool = False) -> str:
    """The source of `node` with `edits` applied.

    Without `node`'s own parentheses by default, matching the range a `replace`
    of `node` covers; with them when the result is pasted elsewhere.
    """
    start, end = ctx.span(node, parentheses)
    out, at = [], start
    for edit in sorted(edits, key=lambda e: (e.start, e.end)):
        out += [ctx.source[at:edit.start], edit.content]
        at = edit.end
    return "".join(out) + ctx.source[at:end]


def insert_before(ctx: FileContext, node: cst.CSTNode, text: str) -> Edit:
    start = ctx.span(node)[0]
    return Edit(start, start, text)


def append_arguments(ctx: FileContext, call: cst.Call, arguments: list[str]) -> Edit:
    """The edit that appends `arguments` (source text such as `non_blocking=True`) to `call`."""
    if call.args:
        end = ctx.span(call.args[-1])[1]
        return Edit(end, end, "".join(f", {a}" for a in arguments))
    close = ctx.span(call, parentheses=False)[1] - 1  # the `)` closing the arguments
    return Edit(close, close, ", ".join(arguments))


def remove_argument(ctx: FileContext, call: cst.Call, arg: cst.Arg) -> Edit:
    """The edit deleting `arg` (never the first argument) and the separator before it."""
    index = next(i for i, a in enumerate(call.args) if a is arg)
    return Edit(ctx.span(call.args[index - 1])[1], ctx.span(arg)[1], "")


def set_keyword(ctx: FileContext, call: cst.Call, name: str, value: str) -> Edit:
    """The edit that makes `call` pass `name=value`: the argument's value replaced, else appended."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return Edit(*ctx.span(arg.value), value)
    return append_arguments(ctx, call, [f"{name}={value}"])


def keyword_edit(ctx: FileContext, call: cst.Call, name: str, value: str) -> Edit:
    """`call` rewritten to pass `name=value`, whatever its layout."""
    return replace(ctx, call, splice(ctx, call, [set_keyword(ctx, call, name, value)]))
