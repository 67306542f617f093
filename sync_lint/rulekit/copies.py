"""Host-to-device copies: how many bytes a host tensor holds, and what the measurements say.

Whether a pageable host-to-device copy blocks depends on its size. Measured on an
H200 (torch 2.11, `docs/verification/small-copy-h200-torch2.11.md`) with GPU work
queued: a pageable `non_blocking=True` copy of 64 KB or less never blocked, alone,
32 back to back, or once per step; from 80 KB it waited for the queue when
repeated; from 2.5 MB it waited every time. SL303 and SL304 read the size from the
code that made the tensor: a literal list (`torch.tensor([0, 2, 5])`), a factory
with a literal shape and a known dtype (`torch.zeros(4096, dtype=torch.int32)`),
basic indexing or a view of such a tensor (never larger than it), or a name
bound to one of these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from sync_lint.rulekit.numbers import is_python_number
from sync_lint.syntax import bool_literal, dotted_name, get_arg, positional_args

if TYPE_CHECKING:
    from sync_lint.engine.context import FileContext

NEVER_BLOCKED_BYTES = 64 * 1024
REPEATED_BLOCKS_FROM_BYTES = 80 * 1024
SINGLE_BLOCKS_FROM_BYTES = 2560 * 1024

# What a per-call `pin_memory()` costs when the caching host allocator has no free block of
# the size: measured on an H200 (torch 2.11, docs/verification/pin-alloc-h200-torch2.11.md).
PER_CALL_PIN_COST = (
    "pinning allocates page-locked memory on every call, and each size the caching host allocator has "
    "no free block for (the first call in a process, a new size) calls cudaHostAlloc: measured on an "
    "H200 at 1.2-2.6 ms up to 2 MB, about 4 ms at 4 MB and 14 ms at 16-19 MB"
)

_DTYPE_BYTES = {
    "bool": 1, "uint8": 1, "int8": 1, "float8_e4m3fn": 1, "float8_e5m2": 1,
    "int16": 2, "short": 2, "uint16": 2, "float16": 2, "half": 2, "bfloat16": 2,
    "int32": 4, "int": 4, "uint32": 4, "float32": 4, "float": 4, "complex32": 4,
    "int64": 8, "long": 8, "uint64": 8, "float64": 8, "double": 8, "complex64": 8, "complex128": 16,
}
_INFERRED_BYTES = {"bool": 1, "int": 8, "float": 4}  # torch.tensor of Python bools, ints, floats
_SHAPED_FACTORIES = frozenset({"zeros", "ones", "empty", "rand", "randn"})  # float32 unless dtype=
# Methods whose result never holds more bytes than their receiver.
_NOT_LARGER = frozenset(
    "clone contiguous detach view view_as narrow reshape flatten squeeze unsqueeze t transpose permute "
    "select unflatten movedim swapaxes cpu".split()
)
_MAX_DEPTH = 4


def literal_data(data: cst.BaseExpression) -> tuple[int, str] | None:
    """(element count, "bool"/"int"/"float") of a (nested) list or tuple display of number literals."""
    if isinstance(data, (cst.List, cst.Tuple)):
        count, kinds = 0, set()
        for element in data.elements:
            if not isinstance(element, cst.Element):
                return None
            inner = literal_data(element.value)
            if inner is None:
                return None
            count, kinds = count + inner[0], kinds | {inner[1]}
        kind = "float" if "float" in kinds else ("int" if "int" in kinds else "bool")
        return count, kind
    kind = _literal_kind(data)
    return None if kind is None else (1, kind)


def _literal_kind(expr: cst.BaseExpression) -> str | None:
    """"bool", "int" or "float" for a number literal (signs allowed), as `torch.tensor` infers it."""
    if bool_literal(expr) is not None:
        return "bool"
    while isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        expr = expr.expression
    if isinstance(expr, cst.Integer):
        return "int"
    return "float" if isinstance(expr, cst.Float) else None


def static_nbytes(ctx: FileContext, expr: cst.BaseExpression, depth: int = 0) -> int | None:
    """An upper bound on the bytes of the host tensor `expr`, or None when the source does not tell."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(expr, (cst.Name, cst.Attribute)):
        return _bound_nbytes(ctx, expr, depth)
    if isinstance(expr, cst.Subscript):
        basic = all(_basic_index(ctx, element.slice) for element in expr.slice)
        return static_nbytes(ctx, expr.value, depth + 1) if basic else None
    if isinstance(expr, cst.Call):
        return _call_nbytes(ctx, expr, depth)
    return None


