"""What a branch's test proves about devices: `if device.type == "cpu":`, `if x.is_cuda:`.

The binder (`flow.py`) applies these to the arm they hold in, as it applies
`isinstance(x, str)`: inside `if device.type == "cpu":` a `torch.tensor(ids,
device=device)` is built on the host and nothing is copied (vLLM's KV-transfer
helpers test the device this way before choosing a pinned copy), and inside
`if t.is_cuda:` a `t.item()` waits for the GPU whatever else `t` might be. Where a test that
the device is the CPU fails (`if not t.is_cpu: t = t.cpu()`, the `else` of `if device.type ==
"cpu":`), the device is taken for the accelerator, as a `device=` that is not literally the CPU is.

`none_test` reads `x is None` / `x is not None`, for the binder's join after a branch that
computes on the device a value the caller left out (`facts.none_fallback`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import libcst as cst

from sync_lint.analysis.facts import Device
from sync_lint.analysis.knowledge import device_kind, pins_where_available
from sync_lint.syntax import dotted_name, literal_string


@dataclass(frozen=True)
class Narrowing:
    """In one arm of a branch, `key` (a name or dotted name) is on `device`: a device value, or a
    tensor (`tensor`) whose node in the test is `subject`."""

    key: str
    subject: cst.BaseExpression
    device: Device
    tensor: bool
    test: str  # the test as a reason reads it: "`device.type == \"cpu\"`"
    # The test itself shows a tensor (`x.is_cuda`): narrowed even when nothing else is known of `x`.
    # (`x.device.type` does not: a Hugging Face model has a `device` too.)
    shows_tensor: bool = False
    # `x.device` when the tensor is reached through it: the device to narrow when `x` is no tensor
    # (`self.device.type == "cpu"` in a module whose `device` is an attribute).
    device_key: str | None = None
    holds: bool = True  # whether `test` holds where this is proved (False: `test` is false there)
    # Still true after the arms join, the value unchanged: `t.is_pinned()` says what memory `t` is in,
    # where a device test only tells an arm more of a value whose device the code does not know.
    kept: bool = False


def narrowings(test: cst.BaseExpression) -> tuple[list[Narrowing], list[Narrowing]]:
    """(what holds when `test` is true, what holds when it is false), through `not`, `and`, `or`."""
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
        when_true, when_false = narrowings(test.expression)
        return when_false, when_true  # each keeps whether its own test holds there
    if isinstance(test, cst.BooleanOperation):
        left, right = narrowings(test.left), narrowings(test.right)
        if isinstance(test.operator, cst.And):  # both true; when false, either may be
            # ... unless the left is a flag that holds on any machine with a GPU to wait for:
            # `if PIN_MEMORY and not t.is_pinned():` fails only where `t` is pinned.
            return left[0] + right[0], right[1] if holds_with_a_gpu(test.left) else []
        return [], left[1] + right[1]  # `or`: both false
    return _atom(test)


def _atom(test: cst.BaseExpression) -> tuple[list[Narrowing], list[Narrowing]]:
    """What one test proves when it is true, and when it is false. A test that the device is the CPU
    proves, when it fails, a device that is not the CPU: taken for the accelerator, as a `device=`
    argument that is not literally the CPU is (`if not t.is_cpu: t = t.cpu()` copies from the GPU)."""
    if isinstance(test, cst.Call) and isinstance(test.func, cst.Attribute) and test.func.attr.value == "is_pinned" \
            and not test.args:
        key = dotted_name(test.func.value)
        if key is None:
            return [], []
        return [Narrowing(key, test.func.value, Device.PINNED, True, f"`{key}.is_pinned()`", shows_tensor=True,
                          kept=True)], []
    if isinstance(test, cst.Attribute) and test.attr.value in ("is_cuda", "is_cpu"):
        key = dotted_name(test.value)
        if key is None:
            return [], []
        spelled = f"`{key}.{test.attr.value}`"
        if test.attr.value == "is_cuda":
            return [Narrowing(key, test.value, Device.GPU, True, spelled, shows_tensor=True)], []
        return ([Narrowing(key, test.value, Device.CPU, True, spelled, shows_tensor=True)],
                [Narrowing(key, test.value, Device.GPU, True, spelled, shows_tensor=True, holds=False)])
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1):
        return [], []
    target = test.comparisons[0]
    if not isinstance(target.operator, (cst.Equal, cst.NotEqual)):
        return [], []
    left, right = test.left, target.comparator
    text = literal_string(right)
    if text is None:
        text, left = literal_string(left), right
    device = _device_named(text) if text is not None else None
    if device is None:
        return [], []
    found = _subject(left)
    if found is None:
        return [], []
    key, subject, tensor, spelled = found
    operator = "==" if isinstance(target.operator, cst.Equal) else "!="
    test_text = f"`{spelled} {operator} {text!r}`"
    equal = isinstance(target.operator, cst.Equal)
    device_key = f"{key}.device" if tensor else None
    named = [Narrowing(key, subject, device, tensor, test_text, device_key=device_key, holds=equal)]
    other = [Narrowing(key, subject, Device.GPU, tensor, test_text, device_key=device_key, holds=not equal)] \
        if device is Device.CPU else []
    return (named, other) if equal else (other, named)


def holds_with_a_gpu(test: cst.BaseExpression) -> bool:
    """A flag true wherever pinned memory exists (`PIN_MEMORY`, `is_pin_memory_available()`)."""
    return pins_where_available(dotted_name(test.func if isinstance(test, cst.Call) else test))


def none_test(test: cst.BaseExpression) -> tuple[str, bool] | None:
    """`x is None` -> ("x", True); `x is not None` -> ("x", False): the name tested, and whether it
    is None when the test is true."""
    if not (isinstance(test, cst.Comparison) and len(test.comparisons) == 1):
        return None
    target = test.comparisons[0]
    if not (isinstance(target.operator, (cst.Is, cst.IsNot)) and isinstance(target.comparator, cst.Name)
            and target.comparator.value == "None"):
        return None
    key = dotted_name(test.left)
    return (key, isinstance(target.operator, cst.Is)) if key is not None else None


def _subject(expr: cst.BaseExpression) -> tuple[str, cst.BaseExpression, bool, str] | None:
    """What a compared expression names: (key, its node, whether it is a tensor, how it is spelled)
    for `x.device.type`, `device.type`, `str(device)` and `device`."""
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "str" \
            and len(expr.args) == 1:
        expr = expr.args[0].value
        if isinstance(expr, cst.Attribute) and expr.attr.value == "device":  # `str(x.device)`
            key = dotted_name(expr.value)
            return (key, expr.value, True, f"str({key}.device)") if key is not None else None
        key = dotted_name(expr)
        return (key, expr, False, f"str({key})") if key is not None else None
    if isinstance(expr, cst.Attribute) and expr.attr.value == "type":
        owner = expr.value
        if isinstance(owner, cst.Attribute) and owner.attr.value == "device":  # `x.device.type`
            key = dotted_name(owner.value)
            return (key, owner.value, True, f"{key}.device.type") if key is not None else None
        key = dotted_name(owner)
        return (key, owner, False, f"{key}.type") if key is not None else None
    if isinstance(expr, cst.Attribute) and expr.attr.value == "device":  # `x.device == "cpu"`
        key = dotted_name(expr.value)
        return (key, expr.value, True, f"{key}.device") if key is not None else None
    key = dotted_name(expr)
    return (key, expr, False, key) if key is not None else None


def _device_named(text: str) -> Device | None:
    """The device a compared string names: exactly a device type, with an index or not."""
    kind = device_kind(text)
    return None if kind is None else Device.CPU if kind == "cpu" else Device.GPU


# Builtin types whose instances are never tensors.
BUILTIN_TYPES = frozenset({"str", "int", "float", "bool", "bytes", "list", "dict", "tuple", "set", "complex"})


def isinstance_parts(test: cst.BaseExpression) -> tuple[cst.BaseExpression, str, list] | None:
    """`isinstance(x, T)` or `isinstance(x, (T, U))` with `x` a name or dotted name: (`x`'s node, its
    name, the type expressions); None for any other test."""
    if not (isinstance(test, cst.Call) and isinstance(test.func, cst.Name) and test.func.value == "isinstance"
            and len(test.args) == 2 and not any(a.star or a.keyword for a in test.args)):
        return None
    subject = dotted_name(test.args[0].value)
    kinds = test.args[1].value
    names = [e.value for e in kinds.elements] if isinstance(kinds, cst.Tuple) else [kinds]
    if subject is None or not names:
        return None
    return test.args[0].value, subject, names


def no_tensor_after_isinstance(node: cst.BooleanOperation,
                               resolve: Callable[[cst.BaseExpression], str | None]) -> bool:
    """Whether `node.right` reads a value that an `isinstance` test before it in the same chain says is
    no tensor: `isinstance(out, (list, tuple)) and out` (SGLang's CUDA-graph backends), `isinstance(b,
    torch.Tensor) or b == 0.0`. The binder narrows an `if` arm the same way (`Binder.if_after_test`);
    within one test a rule reads the operands as it enters the chain, before any arm is bound."""
    operand = node.right
    if isinstance(operand, cst.Comparison) and len(operand.comparisons) == 1:
        operand = operand.left
    subject = dotted_name(operand)
    if subject is None:
        return False
    conjunction = isinstance(node.operator, cst.And)
    for test in _chain(node.left, type(node.operator)):
        parts = isinstance_parts(test)
        if parts is None or parts[1] != subject:
            continue
        names = parts[2]
        if conjunction and all(isinstance(n, cst.Name) and n.value in BUILTIN_TYPES for n in names):
            return True
        if not conjunction and all(resolve(n) == "torch.Tensor" for n in names):
            return True
    return False


def _chain(expr: cst.BaseExpression, operator: type) -> list[cst.BaseExpression]:
    """The operands of a chain of one boolean operator (`a and b and c`)."""
    if isinstance(expr, cst.BooleanOperation) and isinstance(expr.operator, operator):
        return _chain(expr.left, operator) + _chain(expr.right, operator)
    return [expr]
