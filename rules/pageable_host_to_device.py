"""# SL303 `pageable-host-to-device`: a host-to-device copy that blocks, or goes through pageable memory

## What it does
Flags copies of a CPU tensor to the GPU: `cpu_t.to(device)`, `cpu_t.cuda()`,
`cpu_t.type_as(gpu_t)` (which is `.to(gpu_t)`: the other tensor's device as well as its
dtype) and `gpu_t.copy_(cpu_t)`, unless the source is known to be pinned **and** the copy
passes `non_blocking=True`, the only form that neither waits nor stages at any size:

- pageable source, blocking copy: flagged, whatever its size;
- pageable source with `non_blocking=True`: flagged unless the code shows it holds
  at most 64 KB (below), since the driver stages it and it may block when large
  or repeated;
- pinned source without `non_blocking=True`: flagged, it still blocks.

A source is pinned when it was made with `pin_memory=True`, or with a flag that holds
wherever pinned memory exists: `PIN_MEMORY` and `is_pin_memory_available()` (vLLM's and
SGLang's: in vLLM 0.33 false only on the CPU platform, with no GPU to wait for, and under WSL
kernels older than 4.19.121).
`t.is_pinned()` tested true, and `if PIN_MEMORY and not t.is_pinned():` failing, prove it
too; `cpu.pin_memory() if PIN_MEMORY else cpu` and `if PIN_MEMORY: t = t.pin_memory()` take
the pinned arm. With another flag (`pin_memory=self.pin`) the memory may be either, and a
`non_blocking` copy from it is reported only with `--strict`.

`model.to(device)` on an `nn.Module`, NumPy arrays and GPU tensors are never
flagged; a source is CPU when the linter can tell (`torch.from_numpy`, a factory
with no `device=`, `.cpu()`, a `*_cpu` name, and by convention a batch of a
`torch.utils.data.DataLoader`, pinned when it is made with `pin_memory=True`).
A factory with no `device=` inside `with torch.device(d):` allocates on `d`. In the `__init__` of an `nn.Module`, in
the methods only `__init__` calls, and in the functions they call (a layout helper
in another module) its device is not known: a module may be built inside such a
block, as vLLM's model loader builds every model in `with target_device:`, so
moving what it made there is not taken for a copy from the host. The same helper
called at run time (from `forward`) makes a CPU tensor. Its size is known when the code that
made it says so: `torch.tensor` of a literal list, `torch.zeros/ones/empty/full/
rand/randn` with a literal shape and a known dtype, a slice or view of such a
tensor (never larger), or a name bound to one of these; the message then states it.

## Why is this bad
A blocking host-to-device copy (`non_blocking=False`, the default) ends in
`at::cuda::memcpy_and_sync` (`aten/src/ATen/native/cuda/Copy.cu:copy_kernel_cuda`):
the host waits for every kernel queued on the stream, not just the copy, even
from pinned memory and at any size. Measured on an H100 (torch 2.11) with 41 ms of
GPU work queued: `cpu.to(dev)` 40.5 ms, `cpu.cuda()` 40.5 ms, `buf.copy_(cpu)`
40.5 ms; on an H200 a blocking 4 KB copy waited for the whole 50 ms queue.

With `non_blocking=True` from **pageable** memory PyTorch issues
`cudaMemcpyAsync`, and the CUDA driver stages the data through its own pinned
buffer; the CUDA docs say it "may synchronize with the stream", and
`set_sync_debug_mode` reports none of these waits. When it waits depends on the
size and on how often. Measured on an H200 (torch 2.11, driver 580; every size
from 4 KB to 16 MB, int32, `.to` and `copy_` alike; 50 ms of GPU work queued, or
2 ms before each copy in the per-step loop):

| pageable `non_blocking=True` copy | once, behind queued work | 8 or 32 back to back | once per step, 2 ms queued before each |
|---|---|---|---|
| up to 64 KB | never blocked (<= 0.1 ms) | never (32 copies <= 0.52 ms in all) | never (0 of 96) |
| 80 KB to 1 MB | did not block | the 3rd copy waited for the whole queue | 90 of 96 waited (all but the first 2 per run) |
| 2 MB | did not block (0.21-0.29 ms) | the 2nd copy waited | 93 of 96 |
| 2.5 MB and more | waited for the whole queue, every time | the 1st copy waited | 96 of 96 |
| pinned source, 4 KB to 16 MB | never (<= 0.1 ms) | never | never |

In a loop whose host runs exactly one step ahead of the GPU, one such copy per
step did not block up to 983 KB and blocked every step from 1030 KB. A blocked
copy waits for everything queued on the stream, not only for earlier copies. So:
at most 64 KB, a pageable `non_blocking` copy is as good as a pinned one; above
that, only a pinned source is asynchronous.

## Example
```python
has_initial_states_cpu = num_computed_tokens_cpu[start:end] > 0
has_initial_states = has_initial_states_cpu.to(query_start_loc.device)  # SL303

mlist = torch.from_numpy(np.repeat(np.arange(n), nums))
self.batch_ptr[0:len(mlist)].copy_(mlist)  # SL303: HtoD from pageable
```

Use instead (a pinned staging buffer allocated once, like vLLM's `CpuGpuBuffer`):
```python
# in __init__: self.batch_ptr_cpu = torch.zeros(1024, dtype=torch.int32, pin_memory=True)
self.batch_ptr[0:len(mlist)].copy_(self.batch_ptr_cpu[0:len(mlist)].copy_(mlist), non_blocking=True)
```

## Fix safety
Which fix is offered depends on what the code shows:

- **A blocking copy of at most 64 KB** (its size known, as above) gets
  `non_blocking=True` and stays pageable: safe. The driver copies the data out of
  the source before the call returns, so later host writes cannot reach the copy,
  and at this size it never blocked (table above). `non_blocking` also works when
  the destination turns out to be the CPU.
- **A `copy_` into a tensor whose host mirror is a pinned buffer** (`self.x[...]`
  with `self.x_cpu` set with `pin_memory=True`, e.g. in `__init__`) is staged
  through that buffer: `self.x[s].copy_(self.x_cpu[s].copy_(src),
  non_blocking=True)`. Unsafe: it overwrites `self.x_cpu[s]` (exact when the
  buffer has the destination's shape and dtype, as a mirror does), and the host
  must not write the buffer again until the copy has run. Record an event after
  the copy and wait on it before the next write, or use two buffers in turn: in
  a loop whose host runs one step ahead, one event-guarded buffer stalled 119 of
  120 steps, two never did (`docs/verification/pin-alloc-h200-torch2.11.md`).
  The slice is evaluated twice, so it is offered only for names, numbers,
  arithmetic and `len()`.
- **Otherwise** the source `x` becomes a per-call pinned snapshot,
  `x.pin_memory()`, and the copy gets `non_blocking=True`. The snapshot is taken
  before the call returns and PyTorch's caching host allocator does not reuse it
  until the copy has run (`CachingHostAllocator.h`: `record_event` on the block,
  events checked before reuse), so the values are exact. It is **unsafe** because
  of its cost: pinning allocates page-locked memory on every call, and each size
  the allocator has no free block for (the first call in a process, a new size)
  calls `cudaHostAlloc`, measured on an H200 at 1.2-2.6 ms per new size up to
  2 MB, about 4 ms at 4 MB and 13.7-14.2 ms at 16-19 MB; warm, a 4 KB to 2 MB
  snapshot cost 0.03-0.4 ms. A serving loop with varying batch sizes keeps
  meeting new sizes, so stage per-step copies through a persistent pinned buffer
  instead. `pin_memory()` also needs an accelerator: with a destination that is
  a variable, it must be a GPU at run time.

Verified on an H200 (torch 2.11; `docs/verification/verify-h200-torch2.11.md` and
`verify-sl303-h200-torch2.11.md`), every after call timed cold for its size and
each case once in a fresh process, against 20 ms of queued GPU work: the per-call
pinned snapshot over sizes growing from 8 B to 2 MB never blocked (worst call
1.79 ms; the first pin of a process 1.24-1.52 ms), while a 16 MB and a 20 MB size
new to the process took 8.5-9.7 ms and 18.6 ms; the `non_blocking` fix of a 64 KB
copy, 32 calls back to back, took at most 1.55 ms for all 32; the staged copy
took at most 5.59 ms (0.15-0.17 ms in a fresh process), and two loads without a wait
between them gave the first the second's data, as the precondition says.

A source that is already pinned only gets `non_blocking=True`, and that is
unsafe: a persistent pinned buffer that the host writes again before the copy
has run corrupts the transfer (measured: the GPU received 2.0 instead of 1.0).
Apply it only when nothing writes the buffer until an event recorded after the
copy has completed, or double-buffer it.

## When to ignore
Small one-off copies at start-up. Mark intentional copies with
`# noqa: SL303`.
"""

