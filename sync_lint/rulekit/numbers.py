"""Is this expression a Python number, and can storing it overflow a tensor's dtype?

Shared by the rules whose fixes turn a host scalar into a device value (SL301,
SL302, SL304): `t[i] = v` -> `t[i].fill_(v)`, `torch.tensor(v, device=d)` ->
`torch.full((), v, device=d)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from sync_lint.syntax import bool_literal, literal_number

if TYPE_CHECKING:
    from sync_lint.engine.context import FileContext

FLOAT16_MAX = 65504.0
_NUMBER_BUILTINS = frozenset({"int", "float", "bool", "len", "round", "abs"})
# Tensor methods that give a Python number.
_NUMBER_METHODS = frozenset({"item", "numel", "dim", "element_size", "nelement"})


def is_python_number(ctx: FileContext, expr: cst.BaseExpression, depth: int = 0) -> bool:
    """`expr` is a Python int/float/bool/complex: a literal, arithmetic of numbers, or a name
    known to hold one (an `int`-annotated parameter, a `range` loop variable, a name
    assigned a number)."""
    if isinstance(expr, (cst.Integer, cst.Float, cst.Imaginary)) or bool_literal(expr) is not None:
        return True
    if depth > 8:
        return False
    if isinstance(expr, cst.UnaryOperation) and not isinstance(expr.operator, cst.Not):
        return is_python_number(ctx, expr.expression, depth + 1)
    if isinstance(expr, cst.BinaryOperation):
        return is_python_number(ctx, expr.left, depth + 1) and is_python_number(ctx, expr.right, depth + 1)
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Attribute) and expr.value.attr.value == "shape":
        return len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index)  # `x.shape[0]`
    if isinstance(expr, cst.Subscript):
        return _declared_number(ctx, expr)  # `self.uid_to_buffer_id[uid]` of a `dict[str, int]`
    if isinstance(expr, cst.Call):
        func = expr.func
        if isinstance(func, cst.Name):
            return (func.value in _NUMBER_BUILTINS and ctx.devices.fact(expr).value_kind == "python") or \
                _declared_number(ctx, expr)
        if isinstance(func, cst.Attribute):
            return func.attr.value in _NUMBER_METHODS or (func.attr.value == "size" and bool(expr.args)) or \
                _declared_number(ctx, expr)
        return False
    if not isinstance(expr, (cst.Name, cst.Attribute)):
        return False
    fact = ctx.devices.fact(expr)
    if fact.value_kind != "python":
        return False
    if fact.dtype is not None:
        return True
    # A name assigned a value: a number if that value is (`n = len(x) - 1`, not `ids = [0, 1]`).
    return isinstance(fact.origin, cst.BaseExpression) and is_python_number(ctx, fact.origin, depth + 1)


def _declared_number(ctx: FileContext, expr: cst.BaseExpression) -> bool:
    """A call or an entry the analysis knows gives a Python int, float or bool: a project function that
    returns one (`pool.get_buffer_id(uid)` returning a `dict[str, int]` entry), an entry of a container
    declared to hold them."""
    fact = ctx.devices.fact(expr)
    return fact.value_kind == "python" and fact.dtype in ("int", "float", "bool")


def cannot_overflow(value: cst.BaseExpression, dtype: str | None) -> bool:
    """Storing `value` into a tensor of this dtype class cannot overflow.

    On overflow a store (`t[i] = v`, `t[idx] = v`, `torch.tensor(v, dtype=...)`) writes
    inf into a float16/bfloat16 tensor, while `fill_` and `torch.full` raise
    "value cannot be converted ... without overflow" (measured, torch 2.11). Integer
    and bool targets raise either way.
    """
    if dtype in ("int", "bool"):
        return True
    number = literal_number(value)
    return number is not None and abs(number) <= FLOAT16_MAX


def is_cpu_scalar_tensor(ctx: FileContext, expr: cst.BaseExpression) -> bool:
    fact = ctx.devices.fact(expr)
    return fact.is_cpu and fact.ndim == 0
