"""# SL302 `index-put-from-host`: indexing a GPU tensor with host data, or storing a host scalar through a tensor index

## What it does
Flags, on a GPU tensor `t`:

- `t[idx] = v` where `idx` is an integer GPU tensor (under `--strict`, also a
  GPU index of unknown dtype) and `v` a Python number or a 0-dim CPU tensor;
  also where `idx` is an integer tensor of unknown device (`t[ids.long()] = 0`):
  from a GPU index the value is copied, from a CPU index the index is, and either
  copy waits (not for an index known to be 0-dim: a 0-dim CPU index selects as an
  int does, SL301's case). Measured on an H100 (torch 2.11, 30 ms queued;
  `docs/verification/iterate-store-h100-torch2.11.0.md`): `t[idx_gpu] = 0` and
  `t[idx_cpu] = 0` each waited 30 ms, `t[idx_cpu_0d] = 0` too into a 1-D `t` and not
  into a 2-D one (0.01 ms), and the fix's `t[idx_gpu] = torch.full((), 0., ...)`
  took 0.02 ms. A tensor of unknown device indexed by a GPU tensor is on
  that GPU, since indexing a tensor on another device with it raises: vLLM's
  `logits[active_indices, force_tokens] = 1e9` (PR #42347, the second mined set),
  with `logits` a parameter and both indices computed on the GPU;
- `t[mask_cpu] = v` where `mask_cpu` is a CPU bool mask and `v` a Python number;
- `t[[0, 5, 7]]` and `t[[...]] = ...`: a Python list (a display, a list
  comprehension, a name bound to one, or a parameter annotated `list[int]`) used
  as an index. A list that holds tensors is read as a tuple of indices, so only
  lists of numbers count;
- `t[idx_cpu]` and `t[idx_cpu] = ...`: a CPU tensor index that is not known to be
  a bool mask (integer, or of unknown dtype unless its name says `mask`) and not
  0-dim;
- `t[arr]` and `t[arr] = ...` with `arr` a NumPy array known to have a rank
  (`np.arange`, `np.cumsum(lens) - 1`, `np.array([...])`, `x.cpu().numpy()`, a
  slice of one): PyTorch turns it into a CPU tensor and indexes with it, as
  with a CPU index. vLLM's rejection sampler paid this on every speculative
  step with `logits[np.cumsum(sample_lens) - 1, :]` (PR #14930). A NumPy scalar
  (`t[a[i]]`) selects as an int does and is not reported;
- `t[rows_and_cols] = v` with a tuple of index tensors held in one value (a
  field set to `(rows, cols)`) is `t[rows, cols] = v`: the GPU integer tensor
  among them decides, as for one index (vLLM's min-tokens logits processor,
  PR #29826).

## Why is this bad
Each of these makes PyTorch copy something host-side to the GPU with a blocking
copy from pageable memory, which ends in `at::cuda::memcpy_and_sync`: the host
waits for all work queued on the stream. Measured on an H100 (torch 2.11), each
blocked the host for the whole 41 ms of queued GPU work: `t[idx] = 0` with a
CUDA long `idx` (40.7 ms), `x[idx_cpu]`, `x[[0, 5, 7]]`, `t[idx_cpu] = vals`,
`t[mask_cpu] = 0`.

- Scalar value with a tensor index: `_index_put_impl_`
  (`aten/src/ATen/native/TensorAdvancedIndexing.cpp`) moves the 0-dim CPU value
  with a blocking `value.to(self.device())`. With a CUDA bool mask and a Python
  scalar it dispatches to `masked_fill_` instead (no sync, measured), but that
  shortcut needs the mask on `t`'s device, so a CPU mask syncs.
- List index: `sequenceToVariable` (`python_variable_indexing.cpp`) builds the
  index with `internal_new_from_data`, then `.to(device, non_blocking=false)`.
  Measured on an H200 (torch 2.11, 30 ms queued): `x[ids]` with `ids` a list of
  ints waited 30.2 ms; `grid[[rows, cols]]` and `x[[rows]]` with GPU index tensors
  in the list did not (0.18 ms): such a list is read as a tuple of indices
  (`benchmarks/gpu/index_type_probe.py`, `docs/verification/index-type-h200-torch2.11.0.md`).
- CPU integer index: `expandTensors` (`aten/src/ATen/native/IndexingUtils.h`) does
  a blocking `index.to(self.device())`. A CPU **bool** mask is converted through
  a pinned, non-blocking copy since pytorch PR #156384, so `x[mask_cpu]` does
  not sync (measured), and a 0-dim CPU index is read on the CPU (no sync).

## Example
```python
hit = torch.nonzero(mask).squeeze(1)   # a GPU integer tensor
counts[hit] = 0                        # SL302: the 0 is copied from pageable memory
rows = table[[0, 5, 7]]                # SL302: the list becomes a CPU tensor first
```

Use instead:
```python
counts[hit] = torch.full((), 0, dtype=counts.dtype, device=counts.device)  # or counts.index_fill_(0, hit, 0)
ROWS = torch.tensor([0, 5, 7], pin_memory=True).to(device, non_blocking=True)  # once, cached
rows = table[ROWS]
```

## Fix safety
`t[idx] = v` (GPU integer index, Python number `v`) becomes
`t[idx] = torch.full((), v, dtype=t.dtype, device=t.device)` (unsafe where the
index's device is not known: a CPU index is still copied): the value is
created on `t`'s device in `t`'s dtype, which is what PyTorch does after its
blocking copy (same result, 0.06 ms instead of 38.7 ms, measured). One
difference was measured: a value that overflows a float16/bfloat16 tensor is
stored as inf by `t[idx] = v` but makes `torch.full` raise. The fix is safe when
`t` holds integers or bools or `v` is a literal within float16 range, unsafe
otherwise. It is offered only when `t` is a plain name or attribute chain (it is
evaluated twice). List and CPU-tensor indices have no automatic fix: build the
index on the GPU once (pinned + `non_blocking=True`) and reuse it, or, for a CPU
mask and a scalar, move the mask once and call `t.masked_fill_(mask, v)`.

## Which torch releases sync
The two scalar-value forms (`t[idx] = v` with a GPU index, `t[mask_cpu] = v`)
sync in every release up to and including 2.14.1 and not from 2.15.0, so they
are not reported when `target-torch-version` is 2.15 or later. List and
CPU-tensor indices still sync there. The change is PyTorch PR #188330
("Dispatch `index_put_` to `masked_fill_.Scalar` when possible", a follow-up of
#188267): it removes the special case that built a setitem scalar for a CUDA
tensor on the CPU.

Evidence, read from the released wheels' `torch/include/ATen/TensorIndexing.h`
and the symbols in `libtorch_python` (the method, the commits and its limits are
those of SL301's section, which covers the same releases, 2.12.1 to 2.15.0): up
to 2.14.1 `set_item` takes only a `Tensor` value, the advanced-index branch ends
in `dispatch_index_put_(sliced, std::move(tensorIndices), valuesSliced)` with
the 0-dim CPU tensor the Python layer built, and `_index_put_impl_` copies it to
the GPU with a blocking copy. 2.15.0 adds `asTensor(const Scalar&, const Tensor&
target)`, which builds the value on `target.device()` (l.468-480), and, for
`Scalar` values only, `try_dispatch_masked_fill_` and `try_dispatch_index_fill_`
(l.703-753), tried before `index_put_` (l.916-923); `libtorch_python`
instantiates them. For `t[mask_cpu] = v` we infer the same from the code: the
value is then built on the GPU and the mask goes through the pinned copy of PR
#156384. Not measured on 2.15. The newest release checked is 2.15.0: for a
newer target these forms stay unreported and one line on stderr says that
releases after 2.15.0 were not checked.

## When to ignore
Outside the hot path, mark intentional indexing with `# noqa: SL302`.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import libcst as cst

from sync_lint.rulekit import (
    Device,
    Example,
    Fact,
    Fix,
    Rule,
    TorchGate,
    abbreviate,
    cannot_overflow,
    dotted_name,
    is_cpu_scalar_tensor,
    is_host_list,
    is_python_number,
)

# The first release that builds setitem scalars on the GPU (PR #188330), and the newest
# release read for it; see the docs.
SCALAR_VALUE_GATE = TorchGate("2.15", "2.15.0", "host scalars stored through a tensor index")
_LISTS = (cst.List, cst.ListComp)


# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL302_BEFORE = """\
import torch


