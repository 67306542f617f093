"""# SL304 `tensor-from-host-data`: building a GPU tensor from host data with a blocking copy

## What it does
Flags tensor creation that copies host data to the GPU with a blocking copy:

- `torch.tensor(data, device=gpu)` and `torch.as_tensor(data, device=gpu)` where
  `data` is not already a GPU tensor (a list, a number, a NumPy array, a CPU
  tensor);
- `gpu_t.new_tensor(data)`, which creates on `gpu_t`'s device;
- `torch.tensor([t0, t1])` built from GPU tensors (with or without `device=`),
  which reads every element with `.item()`, and so does a CPU tensor type given
  them (`torch.Tensor([t0, t1])`, `torch.FloatTensor([...])`: DeepSpeed's pipeline
  engine built its loss pair so);
- a legacy GPU tensor type given data: `torch.cuda.FloatTensor([norm])`,
  `torch.cuda.ByteTensor([overflow])`, and the same types reached through a
  platform object (DeepSpeed's `get_accelerator().FloatTensor([...])`, whose CUDA
  accelerator's property returns `torch.cuda.FloatTensor`). Given sizes
  (`torch.cuda.FloatTensor(n)`, `FloatTensor(2, 3)`) such a type only allocates on
  the device, and is not flagged. Since DeepSpeed 0.14 the property returns
  `functools.partial(torch.tensor, dtype=..., device='cuda')`: such a partial reads
  whatever it is given as data (a number too), and is flagged unless that is
  already a GPU tensor.

`torch.as_tensor(x, device=gpu)` with `x` of unknown kind is not flagged: it is
often a GPU tensor already, and then nothing is copied. Nor is an object of a
project class that exposes device memory (`__cuda_array_interface__` or
`__dlpack__`, set in its constructor or defined): `as_tensor` views that memory
(`tensor_from_cuda_array_interface`), copying nothing from the host. Nor is literal data with
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

A legacy GPU type given a list or tuple takes the same path
(`legacy_new_from_sequence` calls `internal_new_from_data`). Measured on an H100
(torch 2.11, `benchmarks/gpu/legacy_type_probe.py`,
`docs/verification/legacy-type-h100-torch2.11.0.md`) behind a 30 ms queue:
`torch.cuda.FloatTensor([float(total)])`, `torch.cuda.ByteTensor([overflow])` and
`torch.cuda.LongTensor((1, 2, 3))` each waited 30.0 ms, as did
`torch.tensor([total], device="cuda")`; `torch.cuda.FloatTensor(n)` and
`torch.cuda.FloatTensor(2, 3)` took 0.02 ms and `torch.full((1,), total,
device="cuda")` 0.04 ms. `torch.Tensor([t0, t1])` of 0-dim GPU tensors waited
30.0 ms in the same probe.

## Example
```python
lengths = torch.tensor(lengths_list, dtype=torch.int32, device=device)  # SL304
offsets = torch.tensor([0, 2, 5], device=device)                        # SL304
scale = torch.tensor(0.5, device=device)                               # SL304
```

Use instead:
```python
self.lengths_cpu[:n] = torch.as_tensor(lengths_list, dtype=torch.int32)   # a pinned buffer made in __init__
lengths = self.lengths_gpu[:n].copy_(self.lengths_cpu[:n], non_blocking=True)  # two buffers, or an event
offsets = torch.tensor([0, 2, 5]).to(device, non_blocking=True)  # small literal: or build it once, at start-up
scale = torch.full((), 0.5, device=device)
```

## What measured best (H200, torch 2.11)
From `docs/verification/pin-alloc-h200-torch2.11.md`: a loop of 120 steps, each
queueing 5 ms of GPU work, in a fresh process per variant, timed cold (first
pass) and warm (second pass):

| form | median host ms | first call of the process | blocked |
|---|---|---|---|
| `torch.tensor([0, 2, 5], device=d)` (and `[7]`, `0.5`, `[0..7]`) | 5.0 (the queue) | 5.0 | 120 of 120 |
| the table built once, reused | 0.000 | 0.001 | never |
| `torch.full(..., device=d)`, `torch.arange(8, device=d)` | 0.015-0.049 | 0.14-0.16 (`arange`: 5.1, first kernel launch) | first call only, for `arange` |
| `torch.stack` of `torch.full` scalars | 0.05-0.06 | 5.96 (first kernel launch) | first call only |
| `torch.tensor([0, 2, 5], pin_memory=True).to(d, non_blocking=True)` | 0.056-0.075 | 1.27 (2 cudaHostAlloc calls) | never |
| pageable `x.to(d, non_blocking=True)`, up to 32 KB | 0.015-0.06 | 0.17-0.30 | never |
| per-call pinning of growing data (`b`, `c` there) | 0.03-0.13 | 1.2-2.65 | never up to 2 MB; a new 16-19 MB size costs 14 ms |
| two pinned buffers, event-guarded (`d_staging_double`) | 0.03-0.16 | 0.54-1.07 | never |

So for literal data the fix copies from pageable memory with `non_blocking=True`:
as fast as any per-call form, no cudaHostAlloc, and a pageable copy of at most
64 KB never blocked (`docs/rules/SL303.md`). A table that never changes is
better built once, which the fixer cannot do for you.

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
- Literal data (a list or tuple display of numbers, nested or not) of at most
  64 KB: `torch.tensor(data, device=d, dtype=...)` becomes
  `torch.tensor(data, dtype=...).to(d, non_blocking=True)`, and
  `torch.as_tensor` alike. Safe: `torch.tensor(data, device=d)` itself builds
  the tensor on the CPU and copies it (`internal_new_from_data`), so the dtype
  and values are the same; the driver reads the source before the call returns;
  and it works when `d` is the CPU.
- Other host data: `torch.tensor(data, device=d, dtype=...)` becomes
  `torch.tensor(data, pin_memory=True, dtype=...).to(d, non_blocking=True)`, and
  `torch.as_tensor(data, device=d)` becomes
  `torch.as_tensor(data).pin_memory().to(d, non_blocking=True)`. The values are
  exact (the pinned temporary is protected by PyTorch's caching host allocator
  until the copy has run), but the fix is **unsafe** because of its cost:
  pinning allocates page-locked memory on every call, and each size the
  allocator has no free block for (the first call in a process, a new size)
  calls `cudaHostAlloc`: 1.2-2.6 ms up to 2 MB, about 4 ms at 4 MB and 14 ms at
  16-19 MB on an H200. For per-step data of varying size, copy through a
  persistent pinned buffer instead (two, used in turn, or one guarded by an
  event; see SL303). `pin_memory=True` also needs an accelerator: with a `d`
  that is a variable, it must be a GPU at run time.
- Verified on an H200 (torch 2.11, `docs/verification/verify-h200-torch2.11.md`),
  each after call timed cold for its size and once in a fresh process, against
  20 ms of queued GPU work: the literal-data fix, 32 calls back to back (64
  copies and 64 multiplications), took at most 2.76 ms; the per-call pinned list
  over lists growing to 16384 ints took at most 3.41 ms, its first call in a
  fresh process, list conversion included.
- `gpu_t.new_tensor(data)` becomes the same forms with `dtype=gpu_t.dtype` and
  `gpu_t.device` spelled out (checked equal on an H100: 0.17 ms against
  38.5 ms); a number becomes `torch.full((), v, dtype=gpu_t.dtype,
  device=gpu_t.device)`, safe under the overflow condition above.
- `torch.tensor([t0, t1])` of GPU tensors becomes `torch.stack([t0, t1])`, which
  is unsafe: the result keeps the elements' dtype (`torch.tensor` infers it from
  the Python values) and their device (without `device=`, `torch.tensor` gives a
  CPU tensor).

## When to ignore
One-off construction at start-up. Mark it with `# noqa: SL304`.
"""