from __future__ import annotations

import dataclasses
import random
from typing import TYPE_CHECKING, Any

import libcst as cst

from sync_lint.rulekit import (
    NEVER_BLOCKED_BYTES,
    PER_CALL_PIN_COST,
    REPEATED_BLOCKS_FROM_BYTES,
    SINGLE_BLOCKS_FROM_BYTES,
    Device,
    Edit,
    Example,
    Fact,
    Fix,
    Rule,
    abbreviate,
    call_name,
    describe_bytes,
    dotted_name,
    get_arg,
    is_false_literal,
    is_true_literal,
    method_receiver,
    set_keyword,
    splice,
    static_nbytes,
)

if TYPE_CHECKING:
    from sync_lint.engine.context import FileContext


_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)
# Where `non_blocking` sits positionally: `copy_(src, non_blocking)`, `cuda(device, non_blocking)`;
# `.to(...)` has overloads, so only its keyword counts.
_NON_BLOCKING_POSITION = {"copy_": 1, "cuda": 1, "to": None, "type_as": None}
_PURE_CALLS = frozenset({"len"})


def pinned_text(ctx: FileContext, expr: cst.BaseExpression) -> str:
    """`expr.pin_memory()` in source, parenthesising `expr` where needed."""
    source = ctx.text(expr)
    if not isinstance(expr, _ATOMS) and not expr.lpar:
        source = f"({source})"
    return source + ".pin_memory()"


