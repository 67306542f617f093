"""What a rule's verification cases are made of: the `Case` type and seeded input makers.

A rule with a fix carries its own cases (`Rule.verification_cases`), built from this
kit; `runtime/cases.py` collects them. Each case's `before` is a module defining
`run(**inputs)`, written the way the linter must see it (tensors created with
`device=`, `_cpu` mirrors named as such), so the real fixer rewrites it; the after
code is never written by hand. Inputs are seeded and cover sizes 0 and 1, several
dtypes and negative indices. torch is imported only when inputs are made.
"""

from __future__ import annotations

import random
from typing import Any

from sync_lint.runtime.verify import Case, InputMaker

INT_DTYPES = ("int32", "int64")
FLOAT_DTYPES = ("float16", "bfloat16", "float32")
SIZES = (0, 1, 2, 7, 1000)

__all__ = ["Case", "FLOAT_DTYPES", "INT_DTYPES", "InputMaker", "SIZES", "torch", "values"]


def torch() -> Any:
    import torch as module

    return module


def values(rng: random.Random, n: int, dtype_name: str, device: str, low: int = -50, high: int = 50) -> Any:
    """`n` seeded random values of `dtype_name` on `device`."""
    module = torch()
    dtype = getattr(module, dtype_name)
    gen = module.Generator().manual_seed(rng.randrange(2**31))
    if dtype.is_floating_point:
        data = module.randn(n, generator=gen) * 10
    else:
        data = module.randint(low, high, (n,), generator=gen)
    return data.to(dtype).to(device)
