"""# SL203 `unique`: `unique`, `unique_consecutive`, `isin` or `mode` on a GPU tensor

## What it does
Flags, on GPU tensors: `torch.unique(x)`, `x.unique()`,
`torch.unique_consecutive(x)` and `x.unique_consecutive()`. With `--strict`
it also flags `torch.isin(elements, test_elements)` (both tensors) and
`x.mode()` / `torch.mode(x)`, which sync only for some sizes.

## Why is this bad
`unique` returns as many values as there are distinct ones, which only the GPU
knows: the CUDA implementation reads the count with
`num_out_tensor.item()` ("synchronization happens here", `aten/src/ATen/native/cuda/Unique*.cu`).
Measured on an H100 (torch 2.11) with 41 ms of GPU work queued: `torch.unique(x)`
blocked the host for 40.6 ms; `x.unique()`, `unique(sorted=False)`,
`unique(return_counts=True)` and `unique_consecutive` block the same way.

Two ops sync only for some sizes, which the linter cannot see, so this rule
reports them only with `--strict`:

- `torch.isin(elements, test_elements)` (`isin_Tensor_Tensor_out` in
  `aten/src/ATen/native/TensorCompare.cpp`) compares directly when
  `test_elements` has fewer than `10 * elements.numel() ** 0.145` values, and
  otherwise sorts after calling `unique` (3 syncs; 1 with `assume_unique=True`).
  Measured with 2**20 elements: 60 test values, no sync; 74 or more, blocked.
  A Python number as `test_elements` is an `eq` and is not flagged.
- `x.mode(dim)` uses a fused kernel when the reduced dimension has at most 2048
  elements and otherwise a per-slice path that waits once per slice
  (`mode_kernel_impl` in `aten/src/ATen/native/cuda/TensorModeKernel.cpp`).
  Measured: 64 x 1025, no sync; 4 x 4096, 4 syncs; 2**20 elements, 1.

## Example
```python
uniq = torch.unique(token_ids)  # SL203: waits for the count
```

If the values lie in a known range `[0, K)`, build a dense result of known size
instead: presence with
`torch.zeros(K, dtype=torch.bool, device=d).index_fill_(0, token_ids, True)`,
counts with `scatter_add_`. For a small `isin` test set, compare directly:
`(x.unsqueeze(-1) == test).any(-1)`.

## Fix safety
No automatic fix: the sync-free forms give a dense length-`K` vector instead of
a compact sorted list, a different shape.

## When to ignore
When the distinct values must be listed on the host anyway, the sync is
inherent; keep it out of the per-step hot path or mark it with `# noqa: SL203`.
Under `--strict`, an `isin` with a small test set (stop tokens, say) or a `mode`
over a short dimension does not sync: ignore those findings.
"""

from __future__ import annotations

import libcst as cst

from sync_lint.rulekit import Device, Example, Rule, get_arg, method_receiver

_ALWAYS = frozenset({"unique", "unique_consecutive"})
_SIZE_DEPENDENT = frozenset({"isin", "mode"})  # reported only with --strict


class Unique(Rule):
    code = "SL203"
    name = "unique"
    summary = "`unique` or `unique_consecutive` on a GPU tensor (with --strict: `isin`, `mode`) waits for the GPU"
    triggers = ("unique", "isin", "mode(")
    needs_gpu_evidence = True
    examples = (
        Example(
            "import torch\nx = torch.randint(0, 9, (8,), device='cuda')\nu = torch.unique(x)\nv = x.unique()\n", (3, 4)
        ),
        Example("import torch\nx = torch.randint(0, 9, (8,), device='cuda')\nm = torch.isin(x, 3)\n"),
        Example("import numpy as np\na = np.ones(3)\nu = np.unique(a)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        op, tensor = self._op_and_input(node)
        if op is None or (op in _SIZE_DEPENDENT and not self.ctx.settings.strict):
            return
        if op == "isin":
            self._check_isin(node)
            return
        fact = self.gpu_fact(tensor) if tensor is not None else None
        if fact is None:
            return
        if op == "mode":
            message = (
                "`mode` on a GPU tensor may block the host: when the reduced dimension has more than 2048 "
                "elements PyTorch waits for the GPU once per slice"
            )
        else:
            message = (
                f"`{op}` on a GPU tensor blocks the host: the number of distinct values is copied to the host "
                "and waited for; if the values lie in a known range, build a dense result of known size "
                "(`index_fill_` / `scatter_add_` into a length-K buffer)"
            )
        self.report(node, message, fact=fact)

    def _op_and_input(self, node: cst.Call) -> tuple[str | None, cst.BaseExpression | None]:
        """`("unique", x)` for `torch.unique(x)` and `x.unique()`; `(None, None)` for other calls."""
        qual = self.ctx.imports.resolve(node.func)
        if qual is not None:
            op = qual[len("torch."):] if qual.startswith("torch.") else None
            arg = get_arg(node, "input", 0)
            tensor = arg.value if arg is not None else None
        else:
            tensor = method_receiver(node)
            op = node.func.attr.value if tensor is not None else None  # type: ignore[attr-defined]
            if op == "isin":
                return None, None  # `Tensor` has no `isin` method
        if op not in _ALWAYS and op not in _SIZE_DEPENDENT:
            return None, None
        return op, tensor

    def _check_isin(self, node: cst.Call) -> None:
        elements, test = get_arg(node, "elements", 0), get_arg(node, "test_elements", 1)
        if elements is None or test is None:
            return
        facts = [self.ctx.devices.fact(elements.value), self.ctx.devices.fact(test.value)]
        if any(f.device is Device.NOT_TENSOR for f in facts):
            return  # a Python number on either side is an elementwise `eq`
        fact = self.gpu_fact(elements.value) or self.gpu_fact(test.value)
        if fact is None:
            return
        self.report(
            node,
            "`torch.isin` on GPU tensors may block the host: when `test_elements` has at least "
            "10 * numel ** 0.145 values (74 for a million elements) PyTorch sorts and calls `unique`; "
            "for a small test set compare directly: `(x.unsqueeze(-1) == test).any(-1)`",
            fact=fact,
        )