def _bound_nbytes(ctx: FileContext, expr: cst.BaseExpression, depth: int) -> int | None:
    """The size of what the name was last assigned from, in this file."""
    fact = ctx.devices.fact(expr)
    origin = fact.origin
    if fact.where is not None or fact.subject != dotted_name(expr) or not isinstance(origin, cst.BaseExpression):
        return None
    return None if origin is expr else static_nbytes(ctx, origin, depth + 1)


def _basic_index(ctx: FileContext, index: cst.BaseSlice) -> bool:
    """A slice or an integer: the result is part of the tensor, never larger."""
    if isinstance(index, cst.Slice):
        return True
    value = index.value  # type: ignore[attr-defined]
    return isinstance(value, cst.Ellipsis) or is_python_number(ctx, value)


def _call_nbytes(ctx: FileContext, call: cst.Call, depth: int) -> int | None:
    func = call.func
    if isinstance(func, cst.Attribute) and func.attr.value in _NOT_LARGER and ctx.imports.resolve(func.value) != "torch":
        return static_nbytes(ctx, func.value, depth + 1)
    qual = ctx.imports.resolve(func) or ""
    name = qual.rsplit(".", 1)[-1] if qual.startswith("torch.") and qual.count(".") == 1 else None
    if name in ("tensor", "as_tensor"):
        return _data_nbytes(call)
    if name in _SHAPED_FACTORIES or name == "full":
        return _factory_nbytes(call, name)
    return None


def _data_nbytes(call: cst.Call) -> int | None:
    data = get_arg(call, "data", 0)
    found = literal_data(data.value) if data is not None else None
    if found is None:
        return None
    count, kind = found
    size = _dtype_bytes(call)
    if size is None:
        # No dtype: what torch infers. A dtype it cannot read: the widest element there is.
        size = _INFERRED_BYTES[kind] if get_arg(call, "dtype") is None else _DTYPE_BYTES["complex128"]
    return count * size


def _factory_nbytes(call: cst.Call, name: str) -> int | None:
    numel = _literal_numel(call, name)
    if numel is None:
        return None
    size = _dtype_bytes(call)
    if size is None and name == "full":
        fill = get_arg(call, "fill_value", 1)
        found = literal_data(fill.value) if fill is not None else None
        size = _INFERRED_BYTES[found[1]] if found is not None else None
    elif size is None and get_arg(call, "dtype") is None:
        size = _DTYPE_BYTES["float32"]  # the default dtype
    return None if size is None else numel * size


def _literal_numel(call: cst.Call, name: str) -> int | None:
    """The element count of a literal shape: `zeros(4, 8)`, `zeros((4, 8))`, `full([4], v)`, `zeros(size=(4,))`."""
    shape_arg = get_arg(call, "size")
    if shape_arg is not None:
        dims = [shape_arg.value]
    elif name == "full":
        first = get_arg(call, "size", 0)
        dims = [first.value] if first is not None else []
    else:
        dims = [arg.value for arg in positional_args(call)]
    if len(dims) == 1 and isinstance(dims[0], (cst.List, cst.Tuple)):
        dims = [e.value for e in dims[0].elements if isinstance(e, cst.Element)]
    numel = 1
    for dim in dims:
        if not isinstance(dim, cst.Integer):
            return None
        numel *= int(dim.evaluated_value)
    return numel if dims else None


def _dtype_bytes(call: cst.Call) -> int | None:
    dtype = get_arg(call, "dtype")
    name = dotted_name(dtype.value) if dtype is not None else None
    return _DTYPE_BYTES.get(name.rsplit(".", 1)[-1]) if name else None


def describe_bytes(size: int) -> str:
    """`512 B`, `64 KB`, `2.5 MB` (binary units, as the measurements were taken)."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size / (1024 * 1024):.3g} MB"