def _pure(expr: cst.BaseExpression) -> bool:
    """Evaluating `expr` twice gives the same value and does nothing else: names, numbers,
    arithmetic, subscripts of those and `len()`."""
    if isinstance(expr, (cst.Name, cst.Integer)):
        return True
    if isinstance(expr, cst.Attribute):
        return dotted_name(expr) is not None
    if isinstance(expr, cst.UnaryOperation):
        return _pure(expr.expression)
    if isinstance(expr, cst.BinaryOperation):
        return _pure(expr.left) and _pure(expr.right)
    if isinstance(expr, cst.Subscript):
        return _pure(expr.value) and all(_pure_index(e.slice) for e in expr.slice)
    if isinstance(expr, cst.Call):
        return (isinstance(expr.func, cst.Name) and expr.func.value in _PURE_CALLS
                and all(a.keyword is None and not a.star and _pure(a.value) for a in expr.args))
    return False


def _pure_index(index: cst.BaseSlice) -> bool:
    if isinstance(index, cst.Slice):
        return all(part is None or _pure(part) for part in (index.lower, index.upper, index.step))
    return _pure(index.value)  # type: ignore[attr-defined]


def _staged_message(size: int | None) -> str:
    """What a pageable `non_blocking` copy of `size` bytes (None: unknown) does, from the measurements."""
    lead = "a copy from pageable memory to the GPU is staged by the driver even with `non_blocking`"
    if size is None:
        return (f"{lead}: it may block when large or repeated (measured: from about 80 KB when repeated, "
                "2.5 MB alone), unreported by debug mode; copy from pinned memory (`.pin_memory()`)")
    if size >= SINGLE_BLOCKS_FROM_BYTES:
        when = "it waits for all queued GPU work every time (measured from about 2.5 MB)"
    elif size >= REPEATED_BLOCKS_FROM_BYTES:
        when = "at this size it waited for all queued GPU work when repeated (measured from about 80 KB)"
    else:
        when = "just above the 64 KB up to which it never blocked (measured); above that it waited when repeated"
    return f"{lead}: this one holds up to {describe_bytes(size)}, and {when}; copy from pinned memory (`.pin_memory()`)"


