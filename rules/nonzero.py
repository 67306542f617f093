"""# SL201 `nonzero`: `nonzero`, `argwhere` or one-argument `where` on a GPU tensor

## What it does
Flags `torch.nonzero(x)` (also with `as_tuple=True`), `x.nonzero()`,
`torch.argwhere(x)`, `x.argwhere()` and the one-argument `torch.where(cond)`
when `x` / `cond` is a GPU tensor. `torch.nonzero_static` and the
three-argument `torch.where(cond, a, b)` do not sync and are not flagged.

## Why is this bad
The output's length is the number of nonzero elements, which only the GPU
knows. `nonzero_cuda_out_impl` (`aten/src/ATen/native/cuda/Nonzero.cu`) counts
them with cub, copies the count into pinned memory with
`at::cuda::memcpy_and_sync` and resizes the output on the host: the host waits
for every kernel queued before it. `argwhere(x)` is `nonzero(x)` and
`where(cond)` is `nonzero(cond, as_tuple=True)`. Measured on an H100 (torch 2.11)
with 41 ms of GPU work queued, `torch.nonzero(mask)` blocked the host for 40.6 ms
and `torch.where(mask)` for 40.7 ms (`as_tuple=True`, `x.nonzero()` and
`argwhere` block the same way); `torch.nonzero_static(mask, size=4096)` took
0.15 ms and `torch.where(mask, x, 0)` 0.2 ms.

## Example
```python
mask = seq_lens > 0
idx = torch.nonzero(mask).squeeze(1)  # SL201: waits for the GPU
```

Use instead a fixed-size result with a bound the code knows,
`torch.nonzero_static(mask, size=max_num_reqs)` (padded with `fill_value=-1`),
or keep the full shape: `torch.where(mask, x, 0)`, `x * mask`, `scatter`
into a buffer of known size.

## Fix safety
Unsafe, and only offered when a bound is known: set `nonzero-static-size` in the
configuration, or write it on the statement:

```python
idx = torch.nonzero(mask)  # sync-lint: nonzero-size=max_num_reqs
```

The fix writes `torch.nonzero_static(mask, size=max_num_reqs)` (`x.nonzero_static(...)`
for the method). The result always has `size` rows: when there are fewer nonzero
elements it is padded with `-1`, when there are more it is **silently
truncated**. For `as_tuple=True` and one-argument `where` the fix appends
`.unbind(1)`, which gives the same tuple for inputs with at least one dimension.
`nonzero_static` has a CUDA kernel since PyTorch PR #141838 (Dec 2024).

## When to ignore
When the result size must be exact and no bound exists, the sync is the price of
a data-dependent shape: keep it out of the per-step hot path, or mark it with
`# noqa: SL201`.
"""

from __future__ import annotations

import random
from typing import Any

import libcst as cst

from sync_lint.rulekit import (
    Example,
    Fix,
    Rule,
    bool_literal,
    get_arg,
    is_true_literal,
    statement_hints,
    valid_expression,
)

_FUNCTIONS = {"torch.nonzero": "nonzero", "torch.argwhere": "argwhere", "torch.where": "where"}
_METHODS = frozenset({"nonzero", "argwhere"})


# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL201_BEFORE = """\
import torch


def run(values, k):
    x = torch.zeros((values.shape[0],), dtype=values.dtype, device=values.device)
    x.copy_(values)
    return torch.nonzero(x)  # sync-lint: nonzero-size=k