def run(values, idx_gpu, v: int):
    t = torch.zeros((values.shape[0],), dtype=torch.int64, device=values.device)
    t.copy_(values)
    index = idx_gpu.long()
    t[index] = v
    return t
"""


def _tuple_index(fact: Fact) -> Fact:
    """What indexes when the index is a tuple of tensors held in one value (`t[self.logits_slice]`, as
    `t[rows, cols]`): the GPU integer or bool tensor among them where there is one, since it decides
    where the index and a stored scalar go; else the first. Any other value stands for itself."""
    if fact.value_kind != "tuple" or not fact.items or \
            not all(isinstance(item, Fact) and (item.is_tensor or item.is_unknown_tensor) for item in fact.items):
        return fact
    return next((item for item in fact.items if item.is_gpu and item.dtype in ("int", "bool")), fact.items[0])


class IndexPutFromHost(Rule):
    code = "SL302"
    name = "index-put-from-host"
    summary = "A list or CPU-tensor index of a GPU tensor, or a host scalar stored through a tensor index, syncs"
    triggers = ("[",)
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    partial_torch_gates = (SCALAR_VALUE_GATE,)
    examples = (
        Example("import torch\nt = torch.zeros(8, device='cuda')\nidx = t.argsort()\nt[idx] = 0\n", (4,)),
        Example("import torch\nt = torch.zeros(8, device='cuda')\nrows = t[[0, 5, 7]]\n", (3,)),
        Example("import torch\nt = torch.zeros(8, device='cuda')\nmask = t > 0\nt[mask] = 0\n"),
        Example("import torch\nt = torch.zeros(8, device='cuda')\ndef f(ids):\n    t[ids.long()] = 0\n", (4,)),
        Example("import torch\ndef f(logits: torch.Tensor):\n    idx = torch.zeros(4, device='cuda').argsort()\n"
                "    logits[idx] = 0\n", (4,)),
        Example("def f(seen: dict, ids):\n    seen[ids.argsort()] = 0\n"),
        Example("import numpy as np\na = np.zeros(8)\nb = a[[0, 5]]\n"),
        Example("import torch\ndef rows(ids: list[int] | None):\n    t = torch.zeros(8, device='cuda')\n"
                "    return t[ids]\n", (4,)),
        Example("import torch\ndef rows(ids: list[torch.Tensor]):\n    t = torch.zeros(8, device='cuda')\n"
                "    return t[ids]\n"),
        Example("import torch\ndef rows(n: int, keep: int):\n    t = torch.zeros(8, device='cuda')\n"
                "    ids = list(range(n))\n    ids.remove(keep)\n    return t[ids]\n", (6,)),
        Example("import numpy as np\nimport torch\ndef last(logits: torch.Tensor, lens: list[int]):\n"
                "    t = torch.zeros(8, 4, device='cuda')\n    idx = np.cumsum(lens) - 1\n    return t[idx, :]\n", (6,)),
        Example("import numpy as np\nimport torch\ndef pick(lens: list[int]):\n"
                "    t = torch.zeros(8, device='cuda')\n    idx = np.cumsum(lens) - 1\n    return t[idx[0]]\n"),
        Example("import torch\ndef ban(logits: torch.Tensor, n: int):\n    rows = torch.arange(n, device='cuda')\n"
                "    pairs = (rows, rows)\n    logits[pairs] = -float('inf')\n", (5,)),
    )

    def __init__(self) -> None:
        self._stores: set[int] = set()  # subscripts already checked with their assigned value

    def visit_Assign(self, node: cst.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Subscript):
            target = node.targets[0].target
            self._stores.add(id(target))
            self._check(target, node.value)

    def visit_Subscript(self, node: cst.Subscript) -> None:
        if id(node) not in self._stores:
            self._check(node, None)

    def _check(self, node: cst.Subscript, value: cst.BaseExpression | None) -> None:
        base = self.gpu_fact(node.value) or self._indexed_on_gpu(node)
        if base is None:
            return
        for element in node.slice:
            if isinstance(element.slice, cst.Index):
                problem = self._problem(node, element.slice.value, value, base)
                if problem is not None:
                    message, fix = problem
                    self.report(node, message, fact=base, fix=fix)
                    return

    def _problem(
        self, node: cst.Subscript, index: cst.BaseExpression, value: cst.BaseExpression | None, base: Fact
    ) -> tuple[str, Fix | None] | None:
        """What makes `node[index] (= value)` sync, as (message, fix); None when nothing does."""
        code = abbreviate(self.ctx.code(index))
        fact = _tuple_index(self.ctx.devices.fact(index))
        scalar = value is not None and is_python_number(self.ctx, value)
        host_scalar = scalar or (value is not None and is_cpu_scalar_tensor(self.ctx, value))
        # A variable bound to a list display, holding no tensor (filled by `.append` of numbers, or
        # not at all): built as a CPU tensor. A list of index tensors is a tuple of indices instead.
        displayed = fact.value_kind in ("python", "list") and isinstance(fact.origin, _LISTS) and \
            not any(item.is_tensor or item.is_unknown_tensor for item in fact.items)
        if isinstance(index, _LISTS) or displayed or is_host_list(fact):
            return (
                f"the list index `{code}` is built as a CPU tensor and copied to the GPU with a blocking copy; "
                "build the index tensor on the GPU once (pinned, `non_blocking=True`) and reuse it",
                None,
            )
        if fact.value_kind == "numpy" and fact.ndim:
            # Only an array known to have a rank: `t[a[i]]` with a NumPy scalar selects as an int does.
            return (
                f"the NumPy index `{code}` is turned into a CPU tensor and copied to the GPU with a blocking "
                "copy; build the index on the GPU (or copy it once from pinned memory with `non_blocking=True`)",
                None,
            )
        if fact.is_cpu and fact.ndim != 0:
            if fact.dtype == "int" or (fact.dtype is None and "mask" not in (fact.subject or code)):
                return (
                    f"the CPU index `{code}` is copied to the GPU with a blocking copy; move it once "
                    "(`.pin_memory().to(device, non_blocking=True)`) and index with the GPU copy",
                    None,
                )
            if host_scalar and self._scalar_value_syncs():
                return (
                    f"storing a host scalar through the CPU mask `{code}` copies the value to the GPU with a "
                    "blocking copy; move the mask once (pinned, `non_blocking=True`) and use `masked_fill_`",
                    None,
                )
            return None
        where = self._int_index(fact) if host_scalar else None
        if where == "gpu" and self._scalar_value_syncs():
            return (
                f"storing a host scalar through the GPU index `{code}` copies the value from pageable memory "
                "and waits for the GPU; store a 0-dim device value (`torch.full((), v, dtype=..., device=...)`)",
                self._device_value_fix(node, value, base) if scalar else None,  # type: ignore[arg-type]
            )
        if where == "either" and self._scalar_value_syncs():
            return (
                f"storing a host scalar through the integer index `{code}` waits for the GPU on either device: "
                "from a GPU index PyTorch copies the value from pageable memory, from a CPU index it copies "
                "the index; keep the index on the GPU and store a 0-dim device value "
                "(`torch.full((), v, dtype=..., device=...)`)",
                self._device_value_fix(node, value, base, "the index must be on the GPU: a CPU index is "
                                       "still copied with a blocking copy") if scalar else None,  # type: ignore[arg-type]
            )
        return None

    def _indexed_on_gpu(self, node: cst.Subscript) -> Fact | None:
        """A tensor of unknown device indexed by a GPU tensor is on that GPU: indexing a tensor on
        another device with it raises (vLLM's `logits[active_indices, force_tokens] = 1e9`, with
        `logits` a parameter and both indices computed on the GPU)."""
        tensor = self.ctx.devices.fact(node.value)
        if not tensor.is_unknown_tensor:
            return None  # not known to be a torch tensor: a dict or a custom container takes any key
        for element in node.slice:
            if isinstance(element.slice, cst.Index):
                index = _tuple_index(self.ctx.devices.fact(element.slice.value))
                if index.is_gpu and index.dtype in ("int", "bool"):
                    code = abbreviate(self.ctx.code(element.slice.value))
                    return dataclasses.replace(
                        tensor, device=Device.GPU, via=index, origin=node.value,
                        reason=f"indexed by the GPU tensor `{code}`: indexing a tensor on another device with it raises")
        return None

    def _int_index(self, fact: Fact) -> str | None:
        """Where an integer index sends a host scalar stored through it: "gpu" for an integer GPU index
        (under --strict also one of unknown dtype, not known to be a bool mask); "either" for an integer
        tensor of unknown device, which syncs on either: on the GPU the value is copied from pageable
        memory, on the CPU the index is (`expandTensors`); None otherwise."""
        if fact.is_gpu:
            return "gpu" if fact.dtype == "int" or (fact.dtype is None and self.ctx.settings.strict) else None
        if fact.is_unknown_tensor and fact.dtype == "int" and fact.ndim != 0:
            return "either"  # a 0-dim CPU index selects as an int would: that store is SL301's
        return None

    def _scalar_value_syncs(self) -> bool:
        return SCALAR_VALUE_GATE.syncs(self.ctx.settings.target_torch_version)

    def _device_value_fix(self, node: cst.Subscript, value: cst.BaseExpression, base: Fact,
                          caveat: str | None = None) -> Fix | None:
        tensor = dotted_name(node.value)
        if tensor is None:
            return None  # `t` would be evaluated twice
        full = f"torch.full((), {self.ctx.text(value)}, dtype={tensor}.dtype, device={tensor}.device)"
        if caveat is None and not base.is_tensor:
            caveat = "the target is only assumed to be a torch tensor (--strict)"
        if caveat is None and not cannot_overflow(value, base.dtype):
            caveat = "the value must fit the tensor's dtype: on overflow `torch.full` raises where the store writes inf"
        return Fix(
            "safe" if caveat is None else "unsafe",
            "Store a 0-dim value created on the tensor's device" + (f": {caveat}" if caveat else ""),
            (self.replace(value, full),),
            needs_imports=("torch",),
        )

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _sl302(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            n = rng.choice([1, 2, 7, 1000])
            k = rng.choice([0, 1, 3, n])
            idx = torch.tensor([rng.randrange(-n, n) for _ in range(k)], dtype=torch.int64, device=device)
            return {"values": kit.values(rng, n, "int64", device), "idx_gpu": idx, "v": rng.randrange(-1000, 1000)}

        return [
            kit.Case("SL302", "index-put-gpu-index", SL302_BEFORE, _sl302),
        ]
