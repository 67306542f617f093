"""Which names a function backpropagates: its losses.

`loss.backward()`, `scaler.scale(loss).backward()`, `(loss / steps).backward()`,
`accelerator.backward(loss)`, `self.manual_backward(loss)`, `torch.autograd.backward(loss)`: the
name is a tensor with an autograd graph, the output of a model's forward and a loss function. A
training step runs them on the accelerator, so where nothing else says where `loss` is, the device
analysis takes it for a GPU tensor by convention (`facts.backpropagated`), as it takes a gradient norm
(`facts.gradient_norm`). Reading it back (`loss.item()` for a log line) waits for the whole forward.
"""

from __future__ import annotations

import libcst as cst

# Methods that run backward on their first argument (`accelerator.backward(loss)`, DeepSpeed's
# `engine.backward(loss)`, Lightning's `self.manual_backward(loss)`).
_BACKWARD_METHODS = frozenset({"backward", "manual_backward"})


def backpropagated(function: cst.FunctionDef) -> dict[str, cst.Call]:
    """The names the function's own body (not its nested functions) runs backward on, each with the
    first call that does."""
    finder = _BackwardCalls()
    function.body.visit(finder)
    return finder.found


class _BackwardCalls(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: dict[str, cst.Call] = {}

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False  # a nested function backpropagates its own names

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        if not isinstance(func, cst.Attribute) or func.attr.value not in _BACKWARD_METHODS:
            return
        name = None
        first = node.args[0] if node.args else None
        if first is not None and first.keyword is None and not first.star:
            name = _loss_name(first.value)  # `accelerator.backward(loss)`
        elif func.attr.value == "backward":
            name = _loss_name(func.value)  # `loss.backward(retain_graph=True)`, `scaler.scale(loss).backward()`
        if name is not None:
            self.found.setdefault(name, node)


def _loss_name(expr: cst.BaseExpression) -> str | None:
    """The name whose graph `expr` backpropagates: `loss`, `loss / steps`, `scaler.scale(loss)`."""
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.BinaryOperation):
        return _loss_name(expr.left)
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value == "scale" \
            and len(expr.args) == 1 and expr.args[0].keyword is None:
        return _loss_name(expr.args[0].value)
    return None