from __future__ import annotations

import random
from dataclasses import replace as with_fields
from typing import TYPE_CHECKING, Any

import libcst as cst

from sync_lint.analysis.knowledge import DTYPE_NAMES
from sync_lint.rulekit import (
    NEVER_BLOCKED_BYTES,
    PER_CALL_PIN_COST,
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
    describe_bytes,
    dotted_name,
    get_arg,
    insert_before,
    is_python_number,
    literal_data,
    literal_number,
    method_receiver,
    remove_argument,
    splice,
    static_nbytes,
)

if TYPE_CHECKING:
    from sync_lint.engine.context import FileContext


# Literal data of a `new_tensor` takes its dtype from the receiver: count it at complex128's 16 bytes.
_WIDEST_ELEMENT_BYTES = 16
_PINNED_CAVEAT = "; `pin_memory` needs an accelerator, so the device must be a GPU at run time"
_SMALL_COPY = ("Build the tensor on the CPU and copy it with `non_blocking=True`: literal data of at most 64 KB, "
               "and a pageable copy that small never blocked (measured on an H200); the driver has read it when "
               "the call returns")
_PER_CALL_PIN = (f"Build the tensor in pinned memory and copy it with `non_blocking=True`: {PER_CALL_PIN_COST}; "
                 "stage per-step data through a persistent pinned buffer instead")


# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL304_LIST = """\
import torch


def run(data):
    return torch.tensor(data, dtype=torch.int32, device="cuda")
"""

SL304_LITERAL = """\
import torch


def run(device, k: int):
    table = torch.tensor([[0, 2, 5], [-7, 1099511627776, 13]], device=device)
    scales = torch.tensor([0.5, -1.25, 3.0], dtype=torch.float16, device=device)
    return table * k, scales * k
"""


class TensorFromHostData(Rule):
    code = "SL304"
    name = "tensor-from-host-data"
    summary = "`torch.tensor(..., device=gpu)`, `as_tensor`, `new_tensor`: a blocking copy from pageable memory"
    triggers = ("tensor(", "Tensor(")
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example("import torch\nx = torch.tensor([1, 2], device='cuda')\n", (2,)),
        Example("import torch\nx = torch.tensor(5, device='cuda')\n", (2,)),
        Example("import torch\nx = torch.tensor([1, 2], pin_memory=True).to('cuda', non_blocking=True)\n"),
        Example("import torch\nx = torch.full((), 5, device='cuda')\n"),
        Example("import torch\nx = torch.cuda.FloatTensor([0.5])\n", (2,)),
        Example("import torch\nx = torch.cuda.FloatTensor(4)\ny = torch.FloatTensor([0.5])\n"),
        Example("import torch\nt = torch.ones((), device='cuda')\nx = torch.Tensor([t, t * 2])\n", (3,)),
        Example("import torch\nt = torch.ones(())\nx = torch.Tensor([t, t * 2])\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.imports.resolve(node.func)
        if qual in ("torch.tensor", "torch.as_tensor"):
            self._factory(node, qual.rsplit(".", 1)[1])
        elif call_name(node) == "new_tensor" and method_receiver(node) is not None:
            self._new_tensor(node, method_receiver(node))  # type: ignore[arg-type]
        elif (call_name(node) or "").endswith("Tensor"):
            self._legacy_type(node)

    def _legacy_type(self, node: cst.Call) -> None:
        """`torch.cuda.FloatTensor([norm])`, or DeepSpeed's `get_accelerator().FloatTensor([norm])`: a
        legacy GPU tensor type given data builds it on the host and copies it over, as `torch.tensor`."""
        kind = self.ctx.devices.fact(node.func)
        cpu_type = self.ctx.imports.resolve(node.func) == "torch.Tensor" or \
            kind.value_kind == "tensor-type" and kind.device_value is not Device.GPU
        if kind.value_kind != "tensor-type" and not cpu_type:
            return
        positional = [a for a in node.args if a.keyword is None]
        if len(positional) != 1 or positional[0].star or _no_elements(positional[0].value):
            return
        data = positional[0].value
        if cpu_type:
            # `torch.Tensor([dp_loss, agg_loss])` (DeepSpeed's pipeline engine): a CPU type given GPU
            # elements reads each with `.item()` (measured: it waited for a 30 ms queue).
            if self._gpu_elements(data):
                spelled = abbreviate(self.ctx.text(node.func))
                self.report(node, f"`{spelled}(<data>)`, a CPU tensor type given GPU tensors, reads every "
                            "element with `.item()`, one sync per element; use `torch.stack`",
                            fact=self.gpu_fact(data.elements[0].value))  # type: ignore[attr-defined]
            return
        makes_from_data = "data" in kind.items  # `partial(torch.tensor, device="cuda")`
        if makes_from_data:
            given = self.ctx.devices.fact(data)
            if given.is_gpu or given.is_unknown_tensor:
                return  # a GPU tensor already: nothing comes from the host
        elif not _is_data(self.ctx, data):
            return  # sizes (`FloatTensor(4)`, `FloatTensor(2, 3)`) allocate on the device, copying nothing
        spelled = abbreviate(self.ctx.text(node.func))
        made = ("`torch.tensor` with a GPU `device=`, through `functools.partial`" if makes_from_data
                else "a legacy GPU tensor type given data")
        if self._gpu_elements(data):
            what = "reads every element (a GPU tensor) with `.item()`, one sync per element; use `torch.stack`"
        else:
            what = ("builds the tensor in pageable CPU memory and copies it to the GPU with a blocking copy; "
                    "build it on the device (`torch.full`, `torch.zeros`), or in pinned memory copied with "
                    "`non_blocking=True`")
        self.report(node, f"`{spelled}(<data>)`, {made}, {what}", fact=with_fields(kind, subject=spelled))

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
        # `device=x.device` of an `x` whose device is not known: an accelerator only by convention.
        confidence = Fact(Device.GPU, convention=True) if self.ctx.devices.assumed_device(device_arg.value) else None
        if name == "as_tensor" and data_fact.device is Device.UNKNOWN:
            return  # often already a GPU tensor, and then nothing is copied
        if name == "as_tensor" and self.ctx.devices.device_array(data_fact):
            return  # a view of device memory (`__cuda_array_interface__`): nothing comes from the host
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
                fact=confidence,
            )
            return
        size = _small_literal_nbytes(self.ctx, node)
        fix = None
        if only_keywords and _keywords(node) <= {"device", "dtype"} and not data_fact.is_tensor:
            fix = self._copy_fix(node, name, device_arg, size)
        if size is not None:
            advice = (f"it holds {describe_bytes(size)} of literal data: copy it with `non_blocking=True` (a pageable "
                      "copy of at most 64 KB never blocked), or build it once")
        else:
            advice = "build it in pinned memory and copy with `non_blocking=True`, or stage it through a pinned buffer"
        self.report(
            node,
            f"`torch.{name}(..., device=...)` builds the tensor in pageable CPU memory and copies it to the "
            f"GPU with a blocking copy; {advice}",
            evidence=evidence,
            fix=fix,
            fact=confidence,
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

    def _copy_fix(self, node: cst.Call, name: str, device_arg: cst.Arg, small: int | None) -> Fix:
        """Build on the CPU, then copy with `non_blocking=True`: from pageable memory when the literal
        data is small, else from a per-call pinned snapshot."""
        device_code = self.ctx.text(device_arg.value)
        if small is not None:
            built = splice(self.ctx, node, [remove_argument(self.ctx, node, device_arg)])
            return Fix("safe", _SMALL_COPY, (self.replace(node, f"{built}.to({device_code}, non_blocking=True)"),))
        if name == "tensor":
            built = splice(self.ctx, node, [Edit(*self.ctx.span(device_arg), "pin_memory=True")])
        else:
            built = splice(self.ctx, node, [remove_argument(self.ctx, node, device_arg)]) + ".pin_memory()"
        literal = self.ctx.devices.literal_accelerator(device_arg.value)
        return Fix("unsafe", _PER_CALL_PIN + ("" if literal else _PINNED_CAVEAT),
                   (self.replace(node, f"{built}.to({device_code}, non_blocking=True)"),))

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
        return self._new_tensor_copy_fix(node, data_arg.value, base, owner, missing)

    def _new_tensor_copy_fix(self, node: cst.Call, data: cst.BaseExpression, base: Fact, owner: str | None,
                             missing: list[str]) -> Fix:
        """`gpu_t.new_tensor(data)` -> `torch.tensor(data, dtype=gpu_t.dtype).to(gpu_t.device, non_blocking=True)`,
        through a per-call pinned snapshot unless the data is a small literal."""
        rename, needs = self._callee(node, "tensor")
        edits = [rename]
        found = literal_data(data)
        small = found is not None and found[0] * _WIDEST_ELEMENT_BYTES <= NEVER_BLOCKED_BYTES
        device_arg = get_arg(node, "device")
        if device_arg is not None:
            device = self.ctx.text(device_arg.value)
            literal = self.ctx.devices.literal_accelerator(device_arg.value)
            edits.append(remove_argument(self.ctx, node, device_arg) if small
                         else Edit(*self.ctx.span(device_arg), "pin_memory=True"))
        else:
            device = f"{owner}.device"
            literal = self.ctx.devices.created_on_accelerator(base)
            missing = missing if small else [*missing, "pin_memory=True"]
        if missing:
            edits.append(append_arguments(self.ctx, node, missing))
        text = f"{splice(self.ctx, node, edits)}.to({device}, non_blocking=True)"
        if small:
            return Fix("safe" if base.is_tensor else "unsafe", _SMALL_COPY, (self.replace(node, text),),
                       needs_imports=needs)
        return Fix("unsafe", _PER_CALL_PIN + ("" if literal and base.is_tensor else _PINNED_CAVEAT),
                   (self.replace(node, text),), needs_imports=needs)

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def growing_list(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            n = (1, 300, 4096, 16384, 0)[trial % 5]  # sizes new to the allocator when timed; 0 copies nothing
            return {"data": [rng.randrange(-(2**31), 2**31) for _ in range(n)]}

        def factor(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            return {"device": device, "k": rng.randrange(-5, 6)}

        return [
            kit.Case("SL304", "tensor-from-list", SL304_LIST, growing_list, unsafe=True, needs_cuda=True,
                     pins_per_call=True, precondition=(
                         "its host cost is acceptable: pin_memory=True allocates per call, and each size the "
                         "caching host allocator has no free block for costs a cudaHostAlloc (the trials grow "
                         "to 64 KB of int32 and run once in a fresh process)")),
            kit.Case("SL304", "tensor-from-literal", SL304_LITERAL, factor, burst=32, small_pageable_copies=True),
        ]


def _is_data(ctx: "FileContext", expr: cst.BaseExpression) -> bool:
    """What a legacy tensor type reads as data, not sizes: a list or tuple display, a comprehension, a
    Python list (a `torch.Size` would be sizes)."""
    if isinstance(expr, (cst.List, cst.Tuple, cst.ListComp)):
        return True
    return ctx.devices.fact(expr).value_kind == "list"


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


def _small_literal_nbytes(ctx: FileContext, node: cst.Call) -> int | None:
    """The bytes of a `torch.tensor`/`torch.as_tensor` call whose data is a literal of at most 64 KB."""
    data = get_arg(node, "data", 0)
    if data is None or literal_data(data.value) is None:
        return None
    size = static_nbytes(ctx, node)
    return size if size is not None and size <= NEVER_BLOCKED_BYTES else None


def _keywords(node: cst.Call) -> set[str]:
    return {a.keyword.value for a in node.args if a.keyword is not None}


def _dtype_class(dtype_arg: cst.Arg | None) -> str | None:
    """"int", "bool" or "float" for `dtype=torch.int32` and friends."""
    name = dotted_name(dtype_arg.value) if dtype_arg is not None else None
    return DTYPE_NAMES.get(name.rsplit(".", 1)[-1]) if name else None
