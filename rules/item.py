"""# SL101 `item`: `.item()` on a GPU tensor

## What it does
Flags `t.item()` where the linter has evidence that `t` lives on the GPU.

## Why is this bad
`.item()` copies one element into a pinned host buffer and then waits for the
stream to finish (`_local_scalar_dense_cuda` -> `at::cuda::memcpy_and_sync`). The
host stalls until every kernel queued before it has run, and the GPU idles
while Python catches up. Measured on an H100 (torch 2.11): `x.sum().item()` with
41 ms of work queued blocked the host for 40.5 ms; `x.max().item()` the same.

## Example
```python
seq_lens = torch.zeros(n, dtype=torch.int32, device=device)
max_len = seq_lens.max().item()  # SL101: waits for the GPU
```

Use instead a host-side mirror that already exists (`seq_lens_cpu.max().item()`,
an upper bound the scheduler knows), or keep the value on the device as a 0-dim
tensor and use tensor ops (`torch.maximum`, `torch.where`).

## Fix safety
No automatic fix in general. When a `_cpu` mirror of the same tensor is in scope
(`seq_lens_cpu` beside `seq_lens`, bound at that point, already read in the
function, or a configured cpu-attribute), an unsafe fix reads the mirror instead:
`seq_lens.max().item()` -> `seq_lens_cpu.max().item()`. It is unsafe because
nothing proves the mirror holds the device tensor's current values (it may lag a
step behind, or be an upper bound).

## When to ignore
Outside the hot path (start-up, logging every N steps). Mark intentional syncs
with `with gpu_sync_allowed():` or `# noqa: SL101`.
"""

from __future__ import annotations

import random
from typing import Any

import libcst as cst

from sync_lint.rulekit import Example, Rule, method_receiver, report_host_read

# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL101_BEFORE = """\
import torch


def run(values, lens_cpu):
    lens = torch.zeros((values.shape[0],), dtype=values.dtype, device=values.device)
    lens.copy_(values)
    return lens.max().item()
"""


class Item(Rule):
    code = "SL101"
    name = "item"
    summary = "`.item()` on a GPU tensor waits for the GPU"
    triggers = (".item(",)
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example("import torch\nx = torch.ones(3, device='cuda')\nv = x.sum().item()\n", (3,)),
        Example("import numpy as np\na = np.ones(3)\nv = a.sum().item()\n"),
        Example("import torch\nx = torch.ones(3)\nv = x.sum().item()\n"),
        Example("def f(lens_gpu, lens_cpu):\n    return lens_gpu.max().item()\n", (2,)),
    )

    def visit_Call(self, node: cst.Call) -> None:
        receiver = method_receiver(node)
        if receiver is None or node.func.attr.value != "item" or node.args:  # type: ignore[attr-defined]
            return
        fact = self.gpu_fact(receiver)
        if fact is None:
            return
        report_host_read(self, 
            node,
            fact,
            "`.item()` on a GPU tensor blocks the host until the GPU catches up",
            "use a value the host already has (a `_cpu` mirror, a bound it knows) or keep it on the device",
            receiver,
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _mirrored(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            n = rng.choice([1, 5, 300])
            values = kit.values(rng, n, "int32", "cpu", 0, 4096)
            return {"values": values.to(device), "lens_cpu": values.clone()}

        def _stale_mirror(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            return {"values": torch.tensor([1, 9], dtype=torch.int32, device=device),
                    "lens_cpu": torch.tensor([1, 2], dtype=torch.int32)}

        return [
            kit.Case("SL101", "max-item-from-mirror", SL101_BEFORE, _mirrored, unsafe=True,
                 precondition="the `_cpu` mirror holds the same values as the device tensor", broken=_stale_mirror),
        ]