def _blocking_message(size: int | None, pageable: bool = True) -> str:
    memory = "pageable memory" if pageable else "host memory, pinned or not,"
    lead = f"a blocking copy from {memory} to the GPU waits for all queued GPU work"
    if size is not None and size <= NEVER_BLOCKED_BYTES:
        return (f"{lead}; it holds at most {describe_bytes(size)}, and a pageable `non_blocking=True` copy of "
                "up to 64 KB never blocked (measured): pass `non_blocking=True`")
    return f"{lead}; copy from pinned memory with `non_blocking=True`"


# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL303_CUDA = """\
import torch


def run(host_cpu):
    return host_cpu.cuda()
"""

SL303_COPY = """\
import torch


def run(host_cpu):
    buf = torch.empty((host_cpu.shape[0],), dtype=host_cpu.dtype, device="cuda")
    buf.copy_(host_cpu)
    return buf
"""

SL303_SMALL = """\
import torch


def run(values_cpu, device):
    host = torch.zeros(8192, dtype=torch.int64)
    host[: values_cpu.shape[0]] = values_cpu
    return host.to(device)
"""

SL303_STAGED = """\
import torch


class Staging:
    def __init__(self, capacity: int):
        self.ids = torch.zeros(capacity, dtype=torch.int64, device="cuda")
        self.ids_cpu = torch.zeros(capacity, dtype=torch.int64, pin_memory=True)

    def load(self, host_cpu):
        n = host_cpu.shape[0]
        self.ids[:n].copy_(host_cpu)
        return self.ids[:n].clone()


STAGING = Staging(262144)


def run(first_cpu, then_cpu=None):
    first = STAGING.load(first_cpu)
    return first if then_cpu is None else (first, STAGING.load(then_cpu))
