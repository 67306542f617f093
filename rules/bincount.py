"""# SL204 `bincount`: `bincount`, or `histc` without a range, on a GPU tensor

## What it does
Flags `torch.bincount(x)` and `x.bincount()` on a GPU tensor, with or without
`minlength`, and `torch.histc(x)` / `x.histc()` when the range is left to the
data: neither `min` nor `max` given, or both given as the same number (the
defaults are `min=max=0`), or only one given as `0`.

## Why is this bad
`_bincount_cuda_template` (`aten/src/ATen/native/cuda/SummaryOps.cu`) checks
for negative values with `self.min().cpu()` and sizes its output with
`self.max().item() + 1`, then takes `max(that, minlength)`: `minlength` does not
skip either read. `_histc_cuda_template` reads `self.min()` and `self.max()` on
the host when `min == max`. Measured on an H100 (torch 2.11) with 41 ms of GPU
work queued: `torch.bincount(x)` blocked the host for 40.8 ms with 2 syncs,
`torch.bincount(x, minlength=16)` 40.8 ms, 2 syncs; `torch.histc(x)` 40.8 ms,
2 syncs; `torch.histc(x, bins=10, min=0, max=1)` and `histc(..., min=-1)` took
0.03 ms. The `scatter_add_` rewrite below took 0.2 ms with no sync.

## Example
```python
counts = torch.bincount(request_ids, minlength=num_reqs)  # SL204: two host waits
```

Use instead (vLLM's `make_kv_sharing_fast_prefill_common_attn_metadata` does this):
```python
counts = torch.zeros(num_reqs, dtype=torch.int64, device=request_ids.device).scatter_add_(
    0, request_ids.long(), torch.ones_like(request_ids, dtype=torch.int64))
```

For `histc`, pass the range: `torch.histc(x, bins=b, min=lo, max=hi)`.

## Fix safety
Unsafe, offered for `bincount` with `minlength=n` when the input (and the
weights) are plain names or attribute chains, since the fix repeats them. The
result equals `bincount`'s only when every value is in `[0, n)`: a value `>= n`
or a negative one is a device-side assert that poisons the CUDA context, where
`bincount` returns a longer result or raises. With `weights=w` the result has
`w`'s dtype: `bincount` returns float32 for float32 weights (as the fix does)
but float64 for any other weights dtype, and float sums may round differently
(both add with atomics). Without `minlength` there is no known length and no fix.

## When to ignore
Outside the hot path, or when the longer output for out-of-range values is the
point. Mark intentional uses with `# noqa: SL204`.
"""

from __future__ import annotations

import random
from typing import Any

import libcst as cst

from sync_lint.rulekit import Example, Fix, Rule, dotted_name, get_arg, method_receiver

_OPS = frozenset({"bincount", "histc"})


# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL204_BEFORE = """\
import torch


def run(values, n):
    x = torch.zeros((values.shape[0],), dtype=torch.int64, device=values.device)
    x.copy_(values)
    return torch.bincount(x, minlength=n)
