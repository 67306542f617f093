"""# SL301 `scalar-index-assign`: a Python scalar stored into one element of a GPU tensor

## What it does
Flags `t[i] = v` and `t[i, j] = v` where `t` is a GPU tensor, every index is a
Python integer, the selected view is 0-dim (as many integer indices as `t` has
dimensions), and `v` is a Python number (`0`, `-1.5`, `True`, `n - 1`, `x.item()`)
or a 0-dim CPU tensor (`torch.tensor(1.0)`).

## Why is this bad
For a CUDA destination, `THPVariable_setitem` turns the Python value into a 0-dim
**CPU** tensor (`valueToTensor(..., at::Device(kCPU))` in
`torch/csrc/autograd/python_variable_indexing.cpp`). `at::indexing::copy_to`
(`aten/src/ATen/TensorIndexing.h`) then sees two 0-dim tensors of equal size and
calls `dst.copy_(src)`: a blocking copy from pageable memory that ends in
`at::cuda::memcpy_and_sync`. The host waits for every kernel queued before it.
Measured on an H100 (torch 2.11) with 41 ms of GPU work queued: `t[0] = 7`,
`t[-1] = 7` and `t[0] = 1.5` each blocked the host for 40.5 ms, while
`t[:1] = 7`, `t[0].fill_(7)` and the 2-D row store `t2[0] = 7` took about 0.2 ms
(a view that is not 0-dim goes through `fill_`, which reads the CPU value on the
CPU). `t[0] = v0` with `v0` a 0-dim CUDA tensor is a device-to-device copy and
does not sync; `t[0] = torch.tensor(1.0)` (a CPU tensor) does.

Inside CUDA-graph capture the same store raises ("Cannot copy between CPU and
CUDA tensors during CUDA graph capture unless the CPU tensor is pinned").

How we match: the rank must be known for the view to be known 0-dim. When the
linter does not know `t`'s rank it stays quiet, except under `--strict`, which
reports the store anyway (for a row the store does not sync).

## Example
```python
query_start_loc = torch.empty(n + 1, dtype=torch.int32, device=device)
query_start_loc[0] = 0  # SL301: pageable copy + stream sync
```

Use instead:
```python
query_start_loc[0].fill_(0)  # no sync; keeps negative indices and the IndexError
```

`t[:1] = 0` is also sync-free (vLLM's `decode_query_start_loc[:1].fill_(0)`), but
on an empty tensor it is a silent no-op where `t[0] = 0` raises, and `t[-1:]` is
needed for `t[-1]`.

## Fix safety
`t[i] = v` becomes `t[i].fill_(v)`: the same value in `t`'s dtype (checked on an
H100 for int64 with 1.7, int32, bool, bfloat16), negative indices kept, the same
`IndexError` on an empty tensor; no sync (0.03 ms against 38 ms). One difference
was measured: a value that overflows a float16/bfloat16 tensor is stored as inf
by `t[i] = v` but makes `fill_` raise. So the fix is safe when the tensor is known
to hold integers or bools (both raise on overflow) or `v` is a literal within
float16 range (|v| <= 65504), and unsafe otherwise, with that precondition. It is
also unsafe when `v` is a CPU tensor (`fill_` reads it with `.item()`, so
CUDA-graph capture bakes the value into the graph) and, under `--strict`, when
`t` is not known to be a torch tensor. Only single-target assignments are fixed
(not `a = t[0] = 0`).

## Which torch releases sync
Every release up to and including 2.14.1; 2.15.0 is the first without the sync,
so the rule is off when `target-torch-version` is 2.15 or later. The change is
PyTorch PR #188267 ("Dispatch `index_put_` to `fill_` for scalar values"),
reverted, reapplied as #189105, reverted again, and relanded as #189303 after
the 2.14 release branch was cut (August 2026); the 2.14 release notes do not
list it.

Evidence, read from the released wheels (`torch/version.py`'s `git_version` is the
commit each was built from; `torch/include/ATen/TensorIndexing.h` ships in every
wheel; `python_variable_indexing.cpp` does not, so the Python binding is read
from the `at::indexing::set_item` symbols compiled into `libtorch_python`):

| release | commit built | `TensorIndexing.h` and `libtorch_python` |
|---|---|---|
| 2.12.1 | `7269437d655783a26cba32aa88195b741ff496aa` | only `copy_to(const Tensor&, const Tensor&)`, which for equal sizes calls `dst.copy_(src)`; `set_item` takes a `Tensor` value; one `set_item(..., Tensor const&, bool)` symbol |
| 2.13.0 | `cf30153c4c131c8164ee7798e5022d810682e2cb` | the same (`copy_to` l.420, `dst.copy_(src)` l.440, `set_item` l.717) |
| 2.14.0 | `08187d9e0fba026dc8217405802ab5381dc88d90` | the same (`dst.copy_(src)` l.439) |
| 2.14.1 | `5c4886908584029761b579af026dcfb627c84070` | `TensorIndexing.h` byte-identical to 2.14.0 |
| 2.15.0 | `d0f2af8b66b20da4baa50644c0cd3f887a2eae2e` | new `copy_to(const Tensor& dst, const Scalar& src) { dst.fill_(src); }` (l.500) and `template <typename T> set_item` (l.855) for `Tensor` or `Scalar` values; `libtorch_python` instantiates `set_item<c10::Scalar>` |

So up to 2.14.1 a Python scalar reaches `set_item` only as a 0-dim CPU tensor and
`t[0] = 7` is `t.select(0, 0).copy_(cpu_scalar)`, the blocking copy measured on
2.11; from 2.15.0 it is `fill_` with a `Scalar`. Limits: the wheels' commits were
not compared with the release tags (the PyTorch repository was too large to
fetch), 2.13.0 was checked again against the installed `2.13.0+cpu` wheel, and
2.15's behaviour is read from its code, not measured on a GPU. The newest release
checked is 2.15.0: for a newer target the rule stays off (2.15 removed the sync)
and one line on stderr says that releases after 2.15.0 were not checked.

## When to ignore
Outside the hot path, mark intentional stores with `# noqa: SL301`.
"""

