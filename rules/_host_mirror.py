"""Host mirrors: the unsafe fix SL101-SL104 share.

Serving code often keeps a host copy of a device tensor beside it: `seq_lens_cpu`
next to `seq_lens`, `m.query_start_loc_cpu` next to `m.query_start_loc`. When a
finding reads a GPU tensor on the host and such a mirror exists, the fix reads
the mirror instead (`seq_lens.max().item()` -> `seq_lens_cpu.max().item()`). It
is unsafe: nothing proves the mirror holds the device tensor's current values
(it may lag a step behind, or be an upper bound).

We offer it only when the mirror provably exists: its name is bound at that point
(an assignment, a parameter, a `self.` attribute set in `__init__`) to a CPU
tensor or a value of unknown kind (not `None`, not a list), the same dotted name
was already read in the enclosing function, or its attribute name is a
configured cpu-attribute. And only when the read follows
a single chain from the tensor (`x[:n].max()`, `x.sum() > 0`) with no other
tensor, no move (`.cuda()`, `.to()`) and no in-place method on the way, so that
swapping the root changes where the values come from and nothing else. A
statement that writes the mirror (`x_cpu = x.cpu()`, `x_cpu.copy_(x)`) is how the
mirror is kept fresh: it never gets the fix.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

import libcst as cst

from sync_lint.analysis.device import VIEW_METHODS
from sync_lint.analysis.facts import Device
from sync_lint.analysis.imports import dotted_name
from sync_lint.rule import FixSpec, Replace, Rule, call_name, method_receiver
from sync_lint.rules._edits import splice

if TYPE_CHECKING:
    from sync_lint.analysis.facts import Fact

# Methods that move a tensor or write into it: a chain through them is not a pure read.
_NOT_PURE = frozenset({"to", "cuda", "cpu", "pin_memory", "type", "numpy", "item", "tolist"})
_GPU_SUFFIX = re.compile(r"_(gpu|cuda|dev|device)$")


class HostMirrorFix(Rule):
    """A rule that can rewrite a host read of a GPU tensor to read its `_cpu` mirror."""

    def __init__(self) -> None:
        # Dotted `*_cpu` names read so far, one set per enclosing function (module first).
        self._seen: list[set[str]] = [set()]
        # Names the statements being walked assign to.
        self._writing: list[frozenset[str]] = []

    # --- what the walk tells us ---------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._seen.append(set())

    def leave_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._seen.pop()

    def visit_Attribute(self, node: cst.Attribute) -> None:
        if node.attr.value.endswith("_cpu") and not self.ctx.is_store(node):
            name = dotted_name(node)
            if name is not None:
                self._seen[-1].add(name)

    def visit_Assign(self, node: cst.Assign) -> None:
        self._writing.append(frozenset().union(*(_written(t.target) for t in node.targets)))

    def leave_Assign(self, node: cst.Assign) -> None:
        self._writing.pop()

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._writing.append(_written(node.target))

    def leave_AugAssign(self, node: cst.AugAssign) -> None:
        self._writing.pop()

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._writing.append(_written(node.target))

    def leave_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._writing.pop()

    # --- reporting with the fix --------------------------------------------------------------
    def report_host_read(
        self,
        node: cst.CSTNode,
        fact: Fact,
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
        found = self._mirror_fix(read, whole, writes)
        advice = f"read the host mirror `{found[0]}` instead" if found is not None else otherwise
        self.report(node, f"{what}; {advice}", fact=fact, fix=found[1] if found is not None else None)

    def _mirror_fix(
        self, read: cst.BaseExpression, whole: cst.CSTNode | None, writes: Iterable[cst.BaseExpression]
    ) -> tuple[str, FixSpec] | None:
        root = self._tensor_root(read)
        if root is None or self.is_gpu(root) is None:
            return None
        mirror = self._mirror_of(dotted_name(root) or "")
        if mirror is None or mirror in frozenset().union(*self._writing, *map(_written, writes)):
            return None
        if whole is None:
            edit = Replace(root, mirror)
        else:
            # The copy was a fresh tensor: a view of the mirror must not stand in for it.
            clone = ".clone()" if _views_only(read, root) else ""
            edit = Replace(whole, splice(self.ctx, read, [(*self.ctx.span(root), mirror)], parentheses=True) + clone)
        message = (
            f"Read the host mirror `{mirror}` instead of `{self.ctx.code(root)}` "
            "(unsafe: the mirror may lag the device tensor)"
        )
        return mirror, FixSpec("unsafe", message, (edit,))

    def _tensor_root(self, expr: cst.BaseExpression) -> cst.BaseExpression | None:
        """The named tensor `expr` reads through a chain of pure operations, or None."""
        while dotted_name(expr) is None:
            if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
                method = expr.func.attr.value
                if (
                    method in _NOT_PURE
                    or method.endswith("_")
                    or self.ctx.imports.resolve(expr.func) is not None  # `torch.max(x)`
                    or not self._host_side(a.value for a in expr.args)
                ):
                    return None
                expr = expr.func.value
            elif isinstance(expr, cst.Subscript):
                if not self._host_side(_subscript_parts(expr)):
                    return None
                expr = expr.value
            elif isinstance(expr, (cst.BinaryOperation, cst.Comparison)):
                if isinstance(expr, cst.BinaryOperation):
                    operands = [expr.left, expr.right]
                else:
                    operands = [expr.left, *(c.comparator for c in expr.comparisons)]
                tensors = [o for o in operands if not self._host_side([o])]
                if len(tensors) != 1:
                    return None
                expr = tensors[0]
            elif isinstance(expr, cst.UnaryOperation) and not isinstance(expr.operator, cst.Not):
                expr = expr.expression
            else:
                return None
        return expr

    def _host_side(self, exprs: Iterable[cst.BaseExpression]) -> bool:
        """None of `exprs` is (or may be) a GPU tensor."""
        for expr in exprs:
            fact = self.ctx.devices.fact(expr)
            if fact.is_gpu or fact.is_unknown_tensor:
                return False
        return True

    def _mirror_of(self, name: str) -> str | None:
        head, dot, last = name.rpartition(".")
        for candidate in dict.fromkeys((_GPU_SUFFIX.sub("", last) + "_cpu", last + "_cpu")):
            full = head + dot + candidate
            fact = self.ctx.devices.bound_fact(full)
            if fact is not None:
                # Bound to a CPU tensor, or to a value of unknown kind named as a host copy.
                if fact.is_cpu or fact.device is Device.UNKNOWN:
                    return full
            elif dot and (candidate in self.ctx.settings.cpu_attributes or any(full in s for s in self._seen)):
                return full
        return None


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


def _written(target: cst.BaseExpression) -> frozenset[str]:
    """The names an assignment target writes into: `x_cpu` for `x_cpu[:n] = ...` too."""
    if isinstance(target, (cst.Tuple, cst.List)):
        return frozenset().union(*(_written(e.value) for e in target.elements))
    while isinstance(target, (cst.Subscript, cst.StarredElement)):
        target = target.value
    name = dotted_name(target)
    return frozenset({name}) if name is not None else frozenset()


def _subscript_parts(expr: cst.Subscript) -> list[cst.BaseExpression]:
    parts: list[cst.BaseExpression] = []
    for element in expr.slice:
        index = element.slice
        if isinstance(index, cst.Index):
            parts.append(index.value)
        else:
            parts.extend(p for p in (index.lower, index.upper, index.step) if p is not None)
    return parts
