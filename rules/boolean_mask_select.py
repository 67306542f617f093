"""# SL202 `boolean-mask-select`: selecting or storing through a GPU boolean mask

## What it does
Flags, with `mask` a GPU bool tensor (a comparison such as `x > 0`, or a tensor
known to be `bool`):

- reading `x[mask]` (also `x[:, mask]`), `torch.masked_select(x, mask)` and
  `x.masked_select(mask)`;
- storing a GPU tensor through the mask: `t[mask] = vals` and `t[mask] = v0`
  (a 0-dim GPU tensor), and `t[mask] += v`;
- `t.masked_fill_(mask, v0)` / `t.masked_fill(mask, v0)` with `v0` a GPU tensor.

Not flagged, because they do not sync (measured): `t[mask] = 0` and
`t.masked_fill_(mask, 0)` with a Python number, `t[mask] = torch.tensor(1.0)`
(a 0-dim CPU value), `x[mask_cpu]` with a CPU mask, and integer index tensors.

## Why is this bad
A boolean index becomes integer indices through `nonzero` (`expandTensors` in
`aten/src/ATen/native/IndexingUtils.h`), whose output size only the GPU knows:
`nonzero_cuda_out_impl` copies the count to pinned memory with
`at::cuda::memcpy_and_sync` and the host waits for all queued work. Measured on
an H100 (torch 2.11) with 41 ms of GPU work queued: `x[mask]` blocked the host for
40.7 ms and `masked_select` for 40.8 ms; `t[mask] = vals` and `t[mask] = v0`
blocked (1 sync each) and `t[mask] += 1` twice. `t[mask] = 0` dispatches to
`masked_fill_` with the value read on the CPU (`canDispatchToMaskedFill`), 0.18 ms;
`masked_fill_` with a 0-dim CUDA value calls `value.item()`
(`masked_fill__cuda` in `aten/src/ATen/native/cuda/Indexing.cu`). A CPU mask on
a CUDA tensor is made non-blocking by PyTorch PR #156384 (in 2.11: measured, no
sync).

## Example
```python
valid = positions < seq_len
kept = hidden[valid]           # SL202: nonzero + wait
scores[valid] = new_scores     # SL202: index_put -> nonzero
```

Use instead:
```python
kept = torch.where(valid[:, None], hidden, 0)    # full shape, no sync
scores.masked_scatter_(valid, new_scores)        # when new_scores has one value per True
scores = torch.where(valid, v0, scores)          # a 0-dim GPU value
```

When the mask is known on the host (built from CPU data), keep it on the CPU:
`x[mask_cpu]` does not wait for the GPU.

## Fix safety
No automatic fix: the sync-free forms change the result's shape (`torch.where`
keeps every element) or need a bound (`nonzero_static`), or are equivalent
only under conditions the linter cannot check (`masked_scatter_` needs exactly
one source value per `True`; `torch.where(mask, v0, t, out=t)` needs `v0` and `t`
to have the same dtype).

## When to ignore
When the selected size really is data-dependent and the result feeds Python
(its length decides what runs next), the sync is inherent; mark it with
`# noqa: SL202` outside the hot path.
"""

from __future__ import annotations

import libcst as cst

from sync_lint.rulekit import Device, Example, Fact, Rule, get_arg, method_receiver

_MASKED_FILL = frozenset({"masked_fill", "masked_fill_"})