"""


class Nonzero(Rule):
    code = "SL201"
    name = "nonzero"
    summary = "`nonzero`, `argwhere` or one-argument `where` on a GPU tensor waits for the GPU to count"
    triggers = ("nonzero", "argwhere", "where")
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example(
            "import torch\nm = torch.rand(8, device='cuda') > 0.5\ni = torch.nonzero(m)\nj = torch.where(m)\n", (3, 4)
        ),
        Example("import torch\nm = torch.rand(8, device='cuda') > 0.5\ni = torch.nonzero_static(m, size=8)\n"),
        Example("import torch\nm = torch.rand(8, device='cuda') > 0.5\ny = torch.where(m, 1.0, 0.0)\n"),
        Example("import numpy as np\na = np.ones(3)\ni = np.nonzero(a)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.imports.resolve(node.func)
        if qual is not None:
            op = _FUNCTIONS.get(qual)
            if op is None:
                return
            if op == "where":
                if len(node.args) != 1 or node.args[0].star:
                    return  # the three-argument form does not sync
                tensor = node.args[0].value
            else:
                arg = get_arg(node, "input", 0)
                if arg is None:
                    return
                tensor = arg.value
            label = "`torch.where(cond)`" if op == "where" else f"`torch.{op}`"
            is_method = False
        elif isinstance(node.func, cst.Attribute) and node.func.attr.value in _METHODS:
            op, tensor = node.func.attr.value, node.func.value
            label = f"`.{op}()`"
            is_method = True
        else:
            return
        fact = self.gpu_fact(tensor)
        if fact is None:
            return
        as_tuple = op == "where" or _as_tuple(node)
        fix = self._fix(node, tensor, is_method, as_tuple, fact.ndim)
        message = (
            f"{label} on a GPU tensor blocks the host: the result's size is the "
            "number of nonzeros, which PyTorch copies to the host and waits for; use "
            "`torch.nonzero_static(x, size=bound)` or keep the full shape (`torch.where(c, a, b)`)"
        )
        if fix is None:
            message += "; give the bound (`# sync-lint: nonzero-size=N` or `nonzero-static-size`) for a fix"
        self.report(node, message, fact=fact, fix=fix)

    def _fix(
        self, node: cst.Call, tensor: cst.BaseExpression, is_method: bool, as_tuple: bool, ndim: int | None
    ) -> Fix | None:
        size = valid_expression(statement_hints(self.ctx.marks.statement).get("nonzero-size") or self.ctx.settings.nonzero_static_size)
        if size is None or (as_tuple and ndim == 0) or not _only_input_and_as_tuple(node, is_method):
            return None
        if "\n" in self.ctx.code(node):
            return None  # the rewrite is written on one line
        if is_method:
            new = f"{self.ctx.code(tensor)}.nonzero_static(size={size})"
        else:
            func = node.func
            if isinstance(func, cst.Attribute):
                prefix = self.ctx.code(func.value)
            else:  # `from torch import nonzero`
                prefix = self.ctx.imports.local_name("torch")
            new = f"{prefix}.nonzero_static({self.ctx.code(tensor)}, size={size})"
        note = ""
        if as_tuple:
            new += ".unbind(1)"
            note = "; `.unbind(1)` gives the `as_tuple=True` tuple for inputs with at least one dimension"
        return Fix(
            "unsafe",
            f"Use `nonzero_static` with size={size}: the result always has that many rows, padded with -1 "
            f"when there are fewer nonzeros and silently truncated when there are more{note}",
            (self.replace(node, new),),
            needs_imports=("torch",),
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _exactly_k_nonzero(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            n = rng.choice([1, 8, 500])
            k = rng.randrange(0, n + 1)
            values = torch.zeros(n, dtype=torch.int64)
            values[torch.randperm(n, generator=torch.Generator().manual_seed(rng.randrange(2**31)))[:k]] = 1
            return {"values": values.to(device), "k": k}

        def _fewer_than_k(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            return {"values": torch.tensor([0, 1, 0, 1], device=device), "k": 3}

        return [
            kit.Case("SL201", "nonzero-static-hinted", SL201_BEFORE, _exactly_k_nonzero, unsafe=True,
                 precondition="the tensor has exactly `size` nonzeros", broken=_fewer_than_k),
        ]
def _as_tuple(node: cst.Call) -> bool:
    arg = get_arg(node, "as_tuple")
    return arg is not None and is_true_literal(arg.value)


def _only_input_and_as_tuple(node: cst.Call, is_method: bool) -> bool:
    """The call passes the input (positionally) and at most a literal `as_tuple`: nothing the fix would drop."""
    positional = 0 if is_method else 1
    for arg in node.args:
        if arg.star:
            return False
        if arg.keyword is None:
            positional -= 1
        elif arg.keyword.value != "as_tuple" or bool_literal(arg.value) is None:
            return False
    return positional == 0
