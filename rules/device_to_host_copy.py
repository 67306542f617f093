"""# SL103 `device-to-host-copy`: a device-to-host copy that waits for the GPU

## What it does
Flags copies of a GPU tensor to host memory that block the host:

- `t.cpu()`, `t.to("cpu")`, `t.to(torch.device("cpu"))`, `t.to(cpu_tensor)`,
  without `non_blocking=True`;
- `t.type(torch.BoolTensor)` (any legacy CPU tensor type, or its string
  `"torch.FloatTensor"`): a conversion to a CPU type is a copy to the host;
- `t.type_as(cpu_t)`: `type_as` is `.to(cpu_t)`, the other tensor's device as well
  as its dtype;
- `host_buf.copy_(gpu_t)` without `non_blocking=True`, pinned or not;
- `host_buf.copy_(gpu_t, non_blocking=True)` when `host_buf` is pageable memory
  the program allocated (a factory without `pin_memory=True`, a `.cpu()` result).

Not flagged: `t.to("cpu", non_blocking=True)` (the result is allocated pinned
and the copy is asynchronous), `pinned_buf.copy_(gpu_t, non_blocking=True)`,
`model.cpu()` / `module.to("cpu")` on an `nn.Module`, and `.cpu()` of a tensor
that is already on the CPU.

## Why is this bad
A blocking copy to the host ends in `at::cuda::memcpy_and_sync`
(`aten/src/ATen/native/cuda/Copy.cu:copy_kernel_cuda`): the host waits for every
kernel queued on the stream before the copy, even when the destination is
pinned. Measured on an H100 (torch 2.11) with 41 ms of GPU work queued:
`x.cpu()` 40.5 ms, `x.to('cpu')` 40.5 ms, `qsl.diff().to('cpu')` 40.5 ms (profiler:
`Memcpy DtoH (Device -> Pageable)`), and in a second probe (28 ms queued)
`v.to(cpu_tensor)` and `cpu_buf.copy_(v)` 28.4 ms each; `x.to('cpu', non_blocking=True)` 0.14 ms
(`Device -> Pinned`: `_to_copy` in `aten/src/ATen/native/TensorConversions.cpp`
allocates the result pinned when `non_blocking` is set).

`t.type(torch.BoolTensor)` converts to a legacy CPU type through the same blocking
copy: measured on an H200 (torch 2.11) behind a 30 ms queue, `mask.type(torch.BoolTensor)`,
`x.type(torch.LongTensor)` and `x.type("torch.FloatTensor")` each waited 30 ms, while
`mask.type(torch.cuda.BoolTensor)` (0.03 ms) and `x.type(torch.float16)` (0.13 ms) did
not (`benchmarks/gpu/index_type_probe.py`, `docs/verification/index-type-h200-torch2.11.0.md`).

`non_blocking=True` does not help a **pageable** destination: CUDA returns from
a device-to-host `cudaMemcpyAsync` into pageable memory only once the copy is
done, so the host waits for the queue anyway (measured: 16 KB, 60 ms against a
60 ms queue; `set_sync_debug_mode` reports nothing).

## Example
```python
query_start_loc_p = query_start_loc[-num_prefills - 1:] - num_decode_tokens
seqlens = query_start_loc_p.diff().to("cpu")  # SL103: waits for the GPU
```

Use instead the host-side copy the caller already has
(`query_start_loc_cpu[-num_prefills - 1:].diff()`), or, when the host needs the
values only later, copy asynchronously into pinned memory and wait on an event
just before reading:
```python
seqlens = query_start_loc_p.diff().to("cpu", non_blocking=True)
copied = torch.cuda.Event()
copied.record()
...
copied.synchronize()
```

## Fix safety
When a `_cpu` mirror of the copied tensor is in scope (`query_start_loc_cpu`
beside `query_start_loc`, bound at that point, already read in the function, or
a configured cpu-attribute), an unsafe fix reads the mirror and drops the copy:
`seq_lens.diff().cpu()` -> `seq_lens_cpu.diff()`, and `seq_lens[:n].cpu()` ->
`seq_lens_cpu[:n].clone()` (a view of the mirror must not stand in for a fresh
copy). It is unsafe because the mirror may lag the device tensor. A statement
that refreshes the mirror itself (`seq_lens_cpu = seq_lens.cpu()`,
`seq_lens_cpu.copy_(seq_lens)`) gets no fix. Switching to `non_blocking=True` is
never offered automatically: the host would read the buffer before the copy has
landed (measured: 0.0 instead of 7.0).

## When to ignore
Copies the host genuinely needs right away, outside the hot path. Mark them
with `with gpu_sync_allowed():` or `# noqa: SL103`.
"""

from __future__ import annotations

import libcst as cst

from sync_lint.rulekit import (
    Example,
    Rule,
    bool_literal,
    call_name,
    get_arg,
    method_receiver,
    positional_args,
    report_host_read,
)

WAIT_ADVICE = "copy with `.to('cpu', non_blocking=True)` and wait on a CUDA event before reading it"