class BooleanMaskSelect(Rule):
    code = "SL202"
    name = "boolean-mask-select"
    summary = "Selecting or storing a GPU tensor through a GPU boolean mask waits for `nonzero`"
    triggers = ("[", "masked_select", "masked_fill")
    needs_gpu_evidence = True
    examples = (
        Example("import torch\nx = torch.rand(8, device='cuda')\ny = x[x > 0.5]\n", (3,)),
        Example("import torch\nx = torch.rand(8, device='cuda')\nx[x > 0.5] = 0\n"),
        Example(
            "import torch\nx = torch.rand(8, device='cuda')\nv = torch.rand(8, device='cuda')\nx[x > 0.5] = v[:4]\n",
            (4,),
        ),
        Example("import torch\nx = torch.rand(8)\ny = x[x > 0.5]\n"),
    )

    def __init__(self) -> None:
        self._assigned: dict[int, cst.BaseExpression] = {}  # subscript target -> the value stored
        self._augmented: dict[int, str] = {}  # subscript target of `t[m] op= v` -> op

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            if isinstance(target.target, cst.Subscript):
                self._assigned[id(target.target)] = node.value

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.target, cst.Subscript):
            self._augmented[id(node.target)] = self.ctx.code(node.operator).strip()[:-1]

    def visit_Subscript(self, node: cst.Subscript) -> None:
        mask = self._gpu_mask(node)
        if mask is None:
            return
        base = self.ctx.devices.fact(node.value)
        if base.is_cpu or base.device is Device.NOT_TENSOR:
            return  # a GPU mask on a CPU tensor is an error, not a sync
        op = self._augmented.get(id(node))
        if op is not None:
            self.report(
                node,
                f"`t[mask] {op}= v` with a GPU bool mask reads and writes through `nonzero`: two host waits; "
                f"update the full tensor instead, e.g. `torch.where(mask, t {op} v, t, out=t)`",
                fact=mask,
            )
        elif not self.ctx.marks.is_store(node):
            self.report(
                node,
                "indexing with a GPU bool mask blocks the host: the mask becomes indices through `nonzero`, "
                "whose size PyTorch copies to the host and waits for; keep the full shape "
                "(`torch.where(mask, x, fill)`), use `torch.nonzero_static` with a bound, or keep a host-known "
                "mask on the CPU",
                fact=mask,
            )
        else:
            value = self._assigned.get(id(node))
            value_fact = self.gpu_fact(value) if value is not None else None
            if value_fact is not None:
                self.report(node, _store_message(value_fact), fact=mask)

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.imports.resolve(node.func)
        receiver = method_receiver(node) if qual is None else None
        method = node.func.attr.value if receiver is not None else None  # type: ignore[attr-defined]
        if qual == "torch.masked_select" or method == "masked_select":
            offset = 0 if receiver is not None else 1
            tensor = receiver if receiver is not None else _value(get_arg(node, "input", 0))
            fact = self._first_gpu(tensor, _value(get_arg(node, "mask", offset)))
            if fact is not None:
                self.report(
                    node,
                    "`masked_select` on the GPU blocks the host: its output size is the mask's count, computed "
                    "with `nonzero` and copied to the host; keep the full shape with `torch.where(mask, x, fill)` "
                    "or use `torch.nonzero_static` with a bound",
                    fact=fact,
                )
        elif method in _MASKED_FILL or qual == "torch.masked_fill":
            offset = 0 if receiver is not None else 1
            value = _value(get_arg(node, "value", offset + 1))
            fact = self.gpu_fact(value) if value is not None else None
            if fact is not None:
                self.report(
                    node,
                    "`masked_fill` with a GPU tensor value reads the value on the host (`value.item()` in "
                    "`masked_fill__cuda`); use `torch.where(mask, value, t)` (for the in-place form, "
                    "`torch.where(mask, value, t, out=t)`) or pass a Python number",
                    fact=fact,
                )

    def _gpu_mask(self, node: cst.Subscript) -> Fact | None:
        for element in node.slice:
            if isinstance(element.slice, cst.Index):
                fact = self.gpu_fact(element.slice.value)
                if fact is not None and fact.dtype == "bool":
                    return fact
        return None

    def _first_gpu(self, *exprs: cst.BaseExpression | None) -> Fact | None:
        for expr in exprs:
            fact = self.gpu_fact(expr) if expr is not None else None
            if fact is not None:
                return fact
        return None


def _value(arg: cst.Arg | None) -> cst.BaseExpression | None:
    return arg.value if arg is not None else None


def _store_message(value: Fact) -> str:
    head = "storing a GPU tensor through a GPU bool mask blocks the host (`index_put_` runs `nonzero`); "
    if value.ndim == 0:
        return head + "for a 0-dim value use `torch.where(mask, v, t, out=t)`"
    if value.ndim is None:
        return head + (
            "use `t.masked_scatter_(mask, vals)` (one value per True), or for a 0-dim value "
            "`torch.where(mask, v, t, out=t)`"
        )
    return head + "use `t.masked_scatter_(mask, vals)` (one value per True)"
