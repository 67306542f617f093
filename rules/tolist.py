"""# SL102 `tolist`: `.tolist()` on a GPU tensor

## What it does
Flags `t.tolist()` where the linter has evidence that `t` lives on the GPU.

## Why is this bad
`.tolist()` copies the whole tensor into **pageable** host memory and waits for
the stream to finish before it builds the Python list: the host stalls until
every kernel queued before it has run. Measured on an H100 (torch 2.11) with
41 ms of GPU work queued: `x[:8].tolist()` blocked the host for 40.5 ms (one
`set_sync_debug_mode` warning; profiler: `Memcpy DtoH (Device -> Pageable)`),
the same blocking copy as `.cpu()`, which ends in `at::cuda::memcpy_and_sync`
(`aten/src/ATen/native/cuda/Copy.cu:copy_kernel_cuda`). The path from
`torch/csrc/utils/tensor_list.cpp` to that copy was measured, not traced.

It hides well in helpers that build host-side index lists, such as chunk
indices computed from `cu_seqlens`: vLLM PR #38361 removed one from the GDN
prefill path by computing on the CPU copy of `cu_seqlens` that already existed.

## Example
```python
cu_seqlens = torch.zeros(n + 1, dtype=torch.int32, device=device)
lens = cu_seqlens.diff().tolist()  # SL102: waits for the GPU
```

Use instead the host-side mirror the caller already has:
```python
lens = cu_seqlens_cpu.diff().tolist()
```
or, when no mirror exists, start the copy early with
`h = t.to("cpu", non_blocking=True)`, record a CUDA event, and call
`h.tolist()` after `event.synchronize()` where waiting is cheap.

## Fix safety
When a `_cpu` mirror of the same tensor is in scope (`cu_seqlens_cpu` beside
`cu_seqlens`, bound at that point, already read in the function, or a configured
cpu-attribute), an unsafe fix reads the mirror instead. It is unsafe because
nothing proves the mirror holds the device tensor's current values. Otherwise
there is no fix.

## When to ignore
Outside the hot path (start-up, debugging output). Mark intentional syncs with
`with gpu_sync_allowed():` or `# noqa: SL102`.
"""

from __future__ import annotations

import libcst as cst

from sync_lint.rulekit import Example, Rule, method_receiver, report_host_read


class ToList(Rule):
    code = "SL102"
    name = "tolist"
    summary = "`.tolist()` on a GPU tensor copies it to pageable host memory and waits for the GPU"
    triggers = (".tolist(",)
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    fix_verified_by = "SL101"  # the same host-mirror rewrite
    examples = (
        Example("import torch\nx = torch.arange(8, device='cuda')\nv = x.tolist()\n", (3,)),
        Example("import torch\nx = torch.arange(8)\nv = x.tolist()\n"),
        Example("import numpy as np\na = np.arange(8)\nv = a.tolist()\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        receiver = method_receiver(node)
        if receiver is None or node.func.attr.value != "tolist" or node.args:  # type: ignore[attr-defined]
            return
        fact = self.gpu_fact(receiver)
        if fact is None:
            return
        report_host_read(self, 
            node,
            fact,
            "`.tolist()` on a GPU tensor copies it to pageable host memory and waits for the GPU",
            "build the list from a host-side copy (a `_cpu` mirror), or copy with "
            "`.to('cpu', non_blocking=True)` and read it after an event",
            receiver,
        )