from __future__ import annotations

import random
from typing import Any

import libcst as cst

from sync_lint.rulekit import (
    Example,
    Fact,
    Fix,
    Rule,
    abbreviate,
    cannot_overflow,
    is_cpu_scalar_tensor,
    is_python_number,
)

# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL301_HALF_UNSAFE = """\
import torch


def run(values, i: int, v: float):
    t = torch.zeros((values.shape[0],), dtype=torch.float16, device=values.device)
    t.copy_(values)
    t[i] = v
    return t
"""


# The dtype is written into the snippet: the fix is safe for integer tensors, and for
# floating tensors only with a literal in range (fill_ raises on overflow where the
# setitem stores inf), so each dtype is its own case.
def _sl301_source(dtype: str, value: str, rank: int) -> str:
    shape = "(values.shape[0],)" if rank == 1 else "(values.shape[0], values.shape[1])"
    index = "i" if rank == 1 else "i, j"
    params = "values, i: int, v: int" if rank == 1 else "values, i: int, j: int, v: int"
    return f"""\
import torch


def run({params}):
    t = torch.zeros({shape}, dtype=torch.{dtype}, device=values.device)
    t.copy_(values)
    t[{index}] = {value}
    return t
"""


class ScalarIndexAssign(Rule):
    code = "SL301"
    name = "scalar-index-assign"
    summary = "`t[i] = <Python scalar>` into a 0-dim view of a GPU tensor copies from pageable memory and waits"
    triggers = ("]=", "] =")
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    fixed_in_torch = "2.15"
    torch_checked_through = "2.15.0"
    syncs_in = "all releases up to 2.14.1 (measured on 2.11.0+cu130, H100; read in the 2.12.1 to 2.15.0 wheels)"
    examples = (
        Example("import torch\nt = torch.zeros(8, device='cuda')\nt[0] = 1\n", (3,)),
        Example("import torch\nt = torch.zeros(8, 4, device='cuda')\nt[0, 1] = 1.5\nt[0] = 7\n", (3,)),
        Example("import torch\nt = torch.zeros(8, device='cuda')\nt[:1] = 1\n"),
        Example("import numpy as np\narr = np.zeros(8)\narr[0] = 1\n"),
    )

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) != 1 or not isinstance(node.targets[0].target, cst.Subscript):
            return
        target = node.targets[0].target
        fact = self.gpu_fact(target.value)
        if fact is None or not self._selects_one_element(target, fact):
            return
        if is_python_number(self.ctx, node.value):
            what, caveat = "a Python scalar", None
            if not cannot_overflow(node.value, fact.dtype):
                caveat = "the value must fit the tensor's dtype: on overflow `fill_` raises where the store writes inf"
        elif is_cpu_scalar_tensor(self.ctx, node.value):
            what = "a CPU tensor"
            caveat = "`fill_` reads the CPU value with `.item()`, so CUDA-graph capture bakes it into the graph"
        else:
            return
        if caveat is None and not fact.is_tensor:
            caveat = "the target is only assumed to be a torch tensor (--strict)"
        target_code, value_code = self.ctx.text(target), self.ctx.text(node.value)
        self.report(
            node,
            f"`{abbreviate(target_code)} = ...` stores {what} into one element of a GPU tensor: PyTorch "
            f"copies it from pageable host memory and waits for the GPU; use `.fill_(...)` on the element",
            fact=fact,
            fix=Fix(
                "safe" if caveat is None else "unsafe",
                f"Use `{abbreviate(target_code)}.fill_(...)`" + (f": {caveat}" if caveat else ""),
                (self.replace(node, f"{target_code}.fill_({value_code})"),),
            ),
        )

    def _selects_one_element(self, target: cst.Subscript, fact: Fact) -> bool:
        """Every index is a Python int and there is one per dimension: the view is 0-dim."""
        for element in target.slice:
            index = element.slice
            if not isinstance(index, cst.Index) or index.star is not None:
                return False
            if not is_python_number(self.ctx, index.value):
                return False
        if fact.ndim is None:
            return self.ctx.settings.strict
        return fact.ndim == len(target.slice)

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _sl301_inputs(dtype: str, rank: int) -> kit.InputMaker:
            def make(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
                if rank == 1:
                    n = kit.SIZES[trial % len(kit.SIZES)]
                    values = kit.values(rng, n, dtype, device)
                    i = rng.randrange(-n, n) if n else rng.choice([0, -1])  # n == 0: IndexError both ways
                    return {"values": values, "i": i, "v": rng.randrange(-1000, 1000)}
                rows, cols = rng.choice([(1, 1), (3, 4), (0, 2), (64, 3)])
                values = kit.values(rng, rows * cols, dtype, device).reshape(rows, cols)
                i = rng.randrange(-rows, rows) if rows else 0
                return {"values": values, "i": i, "j": rng.randrange(-cols, cols), "v": rng.randrange(-1000, 1000)}

            return make

        def _half_in_range(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            n = kit.SIZES[1:][trial % 4]
            return {"values": kit.values(rng, n, "float16", device), "i": rng.randrange(-n, n),
                    "v": rng.choice([rng.uniform(-65504, 65504), 0.5, -0.0, 65504.0])}

        def _half_overflow(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            return {"values": kit.values(rng, 4, "float16", device), "i": 1, "v": 1e6}

        return [
            *[kit.Case("SL301", f"index-assign-1d-{dtype}", _sl301_source(dtype, "v", 1), _sl301_inputs(dtype, 1))
              for dtype in kit.INT_DTYPES],
            kit.Case("SL301", "index-assign-2d-int64", _sl301_source("int64", "v", 2), _sl301_inputs("int64", 2)),
            *[kit.Case("SL301", f"index-assign-literal-{dtype}", _sl301_source(dtype, "-3", 1), _sl301_inputs(dtype, 1))
              for dtype in kit.FLOAT_DTYPES],
            kit.Case("SL301", "index-assign-float16-variable", SL301_HALF_UNSAFE, _half_in_range, unsafe=True,
                 precondition="the value fits the tensor's dtype (fill_ raises on overflow; setitem stores inf)",
                 broken=_half_overflow, broken_shows_only_on_cuda=True),
        ]
