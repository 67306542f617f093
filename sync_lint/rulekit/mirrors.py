"""The host-mirror fix SL101-SL104 share: read the `_cpu` copy instead of the GPU tensor.

When a finding reads a GPU tensor on the host and a mirror provably exists (see
`analysis/mirrors.py`), the fix reads the mirror instead
(`seq_lens.max().item()` -> `seq_lens_cpu.max().item()`). It is unsafe: nothing
proves the mirror holds the device tensor's current values (it may lag a step
behind, or be an upper bound). We offer it only when the read follows a single
chain from the tensor (`x[:n].max()`, `x.sum() > 0`) with no other tensor, no move
(`.cuda()`, `.to()`) and no in-place method on the way, so that swapping the root
changes where the values come from and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import libcst as cst

from sync_lint.analysis.knowledge import VIEW_METHODS
from sync_lint.analysis.mirrors import written_names
from sync_lint.diagnostics import Edit, Fix
from sync_lint.rulekit.edits import replace, splice
from sync_lint.syntax import call_name, dotted_name, method_receiver

if TYPE_CHECKING:
    from sync_lint.analysis.facts import Fact
    from sync_lint.engine.context import FileContext
    from sync_lint.rulekit.rule import Rule

# Methods that move a tensor or write into it: a chain through them is not a pure read.
_NOT_PURE = frozenset({"to", "cuda", "cpu", "pin_memory", "type", "numpy", "item", "tolist"})


def report_host_read(
    rule: "Rule",
    node: cst.CSTNode,
    fact: "Fact",
    what: str,
    otherwise: str,
    read: cst.BaseExpression,
    whole: cst.CSTNode | None = None,
    writes: Iterable[cst.BaseExpression] = (),
) -> None:
    """Report that `node` reads the GPU tensor in `read` on the host (`what` says how).

    The message ends with the mirror to read when one exists (and the fix reads
    it), else with `otherwise`. The fix swaps the tensor for its mirror inside
    `read`; with `whole` (a copy to the host that becomes pointless) it replaces
    `whole` by the rewritten `read`. `writes`: what the statement writes besides
    its assignment targets (a `copy_` destination).
    """
    found = mirror_fix(rule, read, whole, writes)
    advice = f"read the host mirror `{found[0]}` instead" if found is not None else otherwise
    rule.report(node, f"{what}; {advice}", fact=fact, fix=found[1] if found is not None else None)


def mirror_fix(
    rule: "Rule", read: cst.BaseExpression, whole: cst.CSTNode | None, writes: Iterable[cst.BaseExpression]
) -> tuple[str, Fix] | None:
    ctx = rule.ctx
    root = tensor_root(ctx, read)
    if root is None or rule.gpu_fact(root) is None:
        return None
    mirror = ctx.mirrors.mirror_of(dotted_name(root) or "")
    if mirror is None or mirror in ctx.mirrors.being_written().union(*map(written_names, writes)):
        return None
    if whole is None:
        edit = replace(ctx, root, mirror)
    else:
        # The copy was a fresh tensor: a view of the mirror must not stand in for it.
        clone = ".clone()" if _views_only(read, root) else ""
        edit = replace(ctx, whole, splice(ctx, read, [Edit(*ctx.span(root), mirror)], parentheses=True) + clone)
    message = (
        f"Read the host mirror `{mirror}` instead of `{ctx.code(root)}` "
        "(unsafe: the mirror may lag the device tensor)"
    )
    return mirror, Fix("unsafe", message, (edit,))


def tensor_root(ctx: "FileContext", expr: cst.BaseExpression) -> cst.BaseExpression | None:
    """The named tensor `expr` reads through a chain of pure operations, or None."""
    while dotted_name(expr) is None:
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
            method = expr.func.attr.value
            if (
                method in _NOT_PURE
                or method.endswith("_")
                or ctx.imports.resolve(expr.func) is not None  # `torch.max(x)`
                or not _host_side(ctx, (a.value for a in expr.args))
            ):
                return None
            expr = expr.func.value
        elif isinstance(expr, cst.Subscript):
            if not _host_side(ctx, _subscript_parts(expr)):
                return None
            expr = expr.value
        elif isinstance(expr, (cst.BinaryOperation, cst.Comparison)):
            if isinstance(expr, cst.BinaryOperation):
                operands = [expr.left, expr.right]
            else:
                operands = [expr.left, *(c.comparator for c in expr.comparisons)]
            tensors = [o for o in operands if not _host_side(ctx, [o])]
            if len(tensors) != 1:
                return None
            expr = tensors[0]
        elif isinstance(expr, cst.UnaryOperation) and not isinstance(expr.operator, cst.Not):
            expr = expr.expression
        else:
            return None
    return expr


def _host_side(ctx: "FileContext", exprs: Iterable[cst.BaseExpression]) -> bool:
    """None of `exprs` is (or may be) a GPU tensor."""
    for expr in exprs:
        fact = ctx.devices.fact(expr)
        if fact.is_gpu or fact.is_unknown_tensor:
            return False
    return True


def _views_only(expr: cst.BaseExpression, root: cst.BaseExpression) -> bool:
    """`expr` is `root` or a view of it (indexing, `.view()`, `.narrow()`...)."""
    while expr is not root:
        if isinstance(expr, cst.Subscript):
            expr = expr.value
        elif isinstance(expr, cst.Call) and call_name(expr) in VIEW_METHODS and method_receiver(expr) is not None:
            expr = expr.func.value  # type: ignore[attr-defined]
        else:
            return False
    return True


def _subscript_parts(expr: cst.Subscript) -> list[cst.BaseExpression]:
    parts: list[cst.BaseExpression] = []
    for element in expr.slice:
        index = element.slice
        if isinstance(index, cst.Index):
            parts.append(index.value)
        else:
            parts.extend(p for p in (index.lower, index.upper, index.step) if p is not None)
    return parts