class DeviceToHostCopy(Rule):
    code = "SL103"
    name = "device-to-host-copy"
    summary = "A blocking copy of a GPU tensor to host memory waits for the GPU"
    triggers = (".cpu(", ".to(", ".copy_(", ".type(", ".type_as(")
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    fix_verified_by = "SL101"  # the same host-mirror rewrite
    examples = (
        Example("import torch\nx = torch.ones(4, device='cuda')\nh = x.cpu()\n", (3,)),
        Example("import torch\nx = torch.ones(4, device='cuda')\nh = x.type_as(torch.ones(2))\n", (3,)),
        Example("import torch\nx = torch.ones(4, device='cuda')\nh = x.type_as(torch.ones(2, device='cuda'))\n"),
        Example("import torch\nx = torch.ones(4, device='cuda')\nh = x.to('cpu', non_blocking=True)\n"),
        Example("import torch\nx = torch.ones(4)\nh = x.cpu()\n"),
        Example("import torch\nx = torch.ones(4, device='cuda')\nm = (x > 0).type(torch.BoolTensor)\n", (3,)),
        Example("import torch\nx = torch.ones(4, device='cuda')\nm = (x > 0).type(torch.cuda.BoolTensor)\n"),
        Example("import torch\nx = torch.ones(4, device='cuda')\nm = x.type(torch.float16)\n"),
        Example("import torch\nbuf = torch.empty(4)\nx = torch.ones(4, device='cuda')\n"
                "buf.copy_(x, non_blocking=True)\n", (4,)),
        Example("import torch\nbuf = torch.empty(4, pin_memory=True)\nx = torch.ones(4, device='cuda')\n"
                "buf.copy_(x, non_blocking=True)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        receiver = method_receiver(node)
        method = call_name(node)
        if receiver is None:
            return
        if method in ("cpu", "to", "type", "type_as"):
            self._check_move(node, receiver, method)
        elif method == "copy_":
            self._check_copy(node, receiver)

    def _check_move(self, node: cst.Call, receiver: cst.BaseExpression, method: str) -> None:
        fact = self.gpu_fact(receiver)
        if fact is None or not self.ctx.devices.fact(node).is_cpu or _non_blocking(node) is not False:
            return
        # Dropping the move is right only when it changes nothing but the device.
        pure = not node.args if method == "cpu" else method == "to" and len(node.args) == 1 and \
            self._is_device(node.args[0])
        if method == "type":  # the evaluator puts the result on the CPU only for a legacy CPU type
            legacy = self.ctx.devices.legacy_type(node.args[0].value)
            if legacy is None:
                return
            what = f"`.type({self.ctx.code(node.args[0].value)})` names a CPU tensor type: it copies the GPU " \
                   "tensor into pageable host memory and waits for the GPU"
            advice = f"to change only the dtype, keep the device: `.to(torch.{legacy[1]})`"
        elif method == "type_as":
            what = f"`.type_as({self.ctx.code(node.args[0].value)})` takes a CPU tensor's device too: it copies " \
                   "the GPU tensor into pageable host memory and waits for the GPU"
            advice = "to change only the dtype, keep the device: `.to(other.dtype)`"
        else:
            spelled = ".cpu()" if method == "cpu" else ".to(...)"
            what = f"`{spelled}` copies a GPU tensor into pageable host memory and waits for the GPU"
            advice = WAIT_ADVICE
        report_host_read(self, node, fact, what, advice, receiver, whole=node if pure else None)

    def _check_copy(self, node: cst.Call, destination: cst.BaseExpression) -> None:
        target = self.ctx.devices.fact(destination)
        source = get_arg(node, "src", 0)
        if source is None or not target.is_cpu:
            return
        fact = self.gpu_fact(source.value)
        if fact is None:
            return
        non_blocking = _non_blocking(node, position=1)
        if non_blocking is False:
            what = "`copy_` of a GPU tensor into host memory without `non_blocking=True` waits for the GPU"
            advice = "copy into a pinned buffer with `non_blocking=True` and wait on a CUDA event before reading it"
        elif target.known_pageable:
            what = "`copy_` of a GPU tensor into pageable host memory waits for the GPU even with `non_blocking=True`"
            advice = "copy into a pinned buffer (`torch.empty(..., pin_memory=True)`)"
        else:
            return
        report_host_read(self, node, fact, what, advice, source.value, writes=(destination,))

    def _is_device(self, arg: cst.Arg) -> bool:
        if arg.keyword is not None and arg.keyword.value != "device":
            return False
        value = arg.value
        if isinstance(value, (cst.SimpleString, cst.FormattedString)):
            return True
        if isinstance(value, cst.Call) and self.ctx.imports.resolve(value.func) == "torch.device":
            return True
        return self.ctx.devices.fact(value).value_kind == "device"


def _non_blocking(node: cst.Call, position: int | None = None) -> bool | None:
    """The literal `non_blocking` of a copy (False when absent); None when computed or hidden."""
    if any(arg.star for arg in node.args):
        return None
    arg = get_arg(node, "non_blocking", position)
    if arg is None and position is None:
        # `.to(device, dtype, non_blocking)` and `.to(other, non_blocking)`: a positional bool.
        arg = next((a for a in positional_args(node)[1:] if bool_literal(a.value) is not None), None)
    return False if arg is None else bool_literal(arg.value)