"""


class Bincount(Rule):
    code = "SL204"
    name = "bincount"
    summary = "`bincount`, or `histc` without an explicit range, reads the data's min/max on the host"
    triggers = ("bincount", "histc")
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example("import torch\nx = torch.randint(0, 9, (8,), device='cuda')\nc = torch.bincount(x, minlength=9)\n", (3,)),
        Example(
            "import torch\nx = torch.rand(8, device='cuda')\nh = torch.histc(x)\ng = torch.histc(x, min=0, max=1)\n", (3,)
        ),
        Example("import numpy as np\na = np.ones(3, dtype=int)\nc = np.bincount(a)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.imports.resolve(node.func)
        if qual is not None:
            op = qual[len("torch."):] if qual.startswith("torch.") else None
            arg = get_arg(node, "input", 0)
            tensor, offset = (arg.value if arg is not None else None), 1
        else:
            tensor, offset = method_receiver(node), 0
            op = node.func.attr.value if tensor is not None else None  # type: ignore[attr-defined]
        if op not in _OPS or tensor is None:
            return
        fact = self.gpu_fact(tensor)
        if fact is None:
            return
        if op == "bincount":
            self.report(
                node,
                "`bincount` on a GPU tensor blocks the host twice, even with `minlength`: PyTorch reads the "
                "minimum and the maximum on the host; count into a buffer of known length: "
                "`torch.zeros(n, dtype=torch.int64, device=x.device).scatter_add_(0, x, torch.ones_like(x))`",
                fact=fact,
                fix=self._fix(node, tensor, offset),
            )
        elif _histc_reads_range(get_arg(node, "min", offset + 1), get_arg(node, "max", offset + 2)):
            self.report(
                node,
                "`histc` without an explicit range blocks the host twice: with `min == max` PyTorch reads the "
                "data's min and max on the host; pass `min=` and `max=`",
                fact=fact,
            )

    def _fix(self, node: cst.Call, tensor: cst.BaseExpression, offset: int) -> Fix | None:
        minlength = get_arg(node, "minlength", offset + 1)
        weights = get_arg(node, "weights", offset)
        if minlength is None or _number(minlength.value) == 0 or any(a.star for a in node.args):
            return None
        if "\n" in self.ctx.code(node):
            return None  # the rewrite is written on one line
        if weights is not None and _is_none(weights.value):
            weights = None
        x = dotted_name(tensor)
        w = dotted_name(weights.value) if weights is not None else None
        if x is None or (weights is not None and w is None):
            return None  # the fix repeats them: only names are safe to repeat
        torch = self.ctx.imports.local_name("torch")
        n = self.ctx.code(minlength.value)
        if w is None:
            new = (
                f"{torch}.zeros({n}, dtype={torch}.int64, device={x}.device)"
                f".scatter_add_(0, {x}.long(), {torch}.ones_like({x}, dtype={torch}.int64))"
            )
            caveat = ""
        else:
            new = f"{torch}.zeros({n}, dtype={w}.dtype, device={x}.device).scatter_add_(0, {x}.long(), {w})"
            caveat = (
                f"; the result has `{w}`'s dtype, which is `bincount`'s only for float32 weights "
                "(it returns float64 for any other), and float sums may round differently"
            )
        return Fix(
            "unsafe",
            f"Count with `scatter_add_` into a length-{n} buffer: equal to `bincount` only when every value is in "
            f"[0, {n}); an out-of-range or negative value becomes a device-side assert{caveat}",
            (self.replace(node, new),),
            needs_imports=("torch",),
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _sl204(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            n_bins = rng.choice([1, 4, 64])
            size = kit.SIZES[trial % len(kit.SIZES)]
            return {"values": kit.values(rng, size, "int64", device, 0, n_bins), "n": n_bins}

        def _sl204_broken(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            return {"values": kit.values(rng, 8, "int64", device, 0, 10), "n": 4}  # values reach past n

        return [
            kit.Case("SL204", "bincount-minlength", SL204_BEFORE, _sl204, unsafe=True,
                 precondition="every value is in [0, minlength)", broken=_sl204_broken, broken_asserts_on_cuda=True),
        ]
def _number(expr: cst.BaseExpression) -> float | None:
    """The value of a numeric literal (`3`, `-1.5`), else None."""
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        inner = _number(expr.expression)
        return -inner if inner is not None else None
    if isinstance(expr, (cst.Integer, cst.Float)):
        return float(expr.evaluated_value)
    return None


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _histc_reads_range(low: cst.Arg | None, high: cst.Arg | None) -> bool:
    """Whether `min == max` is certain, given the defaults `min=max=0`."""
    lo = _number(low.value) if low is not None else 0.0
    hi = _number(high.value) if high is not None else 0.0
    return lo is not None and lo == hi
