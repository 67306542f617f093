"""# SL207 `checked-op`: an op that checks the GPU's result on the host to raise errors

## What it does
Flags, when their tensor arguments are on the GPU:

- `torch.linalg.cholesky`, `inv`, `solve` and `lu_factor`, `torch.inverse`,
  `x.inverse()`, and the deprecated `torch.cholesky` / `x.cholesky()`: the ops
  with a sync-free `_ex` twin (`cholesky_ex`, `inv_ex`, `solve_ex`,
  `lu_factor_ex`);
- `torch.distributions` constructors (`Categorical(probs)`, `Normal(loc, scale)`,
  ...) with argument validation on: no `validate_args`, or `validate_args=True`
  / `None`, unless the file turned validation off earlier with
  `Distribution.set_default_validate_args(False)`;
- `torch.nn.utils.clip_grad_norm_(..., error_if_nonfinite=True)`.

## Why is this bad
Each raises a Python exception from a value computed on the GPU, so the host
must wait for it. The linalg ops end in `_linalg_check_errors`
(`aten/src/ATen/native/BatchLinearAlgebra.cpp`):
`if (C10_LIKELY(!infos.any().item<bool>())) return;`. Distributions check each
parameter with `if not torch._is_all_true(valid): raise ValueError`
(`torch/distributions/distribution.py`), and again on every `log_prob`;
`clip_grad_norm_` runs `if error_if_nonfinite and torch.logical_or(total_norm.isnan(), total_norm.isinf()):`
(`torch/nn/utils/clip_grad.py`). Measured on an H100 (torch 2.11) with 41 ms of
GPU work queued, each blocked the host for about 40 ms: `linalg.cholesky`,
`inv`, `solve`, `lu_factor`, `torch.inverse`, `Categorical(probs)`,
`Normal(loc, scale)` (2 syncs), `Normal(...).log_prob(x)`,
`clip_grad_norm_(error_if_nonfinite=True)`. Their sync-free forms took under
0.25 ms: the `_ex` ops, `Categorical(probs, validate_args=False)`, and
`clip_grad_norm_` with the default `error_if_nonfinite=False`.

Not flagged: ops without a sync-free twin (`linalg.eigh`, `svd`, `lstsq`,
`pinv`, `matrix_rank` also sync, measured) and `linalg.ldl_factor`, whose
`ldl_factor_ex` blocked the host too (47.8 ms measured, and `set_sync_debug_mode`
reported nothing).

## Example
```python
L = torch.linalg.cholesky(cov)             # SL207: checks `info` on the host
dist = Categorical(probs)                  # SL207: validates `probs` on the host
```

Use instead:
```python
L, info = torch.linalg.cholesky_ex(cov)    # check `info` later, or torch._assert_async(info == 0)
dist = Categorical(probs, validate_args=False)
```

## Fix safety
Unsafe, as each fix drops an error check. `torch.linalg.cholesky/inv/solve(...)`,
`torch.inverse(x)` and `x.inverse()` become `torch.linalg.<op>_ex(...)[0]`
(keeping the way the file names the module, e.g. `LA.inv_ex(x)[0]`): for a
singular or non-positive-definite input the result silently holds garbage
instead of raising; `info`, the `_ex` op's second output, says which. A
distribution gets `validate_args=False`: invalid parameters give NaNs instead
of a `ValueError`. `lu_factor` (which returns a named pair, where `lu_factor_ex`
returns three values), the deprecated `cholesky` and `clip_grad_norm_` get no fix.

## When to ignore
Outside the hot path (set-up, tests), or where the exception is the point.
`clip_grad_norm_`'s check reads the total norm, which lives with the gradients: on
the GPU when the parameters are GPU tensors or a module moved there, on the CPU
when they are CPU ones, and otherwise on the accelerator **by convention**, as a
training step clips the gradients of a model on one (the same convention that
makes `if not torch.isfinite(norm):` after a plain `clip_grad_norm_` an SL104).
Mark intentional uses with `# noqa: SL207`.
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
    is_true_literal,
    keyword_edit,
    method_receiver,
)

# Checked op -> its `_ex` twin, and whether `op(...)` -> `op_ex(...)[0]` is the whole fix.
_LINALG = {
    "torch.linalg.cholesky": ("cholesky_ex", True),
    "torch.linalg.inv": ("inv_ex", True),
    "torch.linalg.solve": ("solve_ex", True),
    "torch.linalg.lu_factor": ("lu_factor_ex", False),
    "torch.inverse": ("inv_ex", True),
    "torch.cholesky": ("cholesky_ex", False),
}
_METHODS = {"inverse": ("inv_ex", True), "cholesky": ("cholesky_ex", False)}
_CLIP = frozenset({"torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad.clip_grad_norm_"})
_NOT_DISTRIBUTIONS = frozenset({"transforms", "constraints", "constraint_registry", "kl"})


# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL207_BEFORE = """\
import torch