"""

# Elements per trial: int64 tensors of 8 B to 2 MB, each size new to the allocator when timed.
GROWING_SIZES = (1, 1000, 16384, 65536, 262144)
PER_CALL_PIN_PRECONDITION = (
    "its host cost is acceptable: pin_memory() allocates per call, and each size the caching host "
    "allocator has no free block for costs a cudaHostAlloc (the trials grow to 2 MB and run once in a "
    "fresh process; the broken run pins 16 or 20 MB, a block size new to the process)"
)


class PageableHostToDevice(Rule):
    code = "SL303"
    name = "pageable-host-to-device"
    summary = "A CPU-to-GPU copy that blocks (`non_blocking` unset) or stages through pageable memory"
    triggers = (".to(", ".cuda(", ".copy_(", ".type_as(")
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example("import torch\nx = torch.ones(4)\ny = x.to('cuda')\n", (3,)),
        Example("import torch\nx = torch.ones(4)\ny = x.type_as(torch.ones(2, device='cuda'))\n", (3,)),
        Example("import torch\nx = torch.ones(4)\ny = x.type_as(torch.ones(2))\n"),
        Example("import torch\nx = torch.ones(4).pin_memory()\ny = x.cuda()\n", (3,)),
        Example("import torch\nx = torch.ones(4).pin_memory()\ny = x.to('cuda', non_blocking=True)\n"),
        Example("import torch\nx = torch.ones(4)\ny = x.to('cuda', non_blocking=True)\n"),
        Example("import torch\nx = torch.ones(1048576)\ny = x.to('cuda', non_blocking=True)\n", (3,)),
        Example("import torch\nmodel = torch.nn.Linear(4, 4)\nmodel.to('cuda')\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        method = call_name(node)
        receiver = method_receiver(node)
        if receiver is None or method not in _NON_BLOCKING_POSITION:
            return
        copy = self._copy(node, method, receiver)
        if copy is None:
            return
        source, literal, destination = copy
        fact = self.ctx.devices.fact(source)
        if not fact.is_cpu:
            return
        if destination.by_convention:  # e.g. `.to(x.device)` of an `x` whose device is not known
            fact = dataclasses.replace(fact, convention=True)
        flag = get_arg(node, "non_blocking", _NON_BLOCKING_POSITION[method])
        non_blocking = flag is not None and is_true_literal(flag.value)
        # `non_blocking=<expression>`: the caller decides at run time.
        dynamic = flag is not None and not non_blocking and not is_false_literal(flag.value)
        if fact.device is Device.PINNED:
            if not (non_blocking or dynamic):
                self._report_pinned_blocking(node, flag, fact)
            return
        if (non_blocking or dynamic) and fact.pinning_unknown and not self.ctx.settings.strict:
            return  # a non-blocking copy is only a problem from memory proven pageable
        size = static_nbytes(self.ctx, source)
        if method == "type_as":  # it takes no `non_blocking`: the copy must become a `.to(...)` to stop waiting
            self.report(node, "`.type_as(...)` of a CPU tensor is a blocking copy to the GPU: it waits for all "
                        "queued GPU work; copy from pinned memory with `.to(other, non_blocking=True)`",
                        fact=fact, also=destination)
            return
        if non_blocking or dynamic:
            if size is not None and size <= NEVER_BLOCKED_BYTES:
                return  # measured: never blocks at this size
            fix = self._pinning_fix(node, method, receiver, source, literal and fact.is_tensor, None)
            self.report(node, _staged_message(size), fact=fact, fix=fix, also=destination)
            return
        if size is not None and size <= NEVER_BLOCKED_BYTES:
            fix = Fix("safe", "Pass `non_blocking=True`: a pageable copy of at most 64 KB never blocked (measured "
                      "on an H200), and the driver has read the source when the call returns",
                      (self.replace(node, splice(self.ctx, node, [self._flag_edit(node, flag)])),))
        else:
            fix = self._pinning_fix(node, method, receiver, source, literal and fact.is_tensor,
                                    self._flag_edit(node, flag))
        self.report(node, _blocking_message(size, not fact.pinning_unknown), fact=fact, fix=fix, also=destination)

    def _copy(self, node: cst.Call, method: str,
              receiver: cst.BaseExpression) -> tuple[cst.BaseExpression, bool, Fact] | None:
        """(the source, whether the destination is literally an accelerator, the destination's fact) of a
        host-to-device copy."""
        if method == "copy_":
            destination = self.gpu_fact(receiver)
            source_arg = get_arg(node, "src", 0)
            if destination is None or source_arg is None:
                return None
            literal = destination.is_tensor and self.ctx.devices.created_on_accelerator(destination)
            return source_arg.value, literal, destination
        result = self.ctx.devices.fact(node)
        if not result.is_gpu:
            return None
        target = get_arg(node, "device", 0)
        literal = method == "cuda" or (target is not None and self.ctx.devices.literal_accelerator(target.value))
        if target is not None and not literal:  # why the target is the accelerator is the evidence to show
            named = self.ctx.devices.fact(target.value)
            if named.value_kind == "device" or named.is_gpu:
                return receiver, literal, dataclasses.replace(
                    named, subject=named.subject or abbreviate(self.ctx.code(target.value)),
                    convention=named.convention or result.by_convention)
        return receiver, literal, result

    def _flag_edit(self, node: cst.Call, flag: cst.Arg | None) -> Edit:
        """The edit that makes the copy pass `non_blocking=True`, wherever the flag already sits."""
        if flag is not None:
            return Edit(*self.ctx.span(flag.value), "True")
        return set_keyword(self.ctx, node, "non_blocking", "True")

    def _pinning_fix(self, node: cst.Call, method: str, receiver: cst.BaseExpression, source: cst.BaseExpression,
                     literal: bool, flag_edit: Edit | None) -> Fix:
        """Stage through the destination's pinned mirror where it has one, else a per-call pinned snapshot.

        `flag_edit` makes the copy pass `non_blocking=True`; None when it already decides that itself."""
        staged = self._staging_fix(node, receiver, source) if method == "copy_" else None
        if staged is not None:
            return staged
        edits = [Edit(*self.ctx.span(source), pinned_text(self.ctx, source))]
        if flag_edit is not None:
            edits.append(flag_edit)
        caveat = "" if literal else "; `pin_memory()` needs an accelerator, so the destination must be a GPU at run time"
        return Fix(
            "unsafe",
            f"Copy from a per-call pinned snapshot with `non_blocking=True`: {PER_CALL_PIN_COST}; stage per-step "
            f"copies through a persistent pinned buffer instead{caveat}",
            (self.replace(node, splice(self.ctx, node, edits)),),
        )

    def _staging_fix(self, node: cst.Call, receiver: cst.BaseExpression, source: cst.BaseExpression) -> Fix | None:
        """`self.x[s].copy_(src)` -> `self.x[s].copy_(self.x_cpu[s].copy_(src), non_blocking=True)`."""
        base = receiver.value if isinstance(receiver, cst.Subscript) else receiver
        name = dotted_name(base)
        if name is None or (isinstance(receiver, cst.Subscript)
                            and not all(_pure_index(e.slice) for e in receiver.slice)):
            return None
        mirror = self.ctx.mirrors.mirror_of(name)
        buffer = self.ctx.devices.bound_fact(mirror) if mirror is not None else None
        if buffer is None or buffer.device is not Device.PINNED:
            return None
        receiver_text = self.ctx.text(receiver)
        index = receiver_text[len(self.ctx.text(base)):]
        staged = f"{mirror}{index}"
        return Fix(
            "unsafe",
            f"Stage the copy through the pinned buffer `{mirror}`: exact when it has the destination's shape and "
            f"dtype; it overwrites `{staged}`, and the host must not write it again until the copy has run "
            "(record an event after the copy and wait on it first, or use two buffers in turn)",
            (self.replace(node, f"{receiver_text}.copy_({staged}.copy_({self.ctx.text(source)}), non_blocking=True)"),),
        )

    def _report_pinned_blocking(self, node: cst.Call, flag: cst.Arg | None, fact: Fact) -> None:
        self.report(
            node,
            "a blocking copy from pinned memory to the GPU still waits for all queued GPU work; "
            "pass `non_blocking=True`",
            fact=fact,
            fix=Fix(
                "unsafe",
                "Pass `non_blocking=True`: only if the host does not write the pinned source again until "
                "the copy has completed (an event recorded after it), or the buffer is double-buffered",
                (self.replace(node, splice(self.ctx, node, [self._flag_edit(node, flag)])),),
            ),
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def growing(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            n = GROWING_SIZES[trial % len(GROWING_SIZES)]
            dtype = ("int64", "float32", "int32", "bfloat16", "float16")[trial // len(GROWING_SIZES) % 5]
            return {"host_cpu": kit.values(rng, n, dtype, "cpu")}

        def larger(megabytes: int) -> kit.InputMaker:
            # A size no earlier case of the run has pinned: the caching host allocator rounds blocks up to
            # a power of two and keeps them, so each case breaks the precondition with its own block size.
            def make(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
                return {"host_cpu": kit.values(rng, megabytes << 18, "float32", "cpu")}

            return make

        def small(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            n = (1, 64, 1024, 8192)[trial % 4]
            return {"values_cpu": kit.values(rng, n, "int64", "cpu"), "device": device}

        def staged(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            n = GROWING_SIZES[trial % len(GROWING_SIZES)]
            return {"first_cpu": kit.values(rng, n, "int64", "cpu")}

        def staged_twice(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            # Two loads with no wait between them: the second overwrites the buffer before the first copy ran.
            return {"first_cpu": kit.values(rng, 65536, "int64", "cpu"), "then_cpu": kit.values(rng, 65536, "int64", "cpu")}

        per_call_pin = {"unsafe": True, "precondition": PER_CALL_PIN_PRECONDITION, "broken_shows_only_on_cuda": True,
                        "needs_cuda": True, "pins_per_call": True}
        return [
            kit.Case("SL303", "cuda-from-pageable", SL303_CUDA, growing, broken=larger(16), **per_call_pin),
            kit.Case("SL303", "copy-from-pageable", SL303_COPY, growing, broken=larger(20), **per_call_pin),
            kit.Case("SL303", "small-copy-non-blocking", SL303_SMALL, small, burst=32, small_pageable_copies=True),
            kit.Case("SL303", "copy-through-pinned-buffer", SL303_STAGED, staged, unsafe=True, needs_cuda=True,
                     precondition="nothing writes the pinned buffer again until the copy has run (an event "
                     "recorded after the copy and waited on before the next write, or two buffers in turn)",
                     broken=staged_twice),
        ]
