"""# SL205 `repeat-interleave-without-output-size`: `repeat_interleave` with GPU repeats and no `output_size`

## What it does
Flags `torch.repeat_interleave(x, repeats)`, `x.repeat_interleave(repeats)` and
`torch.repeat_interleave(repeats)` when `repeats` is a GPU tensor (0-dim
included) and no `output_size=` is given. Integer repeats
(`x.repeat_interleave(2)`) and calls with `output_size=` are not flagged.

## Why is this bad
The output length is `repeats.sum()`, known only on the GPU.
`repeat_interleave_common` (`aten/src/ATen/native/Repeat.h`) reads it with
`cumsum[-1].item<int64_t>()` and checks `(repeats >= 0).all().item<uint8_t>()`:
two host waits. With `output_size` it skips both. Measured on an H100
(torch 2.11) with 41 ms of GPU work queued: `torch.repeat_interleave(x, reps)`
blocked the host for 40.9 ms (2 syncs), `torch.repeat_interleave(reps)` 40.8 ms;
with `output_size=` 0.2 ms, and `repeat_interleave(x, 2)` 0.04 ms.

## Example
```python
token_req = torch.arange(num_reqs, device=device).repeat_interleave(num_tokens)  # SL205
```

Use instead, when the total is known on the host (here from the CPU copy the
scheduler already has):
```python
token_req = torch.arange(num_reqs, device=device).repeat_interleave(
    num_tokens, output_size=int(num_tokens_cpu.sum()))
```

## Fix safety
Unsafe, and only offered when a host mirror of the repeats provably exists:
for `repeats` (or `repeats_gpu`, `repeats_cuda`, `repeats_dev`) a `repeats_cpu`
that the code binds at that point to a CPU tensor (the same mirrors SL101-SL104's
fixes read). The fix adds `output_size=int(repeats_cpu.sum())`, which reads CPU
memory only. It is exact
when the copy holds the same values as the GPU tensor (a copy that lags behind
gives a wrong size) and `repeats` has one entry per repeated element (a single
broadcast repeat multiplies the total by the input's size). A wrong
`output_size` is a device-side assert that poisons the CUDA context, not a wrong
answer, so the fix never guesses.

## When to ignore
When no host-side total exists and computing one would itself sync. Mark
intentional uses with `# noqa: SL205`.
"""

from __future__ import annotations

import random
from typing import Any

import libcst as cst

from sync_lint.rulekit import (
    Example,
    Fix,
    Rule,
    dotted_name,
    get_arg,
    keyword_edit,
    method_receiver,
    positional_args,
)

# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL205_BEFORE = """\
import torch


def run(values, repeats, reps_cpu):
    x = torch.zeros((values.shape[0],), dtype=values.dtype, device=values.device)
    x.copy_(values)
    reps = torch.zeros((repeats.shape[0],), dtype=torch.int64, device=values.device)
    reps.copy_(repeats)
    return torch.repeat_interleave(x, reps)
"""


class RepeatInterleaveWithoutOutputSize(Rule):
    code = "SL205"
    name = "repeat-interleave-without-output-size"
    summary = "`repeat_interleave` with GPU repeats and no `output_size` reads the total on the host"
    triggers = ("repeat_interleave",)
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example("import torch\nr = torch.randint(0, 3, (8,), device='cuda')\ny = torch.repeat_interleave(r)\n", (3,)),
        Example("import torch\nx = torch.rand(8, device='cuda')\ny = x.repeat_interleave(2)\n"),
        Example(
            "import torch\nr = torch.randint(0, 3, (8,), device='cuda')\n"
            "y = torch.repeat_interleave(r, output_size=24)\n"
        ),
    )

    def visit_Call(self, node: cst.Call) -> None:
        repeats = self._repeats(node)
        if repeats is None:
            return
        output_size = get_arg(node, "output_size")
        if output_size is not None and not (isinstance(output_size.value, cst.Name) and output_size.value.value == "None"):
            return  # `output_size=None` is the default
        fact = self.gpu_fact(repeats)
        if fact is None:
            return
        self.report(
            node,
            "`repeat_interleave` with GPU repeats blocks the host twice: PyTorch reads the total "
            "(`repeats.sum()`) and checks for negatives on the host; pass `output_size=` computed on the host",
            fact=fact,
            fix=self._fix(node, repeats, fact.ndim),
        )

    def _repeats(self, node: cst.Call) -> cst.BaseExpression | None:
        qual = self.ctx.imports.resolve(node.func)
        if qual is not None:
            if qual != "torch.repeat_interleave":
                return None
            arg = get_arg(node, "repeats", 1)
            if arg is None and len(positional_args(node)) == 1:
                arg = get_arg(node, "input", 0)  # `torch.repeat_interleave(repeats)`
            return arg.value if arg is not None else None
        receiver = method_receiver(node)
        if receiver is None or node.func.attr.value != "repeat_interleave":  # type: ignore[attr-defined]
            return None
        arg = get_arg(node, "repeats", 0)
        return arg.value if arg is not None else None

    def _fix(self, node: cst.Call, repeats: cst.BaseExpression, ndim: int | None) -> Fix | None:
        name = dotted_name(repeats)
        mirror = self.ctx.mirrors.mirror_of(name) if name is not None else None
        if mirror is None or ndim == 0:
            return None
        total = f"int({mirror}.sum())"
        edit = keyword_edit(self.ctx, node, "output_size", total)
        return Fix(
            "unsafe",
            f"Pass `output_size={total}`: exact only when `{mirror}` holds the same values as "
            f"`{self.ctx.code(repeats)}` and gives one repeat per element; a wrong size is a device-side assert",
            (edit,),
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _repeats(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            n = rng.choice([1, 4, 100])
            dtype = (kit.INT_DTYPES + kit.FLOAT_DTYPES)[trial % 5]
            reps = torch.tensor([rng.randrange(0, 4) for _ in range(n)], dtype=torch.int64)
            return {"values": kit.values(rng, n, dtype, device), "repeats": reps.to(device), "reps_cpu": reps}

        def _stale_repeats(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            reps = torch.tensor([1, 2, 3])
            return {"values": kit.values(rng, 3, "float32", device), "repeats": reps.to(device), "reps_cpu": reps + 1}

        return [
            kit.Case("SL205", "repeat-interleave-mirror", SL205_BEFORE, _repeats, unsafe=True,
                 precondition="the `_cpu` mirror holds the same repeats", broken=_stale_repeats,
                 broken_asserts_on_cuda=True),
        ]