def run(values):
    a = torch.zeros((values.shape[0], values.shape[1]), dtype=values.dtype, device=values.device)
    a.copy_(values)
    return torch.linalg.inv(a)
"""


class CheckedOp(Rule):
    code = "SL207"
    name = "checked-op"
    summary = "An op that raises errors from GPU results (`linalg` without `_ex`, validating distributions) waits"
    triggers = ("linalg", "inverse", "cholesky", "distributions", "clip_grad_norm")
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    examples = (
        Example(
            "import torch\nA = torch.eye(3, device='cuda')\nB = torch.linalg.inv(A)\nC = torch.linalg.inv_ex(A)\n", (3,)
        ),
        Example(
            "import torch\nfrom torch.distributions import Categorical\np = torch.rand(4, device='cuda')\n"
            "d = Categorical(p)\ne = Categorical(p, validate_args=False)\n",
            (4,),
        ),
        Example("import torch\nA = torch.eye(3)\nB = torch.linalg.inv(A)\n"),
    )

    def __init__(self) -> None:
        self._validation_off = False

    def visit_Call(self, node: cst.Call) -> None:
        qual = self.ctx.imports.resolve(node.func)
        if qual is None:
            receiver = method_receiver(node)
            if receiver is not None and node.func.attr.value in _METHODS:  # type: ignore[attr-defined]
                self._check_method(node, receiver, node.func.attr.value)  # type: ignore[attr-defined]
        elif qual in _LINALG:
            self._check_linalg(node, qual)
        elif qual in _CLIP:
            self._check_clip(node)
        elif qual.endswith(".set_default_validate_args") and node.args:
            self._validation_off = isinstance(node.args[0].value, cst.Name) and node.args[0].value.value == "False"
        elif _is_distribution(qual):
            self._check_distribution(node)

    # --- linalg ------------------------------------------------------------------------
    def _check_linalg(self, node: cst.Call, qual: str) -> None:
        tensors = [a.value for a in node.args if a.keyword is None or a.keyword.value in ("A", "B", "input")]
        fact = next((f for f in map(self.gpu_fact, tensors) if f is not None), None)
        if fact is None:
            return
        twin, fixable = _LINALG[qual]
        fix = self._linalg_fix(node, twin, qual) if fixable else None
        self.report(node, _linalg_message(f"`{qual}`", twin), fact=fact, fix=fix)

    def _check_method(self, node: cst.Call, receiver: cst.BaseExpression, method: str) -> None:
        fact = self.gpu_fact(receiver)
        if fact is None:
            return
        twin, fixable = _METHODS[method]
        fix = None
        if fixable and not node.args and "\n" not in self.ctx.code(node):
            torch = self.ctx.imports.local_name("torch")
            fix = self._ex_fix(node, f"{torch}.linalg.{twin}({self.ctx.code(receiver)})[0]", twin)
        self.report(node, _linalg_message(f"`.{method}()`", twin), fact=fact, fix=fix)

    def _linalg_fix(self, node: cst.Call, twin: str, qual: str) -> Fix | None:
        if any(a.star or (a.keyword is not None and a.keyword.value in ("out", "input")) for a in node.args):
            return None  # `out=` would receive a tuple; `torch.inverse(input=)` is `A=` in `inv_ex`
        if "\n" in self.ctx.code(node):
            return None  # the rewrite is written on one line
        func = node.func
        if isinstance(func, cst.Attribute) and qual.startswith("torch.linalg."):
            prefix = self.ctx.code(func.value)  # `torch.linalg`, `LA`
        elif isinstance(func, cst.Attribute):
            prefix = f"{self.ctx.code(func.value)}.linalg"  # `torch.inverse` -> `torch.linalg`
        else:
            prefix = f"{self.ctx.imports.local_name('torch')}.linalg"  # `from torch.linalg import inv`
        call = node.with_changes(func=cst.parse_expression(f"{prefix}.{twin}"))
        return self._ex_fix(node, f"{self.ctx.code(call)}[0]", twin)

    def _ex_fix(self, node: cst.Call, new: str, twin: str) -> Fix:
        return Fix(
            "unsafe",
            f"Use `{twin}(...)[0]`: errors no longer raise; for a singular or non-positive-definite input the "
            "result holds garbage, and `info` (the second output) says so",
            (self.replace(node, new),),
            needs_imports=("torch",),
        )

    # --- clip_grad_norm_ --------------------------------------------------------------
    def _check_clip(self, node: cst.Call) -> None:
        flag = get_arg(node, "error_if_nonfinite", 3)
        params = get_arg(node, "parameters", 0)
        if flag is None or not is_true_literal(flag.value) or params is None:
            return
        # The host reads the norm, which is where the gradients are: the same fact as the norm it returns
        # (`gradient_norm`), so an `if not torch.isfinite(norm):` after a plain call and this flag agree.
        fact = self.gpu_fact(node)
        if fact is None:
            return
        self.report(
            node,
            "`clip_grad_norm_(..., error_if_nonfinite=True)` reads the total norm on the host to decide whether "
            "to raise; keep the default `error_if_nonfinite=False` (check `torch.isfinite(norm)` on the device)",
            fact=fact,
        )

    # --- distributions -----------------------------------------------------------------
    def _check_distribution(self, node: cst.Call) -> None:
        validate = get_arg(node, "validate_args")
        if validate is not None and not (is_true_literal(validate.value) or _is_none(validate.value)):
            return
        if validate is None and self._validation_off:
            return
        tensors = [a.value for a in node.args if a is not validate and not a.star]
        fact = next((f for f in map(self.gpu_fact, tensors) if f is not None), None)
        if fact is None:
            return
        fix = Fix(
            "unsafe",
            "Pass `validate_args=False`: invalid parameters or values then give NaNs or garbage instead of "
            "a `ValueError`",
            (keyword_edit(self.ctx, node, "validate_args", "False"),),
        )
        self.report(
            node,
            "a `torch.distributions` constructor with validation on checks its GPU parameters on the host "
            "(and `log_prob` checks its values); pass `validate_args=False`, or call "
            "`Distribution.set_default_validate_args(False)` once",
            fact=fact,
            fix=fix,
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _invertible(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            n = rng.choice([1, 2, 5, 32])
            gen = torch.Generator().manual_seed(rng.randrange(2**31))
            matrix = torch.eye(n) * n + torch.randn(n, n, generator=gen) * 0.1
            return {"values": matrix.to(device)}

        def _singular(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            return {"values": torch.zeros(3, 3, device=device)}

        return [
            kit.Case("SL207", "linalg-inv", SL207_BEFORE, _invertible, unsafe=True,
                 precondition="the matrix is invertible (errors are no longer raised)", broken=_singular),
        ]
def _linalg_message(label: str, twin: str) -> str:
    return (
        f"{label} on a GPU tensor checks for errors on the host: `_linalg_check_errors` reads `info` with "
        f"`.item()` and waits for the GPU; use `torch.linalg.{twin}` and check `info` later "
        "(e.g. `torch._assert_async(info == 0)`)"
    )


def _is_distribution(qual: str) -> bool:
    """A `torch.distributions` class (not a transform or constraint): its constructor validates."""
    parts = qual.split(".")
    if parts[:2] != ["torch", "distributions"] or len(parts) < 3:
        return False
    last = parts[-1]
    return (
        last[:1].isupper()
        and not last.endswith("Transform")
        and not _NOT_DISTRIBUTIONS.intersection(parts[2:-1])
    )


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"
