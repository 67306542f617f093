"""# SL303 `pageable-host-to-device`: a host-to-device copy that blocks, or goes through pageable memory

## What it does
Flags copies of a CPU tensor to the GPU: `cpu_t.to(device)`, `cpu_t.cuda()` and
`gpu_t.copy_(cpu_t)`, unless the source is known to be pinned **and** the copy
passes `non_blocking=True`, the only form that neither waits nor stages:

- pageable source, blocking copy: flagged;
- pageable source with `non_blocking=True`: flagged, it is still a staged copy
  from pageable memory;
- pinned source without `non_blocking=True`: flagged, it still blocks.

`model.to(device)` on an `nn.Module`, NumPy arrays and GPU tensors are never
flagged; a source is CPU when the linter can tell (`torch.from_numpy`, a factory
with no `device=`, `.cpu()`, a `*_cpu` name).

## Why is this bad
A blocking host-to-device copy (`non_blocking=False`, the default) ends in
`at::cuda::memcpy_and_sync` (`aten/src/ATen/native/cuda/Copy.cu:copy_kernel_cuda`):
the host waits for every kernel queued on the stream, not just the copy, even
from pinned memory. Measured on an H100 (torch 2.11) with 41 ms of GPU work
queued: `cpu.to(dev)` 40.5 ms, `cpu.cuda()` 40.5 ms, `buf.copy_(cpu)` 40.5 ms;
a 64 MB pinned blocking copy waited 61 ms.

With `non_blocking=True` from **pageable** memory PyTorch issues
`cudaMemcpyAsync` and the CUDA driver stages the data through its own pinned
buffer; the CUDA docs say it "may synchronize with the stream". Measured: up to
1 MB returned in under 0.2 ms, 4 MB and more waited for the whole queue (60 ms),
and `set_sync_debug_mode` reported none of them. Under steady load (2 ms of GPU
work queued before each copy) a 256 KB pageable `non_blocking` copy waited
1.85 ms per step, the whole queue. Only a pinned source with `non_blocking=True`
is asynchronous (0.15 ms, profiler `Pinned -> Device`).

## Example
```python
has_initial_states_cpu = num_computed_tokens_cpu[start:end] > 0
has_initial_states = has_initial_states_cpu.to(query_start_loc.device)  # SL303

mlist = torch.from_numpy(np.repeat(np.arange(n), nums))
batch_ptr[0:len(mlist)].copy_(mlist)  # SL303: HtoD from pageable
```

Use instead:
```python
has_initial_states = has_initial_states_cpu.pin_memory().to(query_start_loc.device, non_blocking=True)
batch_ptr[0:len(mlist)].copy_(mlist.pin_memory(), non_blocking=True)
```

## Fix safety
A pageable source `x` becomes `x.pin_memory()` and the copy gets
`non_blocking=True`. The pinned temporary is a host-side snapshot taken before
the call returns, so later host writes to `x` cannot reach the copy, and
PyTorch's caching host allocator does not reuse the temporary until the copy
has run (`CachingHostAllocator.h`: `record_event` on the block, events checked
before reuse). `pin_memory()` costs a host-side copy (steady state: 0.05 ms for 4 KB, 0.14 ms
for 256 KB, 1.0 ms for 4 MB, against 1.9-2.1 ms for the blocking copy behind
2 ms of GPU work); for large per-step copies keep a persistent pinned buffer
instead (see below for the rule it must follow). The fix is safe when the
destination is literally an accelerator: `.cuda()`, `.to("cuda")`, `torch.device("cuda:0")`, or a `copy_`
into a tensor created that way. When the destination is a variable it is
unsafe, because `pin_memory()` needs an accelerator and the variable may name
the CPU at run time.

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

import random
from typing import TYPE_CHECKING, Any

import libcst as cst

from sync_lint.rulekit import (
    Device,
    Edit,
    Example,
    Fact,
    Fix,
    Rule,
    call_name,
    get_arg,
    is_false_literal,
    is_true_literal,
    method_receiver,
    set_keyword,
    splice,
)

if TYPE_CHECKING:
    from sync_lint.engine.context import FileContext


_ATOMS = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)
# Where `non_blocking` sits positionally: `copy_(src, non_blocking)`, `cuda(device, non_blocking)`;
# `.to(...)` has overloads, so only its keyword counts.
_NON_BLOCKING_POSITION = {"copy_": 1, "cuda": 1, "to": None}


# --- fix helpers shared with SL304 ------------------------------------------------------


def pinned_text(ctx: FileContext, expr: cst.BaseExpression) -> str:
    """`expr.pin_memory()` in source, parenthesising `expr` where needed."""
    source = ctx.text(expr)
    if not isinstance(expr, _ATOMS) and not expr.lpar:
        source = f"({source})"
    return source + ".pin_memory()"


# --- the rule ---------------------------------------------------------------------------


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


class PageableHostToDevice(Rule):
    code = "SL303"
    name = "pageable-host-to-device"
    summary = "A CPU-to-GPU copy that blocks (`non_blocking` unset) or stages through pageable memory"
    triggers = (".to(", ".cuda(", ".copy_(")
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example("import torch\nx = torch.ones(4)\ny = x.to('cuda')\n", (3,)),
        Example("import torch\nx = torch.ones(4).pin_memory()\ny = x.cuda()\n", (3,)),
        Example("import torch\nx = torch.ones(4).pin_memory()\ny = x.to('cuda', non_blocking=True)\n"),
        Example("import torch\nmodel = torch.nn.Linear(4, 4)\nmodel.to('cuda')\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        method = call_name(node)
        receiver = method_receiver(node)
        if receiver is None or method not in _NON_BLOCKING_POSITION:
            return
        if method == "copy_":
            destination = self.gpu_fact(receiver)
            source_arg = get_arg(node, "src", 0)
            if destination is None or source_arg is None:
                return
            source = source_arg.value
            literal = destination.is_tensor and self.ctx.devices.created_on_accelerator(destination)
        else:
            if not self.ctx.devices.fact(node).is_gpu:
                return
            source = receiver
            target = get_arg(node, "device", 0)
            literal = method == "cuda" or (target is not None and self.ctx.devices.literal_accelerator(target.value))
        fact = self.ctx.devices.fact(source)
        if not fact.is_cpu:
            return
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
        if non_blocking or dynamic:
            message = (
                "a copy from pageable memory to the GPU is staged by the driver even with `non_blocking`: "
                "from about 4 MB on it waits for all queued GPU work, unreported by debug mode; copy from "
                "pinned memory (`.pin_memory()`)"
            )
        else:
            message = (
                "a blocking copy from pageable memory to the GPU waits for all queued GPU work; copy from "
                "pinned memory with `non_blocking=True`"
            )
        edits = [Edit(*self.ctx.span(source), pinned_text(self.ctx, source))]
        if not (non_blocking or dynamic):
            edits.append(set_keyword(self.ctx, node, "non_blocking", "True"))
        safe = literal and fact.is_tensor
        self.report(
            node,
            message,
            fact=fact,
            fix=Fix(
                "safe" if safe else "unsafe",
                "Copy from a pinned snapshot with `non_blocking=True`"
                + ("" if safe else ": `pin_memory()` needs an accelerator, so the destination must be a GPU "
                   "at run time"),
                (self.replace(node, splice(self.ctx, node, edits)),),
            ),
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
                (self.replace(node, splice(self.ctx, node, [set_keyword(self.ctx, node, "non_blocking", "True")])),),
            ),
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _host_tensor(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            n = rng.choice([1, 7, 1000, 65536])
            dtype = (kit.INT_DTYPES + kit.FLOAT_DTYPES)[trial % 5]
            return {"host_cpu": kit.values(rng, n, dtype, "cpu")}

        return [
            kit.Case("SL303", "cuda-from-pageable", SL303_CUDA, _host_tensor, needs_cuda=True),
            kit.Case("SL303", "copy-from-pageable", SL303_COPY, _host_tensor, needs_cuda=True),
        ]
