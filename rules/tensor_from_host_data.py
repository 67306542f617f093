"""# SL304 `tensor-from-host-data`: building a GPU tensor from host data with a blocking copy

## What it does
Flags tensor creation that copies host data to the GPU with a blocking copy:

- `torch.tensor(data, device=gpu)` and `torch.as_tensor(data, device=gpu)` where
  `data` is not already a GPU tensor (a list, a number, a NumPy array, a CPU
  tensor);
- `gpu_t.new_tensor(data)`, which creates on `gpu_t`'s device;
- `torch.tensor([t0, t1])` built from GPU tensors (with or without `device=`),
  which reads every element with `.item()`.

`torch.as_tensor(x, device=gpu)` with `x` of unknown kind is not flagged: it is
often a GPU tensor already, and then nothing is copied. Nor is literal data with
no elements (`[]`, `[[]] * n`, `[[] for _ in r]`): the tensor has no elements, so
the copy moves nothing and returns at once (measured: 0.1 ms with 37 ms of GPU
work queued).

## Why is this bad
`internal_new_from_data` (`torch/csrc/utils/tensor_new.cpp`) builds the tensor
in pageable CPU memory and then calls `tensor.to(device, ..., non_blocking=false)`:
a blocking copy that ends in `at::cuda::memcpy_and_sync` and waits for all work
queued on the stream. Measured on an H100 (torch 2.11) with 41 ms of GPU work
queued: `torch.tensor(lst, device=dev)`, `torch.as_tensor(lst, device=dev)` and
`x.new_tensor(lst)` each blocked the host for 40.5 ms, and `torch.tensor(5,
device="cuda")` blocked too; `torch.tensor(lst, pin_memory=True).to(dev,
non_blocking=True)` took 0.28 ms and `torch.full((), v, device=dev)` 0.11 ms (no
copy at all). `torch.tensor([t0, t1])` of 0-dim CUDA tensors synced once per
element (2 warnings for 2 elements); `torch.stack([t0, t1])` did not sync.

## Example
```python
lengths = torch.tensor(lengths_list, dtype=torch.int32, device=device)  # SL304
scale = torch.tensor(0.5, device=device)                               # SL304
```

Use instead (vLLM's `async_tensor_h2d`; cache constants per device):
```python
lengths = torch.tensor(lengths_list, dtype=torch.int32, pin_memory=True).to(device, non_blocking=True)
scale = torch.full((), 0.5, device=device)
```

## Fix safety
- A Python number: `torch.tensor(v, device=d)` becomes `torch.full((), v, device=d)`
  (other keywords kept). For Python literals both infer the same dtype (checked:
  int64 for ints, bool, the default float, complex64). Two differences were
  measured: a NumPy scalar keeps its dtype under `torch.tensor` but not under
  `torch.full` (`np.float64` gives float64 against float32, `np.int32` int32
  against int64), and a value that overflows the dtype becomes inf under
  `torch.tensor` but makes `torch.full` raise. So the fix is safe for a literal
  within float16 range (|v| <= 65504), or for a name with an explicit integer or
  bool `dtype=`; otherwise it is unsafe with that precondition.
- Other host data: `torch.tensor(data, device=d, dtype=...)` becomes
  `torch.tensor(data, pin_memory=True, dtype=...).to(d, non_blocking=True)`, and
  `torch.as_tensor(data, device=d)` becomes
  `torch.as_tensor(data).pin_memory().to(d, non_blocking=True)`. Both infer the
  dtype from `data` the same way, so keeping `dtype=` is exact, and the pinned
  temporary is protected by PyTorch's caching host allocator until the copy has
  run. Safe when `d` is literally an accelerator (`"cuda"`,
  `torch.device("cuda:0")`); unsafe when it is a variable, because
  `pin_memory=True` needs an accelerator and the variable may be the CPU.
- `gpu_t.new_tensor(data)` becomes the same pinned form with
  `dtype=gpu_t.dtype` and `gpu_t.device` spelled out (checked equal on an H100:
  0.17 ms against 38.5 ms); a number becomes
  `torch.full((), v, dtype=gpu_t.dtype, device=gpu_t.device)`, safe under the
  overflow condition above.
- `torch.tensor([t0, t1])` of GPU tensors becomes `torch.stack([t0, t1])`, which
  is unsafe: the result keeps the elements' dtype (`torch.tensor` infers it from
  the Python values) and their device (without `device=`, `torch.tensor` gives a
  CPU tensor).

## When to ignore
One-off construction at start-up. Mark it with `# noqa: SL304`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import libcst as cst

from sync_lint.analysis.knowledge import DTYPE_NAMES
from sync_lint.rulekit import (
    Device,
    Edit,
    Example,
    Fact,
    Fix,
    Rule,
    abbreviate,
    append_arguments,
    call_name,
    cannot_overflow,
    dotted_name,
    get_arg,
    insert_before,
    is_python_number,
    literal_number,
    method_receiver,
    remove_argument,
    splice,
)

if TYPE_CHECKING:
    pass


_PINNED_CAVEAT = ": `pin_memory` needs an accelerator, so the device must be a GPU at run time"


# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL304_LIST = """\
import torch


def run(data):
    return torch.tensor(data, dtype=torch.int32, device="cuda")
"""


class TensorFromHostData(Rule):
    code = "SL304"
    name = "tensor-from-host-data"
    summary = "`torch.tensor(..., device=gpu)`, `as_tensor`, `new_tensor`: a blocking copy from pageable memory"
    triggers = ("tensor(",)
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example("import torch\nx = torch.tensor([1, 2], device='cuda')\n", (2,)),
        Example("import torch\nx = torch.tensor(5, device='cuda')\n", (2,)),
        Example("import torch\nx = torch.tensor([1, 2], pin_memory=True).to('cuda', non_blocking=True)\n"),
        Example("import torch\nx = torch.full((), 5, device='cuda')\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.imports.resolve(node.func)
        if qual in ("torch.tensor", "torch.as_tensor"):
            self._factory(node, qual.rsplit(".", 1)[1])
        elif call_name(node) == "new_tensor" and method_receiver(node) is not None:
            self._new_tensor(node, method_receiver(node))  # type: ignore[arg-type]

    # --- torch.tensor / torch.as_tensor ------------------------------------------------
    def _factory(self, node: cst.Call, name: str) -> None:
        data_arg = get_arg(node, "data", 0)
        if data_arg is None or _no_elements(data_arg.value):
            return
        data = data_arg.value
        if self._gpu_elements(data):
            self._report_stack(node, data, name)
            return
        device_arg = get_arg(node, "device", 2 if name == "as_tensor" else None)
        if device_arg is None:
            return
        device, why = self.ctx.devices.device_of_argument(device_arg.value)
        data_fact = self.ctx.devices.fact(data)
        if device is not Device.GPU or data_fact.is_gpu or data_fact.is_unknown_tensor:
            return
        if name == "as_tensor" and data_fact.device is Device.UNKNOWN:
            return  # often already a GPU tensor, and then nothing is copied
        device_code = self.ctx.text(device_arg.value)
        evidence = f"`{abbreviate(device_code)}` is taken for an accelerator: {why}"
        only_keywords = all(a.keyword is not None for a in node.args if a is not data_arg)
        if is_python_number(self.ctx, data):
            fix = None
            if only_keywords and _keywords(node) <= {"device", "dtype", "requires_grad"}:
                fix = self._full_fix(node, data)
            self.report(
                node,
                f"`torch.{name}(<number>, device=...)` creates the value on the CPU and copies it to the GPU "
                "with a blocking copy; use `torch.full((), v, device=...)`, which copies nothing",
                evidence=evidence,
                fix=fix,
            )
            return
        fix = None
        if only_keywords and _keywords(node) <= {"device", "dtype"} and not data_fact.is_tensor:
            fix = self._pinned_fix(node, name, device_arg, self.ctx.devices.literal_accelerator(device_arg.value))
        self.report(
            node,
            f"`torch.{name}(..., device=...)` builds the tensor in pageable CPU memory and copies it to the "
            "GPU with a blocking copy; build it in pinned memory and copy with `non_blocking=True`",
            evidence=evidence,
            fix=fix,
        )

    def _gpu_elements(self, data: cst.BaseExpression) -> bool:
        if not isinstance(data, (cst.List, cst.Tuple)) or not data.elements:
            return False
        for element in data.elements:
            if isinstance(element, cst.StarredElement):
                return False
            fact = self.gpu_fact(element.value)
            if fact is None or fact.ndim not in (None, 0):
                return False
        return True

    def _report_stack(self, node: cst.Call, data: cst.BaseExpression, name: str) -> None:
        fix = None
        if _keywords(node) <= {"device"} and len(node.args) - len(_keywords(node)) == 1:
            rename, needs = self._callee(node, "stack")
            device_arg = get_arg(node, "device")
            edits = [rename] + ([remove_argument(self.ctx, node, device_arg)] if device_arg is not None else [])
            fix = Fix(
                "unsafe",
                "Use `torch.stack`: the result keeps the elements' dtype and device, where "
                f"`torch.{name}` infers the dtype from Python values and, without `device=`, gives a CPU tensor",
                (self.replace(node, splice(self.ctx, node, edits)),),
                needs_imports=needs,
            )
        first = self.gpu_fact(data.elements[0].value)  # type: ignore[attr-defined]
        self.report(
            node,
            f"`torch.{name}` of GPU tensors reads each element with `.item()`, one sync per element; "
            "use `torch.stack`",
            fact=first,
            fix=fix,
        )

    def _full_fix(self, node: cst.Call, data: cst.BaseExpression) -> Fix:
        dtype_arg = get_arg(node, "dtype")
        # Same dtype: a literal is inferred alike by both, an explicit dtype is kept.
        same_dtype = literal_number(data) is not None or dtype_arg is not None
        safe = same_dtype and cannot_overflow(data, _dtype_class(dtype_arg))
        rename, needs = self._callee(node, "full")
        return Fix(
            "safe" if safe else "unsafe",
            "Create the value on the device with `torch.full((), v, ...)`"
            + ("" if safe else ": `v` must be a Python number (a NumPy scalar keeps its own dtype under "
               "`torch.tensor`) that fits the dtype (on overflow `torch.full` raises where `torch.tensor` "
               "writes inf)"),
            (self.replace(node, splice(self.ctx, node, [rename, insert_before(self.ctx, data, "(), ")])),),
            needs_imports=needs,
        )

    def _pinned_fix(self, node: cst.Call, name: str, device_arg: cst.Arg, literal: bool) -> Fix:
        device_code = self.ctx.text(device_arg.value)
        if name == "tensor":
            built = splice(self.ctx, node, [Edit(*self.ctx.span(device_arg), "pin_memory=True")])
        else:
            built = splice(self.ctx, node, [remove_argument(self.ctx, node, device_arg)]) + ".pin_memory()"
        return Fix(
            "safe" if literal else "unsafe",
            "Build the tensor in pinned memory and copy it with `non_blocking=True`"
            + ("" if literal else _PINNED_CAVEAT),
            (self.replace(node, f"{built}.to({device_code}, non_blocking=True)"),),
        )

    def _callee(self, node: cst.Call, new_name: str) -> tuple[Edit, tuple[str, ...]]:
        """The edit turning the callee into `torch.<new_name>`, and the imports that needs."""
        func = node.func
        if isinstance(func, cst.Attribute) and self.ctx.imports.resolve(func.value) == "torch":
            return Edit(*self.ctx.span(func.attr), new_name), ()  # keeps the file's `torch` alias
        return Edit(*self.ctx.span(func), f"torch.{new_name}"), ("torch",)

    # --- gpu_t.new_tensor(data) ------------------------------------------------------------
    def _new_tensor(self, node: cst.Call, receiver: cst.BaseExpression) -> None:
        base = self.gpu_fact(receiver)
        data_arg = get_arg(node, "data", 0)
        if base is None or data_arg is None or _no_elements(data_arg.value):
            return
        device_arg = get_arg(node, "device")
        if device_arg is not None and self.ctx.devices.device_of_argument(device_arg.value)[0] is not Device.GPU:
            return
        data_fact = self.ctx.devices.fact(data_arg.value)
        if data_fact.is_gpu or data_fact.is_unknown_tensor:
            return
        fix = None
        if _keywords(node) <= {"dtype", "device"} and len(node.args) - len(_keywords(node)) == 1 and not data_fact.is_tensor:
            fix = self._new_tensor_fix(node, receiver, data_arg, base)
        self.report(
            node,
            "`new_tensor` builds the tensor in pageable CPU memory and copies it to the GPU with a blocking "
            "copy; build it in pinned memory and copy with `non_blocking=True`",
            fact=base,
            fix=fix,
        )

    def _new_tensor_fix(self, node: cst.Call, receiver: cst.BaseExpression, data_arg: cst.Arg, base: Fact) -> Fix | None:
        owner = dotted_name(receiver)
        dtype_arg, device_arg = get_arg(node, "dtype"), get_arg(node, "device")
        if owner is None and (dtype_arg is None or device_arg is None):
            return None  # the receiver would be evaluated again
        missing = [] if dtype_arg is not None else [f"dtype={owner}.dtype"]
        if is_python_number(self.ctx, data_arg.value):
            rename, needs = self._callee(node, "full")
            missing += [] if device_arg is not None else [f"device={owner}.device"]
            edits = [rename, insert_before(self.ctx, data_arg.value, "(), "), append_arguments(self.ctx, node, missing)]
            dtype = _dtype_class(dtype_arg) if dtype_arg is not None else base.dtype
            safe = base.is_tensor and cannot_overflow(data_arg.value, dtype)
            return Fix(
                "safe" if safe else "unsafe",
                "Create the value on the device with `torch.full((), v, ...)`"
                + ("" if safe else ": the value must fit the dtype (on overflow `torch.full` raises where "
                   "`new_tensor` writes inf)"),
                (self.replace(node, splice(self.ctx, node, edits)),),
                needs_imports=needs,
            )
        rename, needs = self._callee(node, "tensor")
        edits = [rename]
        if device_arg is not None:
            edits.append(Edit(*self.ctx.span(device_arg), "pin_memory=True"))
            device = self.ctx.text(device_arg.value)
            literal = base.is_tensor and self.ctx.devices.literal_accelerator(device_arg.value)
        else:
            missing.append("pin_memory=True")
            device = f"{owner}.device"
            literal = base.is_tensor and self.ctx.devices.created_on_accelerator(base)
        edits.append(append_arguments(self.ctx, node, missing))
        return Fix(
            "safe" if literal else "unsafe",
            "Build the tensor in pinned memory and copy it with `non_blocking=True`"
            + ("" if literal else _PINNED_CAVEAT),
            (self.replace(node, f"{splice(self.ctx, node, edits)}.to({device}, non_blocking=True)"),),
            needs_imports=needs,
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _host_list(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            n = rng.choice([0, 1, 5, 300])
            return {"data": [rng.randrange(-(2**31), 2**31) for _ in range(n)]}

        return [
            kit.Case("SL304", "tensor-from-list", SL304_LIST, _host_list, needs_cuda=True),
        ]
def _no_elements(data: cst.BaseExpression) -> bool:
    """Literal data that holds no number: `[]`, `()`, `[[], []]`, `[[]] * n`, `[[] for _ in r]`.

    Its tensor has no elements, so `copy_` has nothing to move and does not wait."""
    if isinstance(data, (cst.List, cst.Tuple)):
        return all(isinstance(e, cst.Element) and _no_elements(e.value) for e in data.elements)
    if isinstance(data, cst.BinaryOperation) and isinstance(data.operator, cst.Multiply):
        return _no_elements(data.left) if isinstance(data.left, (cst.List, cst.Tuple)) else (
            isinstance(data.right, (cst.List, cst.Tuple)) and _no_elements(data.right)
        )
    if isinstance(data, cst.ListComp):
        return _no_elements(data.elt)
    return False


def _keywords(node: cst.Call) -> set[str]:
    return {a.keyword.value for a in node.args if a.keyword is not None}


def _dtype_class(dtype_arg: cst.Arg | None) -> str | None:
    """"int", "bool" or "float" for `dtype=torch.int32` and friends."""
    name = dotted_name(dtype_arg.value) if dtype_arg is not None else None
    return DTYPE_NAMES.get(name.rsplit(".", 1)[-1]) if name else None
