"""# SL501 `sync-prone-attribute`: an attribute whose read may copy from the GPU

## What it does
Flags reads of attributes configured as sync-prone
(`sync-prone-attributes = { name = "hint" }`). The default entry is vLLM's
`num_computed_tokens_cpu`. Assignments (`self._num_computed_tokens_cpu = ...`)
and definitions (`def num_computed_tokens_cpu(self)`) are not reads. No device
evidence is needed: the configured hint is the evidence.

An attribute the file itself assigns or writes into on the same object
(`self.num_computed_tokens_cpu = np.zeros(n)` in `__init__`,
`batch.num_computed_tokens_cpu[i] = n`) is plain storage, not a property that
computes its value, and is not flagged there. (vLLM's `InputBatch` keeps a
NumPy array of that name.) Nor is a read whose receiver's class the project
knows (an annotation, a constructor, `self`) when that class or a base declares
the attribute or stores it on `self`, and none defines a method or property of
that name: `input_batch.num_computed_tokens_cpu` where `input_batch: "InputBatch"`.

## Why is this bad
Such attributes are properties that look like plain host data but compute it
from device tensors on first use. vLLM's deprecated
`CommonAttentionMetadata.num_computed_tokens_cpu` derives the value from
`seq_lens`, which needs a device-to-host copy once the host copy of `seq_lens`
is optional (vLLM issue #29134, async speculative decoding). A blocking
device-to-host copy waits for the whole queue: `qsl.diff().to('cpu')` blocked
the host for 40.5 ms with 41 ms of GPU work queued (H100, torch 2.11;
`aten/src/ATen/native/cuda/Copy.cu:copy_kernel_cuda` -> `memcpy_and_sync`). The
value usually goes straight back to the GPU from pageable memory, which blocks
again: `(num_computed_tokens_cpu > 0).to(dev)` measured 40.5 ms, while deriving
it on the device took 0.31 ms.

## Example
```python
has_initial_cpu = meta.num_computed_tokens_cpu[start:end] > 0  # SL501
has_initial = has_initial_cpu.to(meta.query_start_loc.device)
```

Use instead the device tensors the metadata already has:
```python
context_lens = meta.seq_lens - (meta.query_start_loc[1:] - meta.query_start_loc[:-1])
has_initial = context_lens[start:end] > 0
```
If the host needs the values, derive them from the host-side inputs
(`query_start_loc_cpu`, `seq_lens_cpu_upper_bound`) instead.

## Fix safety
For `num_computed_tokens_cpu` only, and only when the value is moved to the
device afterwards, an unsafe fix derives it there:
`m.num_computed_tokens_cpu` -> `(m.seq_lens - (m.query_start_loc[1:] - m.query_start_loc[:-1]))`,
and the `.to(device)` that moved it becomes a no-op and is dropped, whether it
is chained (`(m.num_computed_tokens_cpu[a:b] > 0).to(dev)`) or applied later to
a variable holding the result. It is unsafe because it assumes `m.seq_lens` and
`m.query_start_loc` live on the target device and agree with the host copies
the property used. When nothing moves the value to the device there is no fix:
rewriting a host-side use would only move the sync. Other configured attributes
have no fix.

## When to ignore
Code that runs once, or attributes your version computes on the host without
any device read. Mark intentional reads with `# noqa: SL501`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import libcst as cst

from sync_lint.rulekit import (
    Edit,
    Example,
    Fix,
    Rule,
    call_name,
    dotted_name,
    method_receiver,
    splice,
)

DERIVABLE = "num_computed_tokens_cpu"
DERIVE_ADVICE = (
    "derive it from `seq_lens` and `query_start_loc` on the device, or from the host-side inputs "
    "(`query_start_loc_cpu`, `seq_lens_cpu_upper_bound`) on the host"
)
# Operations the derived device value passes through unchanged in kind: it stays a tensor.
_MOVES = frozenset({"to", "cuda", "cpu", "pin_memory", "numpy", "item", "tolist"})


@dataclass
class _Read:
    node: cst.Attribute
    hint: str
    owner: str | None  # `m` in `m.num_computed_tokens_cpu`, when it is a dotted name
    derived: str | None = None  # the device expression that can replace the read
    # The fix's edits, added once something is seen moving the value to the device.
    edits: list[Edit] = field(default_factory=list)


# Verification snippets: `run(**inputs)` modules the fixer rewrites (see `verification_cases`).
SL501_BEFORE = """\
import torch


class Metadata:
    def __init__(self, seq_lens, query_start_loc):
        self.seq_lens = seq_lens
        self.query_start_loc = query_start_loc

    @property
    def num_computed_tokens_cpu(self):
        return (self.seq_lens - (self.query_start_loc[1:] - self.query_start_loc[:-1])).cpu()


def run(seq_lens, query_start_loc):
    m = Metadata(seq_lens, query_start_loc)
    return (m.num_computed_tokens_cpu > 0).to(seq_lens.device)
"""


class SyncProneAttribute(Rule):
    code = "SL501"
    name = "sync-prone-attribute"
    summary = "A configured sync-prone attribute (e.g. `num_computed_tokens_cpu`) is read"
    # Configured names are not known here; host-mirror properties end in `_cpu`.
    triggers = ("_cpu",)
    fix_availability = "sometimes"
    examples = (
        Example("def f(m, dev):\n    return (m.num_computed_tokens_cpu > 0).to(dev)\n", (2,)),
        Example("class M:\n    def num_computed_tokens_cpu(self):\n        self._num_computed_tokens_cpu = None\n"),
    )

    def __init__(self) -> None:
        self._hints: dict[str, str] = {}
        self._reads: list[_Read] = []
        # (owner, attribute) pairs the file assigns or writes into, anywhere.
        self._storage: set[tuple[str | None, str]] = set()
        # A `.to(device)` and the value it moves, computed from a derivable read, by the read's node.
        self._moved_by: dict[int, tuple[cst.Call, cst.BaseExpression]] = {}
        # An assignment's value computed from a derivable read, by the read's node;
        # then the read, by the value (a variable's fact remembers the value it came from).
        self._assigned: dict[int, cst.BaseExpression] = {}
        self._read_of_value: dict[int, _Read] = {}

    def visit_Module(self, node: cst.Module) -> None:
        self._hints = dict(self.ctx.settings.sync_prone_attributes)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._note_storage(target.target)
        read = _derivable_root(node.value)
        if read is not None:
            self._assigned[id(read)] = node.value

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._note_storage(node.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self._note_storage(node.target)

    def _note_storage(self, target: cst.BaseExpression) -> None:
        """`obj.attr = v` and `obj.attr[i] = v`: on `obj`, `attr` is storage, not a property."""
        if isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._note_storage(element.value)
            return
        while isinstance(target, cst.Subscript):
            target = target.value
        if isinstance(target, cst.Attribute) and target.attr.value in self._hints:
            owner = dotted_name(target.value)
            if owner is not None:
                self._storage.add((owner, target.attr.value))

    def visit_Call(self, node: cst.Call) -> None:
        moved = method_receiver(node)
        if moved is None or call_name(node) != "to" or not self.ctx.devices.fact(node).is_gpu:
            return
        if isinstance(moved, cst.Call) and call_name(moved) == "pin_memory" and not moved.args:
            moved = method_receiver(moved)  # `x.pin_memory().to(dev, non_blocking=True)` is one move
        read = _derivable_root(moved) if moved is not None else None
        if read is not None:
            self._moved_by[id(read)] = (node, moved)
            return
        # `v.to(device)`, where `v` holds a value computed from a derivable read.
        name = dotted_name(moved) if moved is not None else None
        earlier = self._read_of_value.get(id(self.ctx.devices.fact(moved).origin)) if name else None
        if earlier is not None and earlier.derived is not None:
            if not earlier.edits:
                earlier.edits.append(self.replace(earlier.node, earlier.derived))
            if self._device_only(node):
                earlier.edits.append(self.replace(node, name))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        hint = self._hints.get(node.attr.value)
        if hint is None or self.ctx.marks.is_store(node) or self.ctx.marks.in_allowed_context:
            return
        owner = dotted_name(node.value)
        if owner is not None and self.ctx.devices.bound_fact(f"{owner}.{node.attr.value}") is not None:
            return  # assigned by this code (in `__init__`, say): plain storage
        if self.ctx.project is not None and self.ctx.project.plain_attribute(self.ctx.devices.fact(node.value),
                                                                             node.attr.value):
            return  # the owner's class keeps it as data (vLLM's `InputBatch`), not a property that copies
        read = _Read(node, hint, owner)
        self._reads.append(read)
        if node.attr.value != DERIVABLE or owner is None:
            return
        read.derived = f"({owner}.seq_lens - ({owner}.query_start_loc[1:] - {owner}.query_start_loc[:-1]))"
        move = self._moved_by.get(id(node))
        if move is not None and self._device_only(move[0]):
            read.edits.append(self.replace(move[0], splice(self.ctx, move[1], [Edit(*self.ctx.span(node), read.derived)], parentheses=True)))
        elif move is not None:
            read.edits.append(self.replace(node, read.derived))  # `.to(device, dtype)` still converts
        value = self._assigned.get(id(node))
        if value is not None:
            self._read_of_value[id(value)] = read

    def _device_only(self, call: cst.Call) -> bool:
        """`.to(device)` with nothing but a device (and `non_blocking`): dropping it changes no dtype."""
        rest = [a for a in call.args if not (a.keyword is not None and a.keyword.value == "non_blocking")]
        if len(rest) != 1 or rest[0].keyword is not None and rest[0].keyword.value != "device":
            return False
        value = rest[0].value
        if isinstance(value, cst.SimpleString) or isinstance(value, cst.Attribute) and value.attr.value == "device":
            return True
        if isinstance(value, cst.Call) and self.ctx.imports.resolve(value.func) == "torch.device":
            return True
        return self.ctx.devices.fact(value).value_kind == "device"

    def leave_Module(self, node: cst.Module) -> None:
        # Reported at the end of the walk: a later `.to(device)` decides whether there is a fix,
        # and a later write into the attribute shows it is storage.
        for read in self._reads:
            name = read.node.attr.value
            if (read.owner, name) in self._storage:
                continue
            fix = None
            if read.edits:
                fix = Fix(
                    "unsafe",
                    f"Derive `{name}` on the device from `seq_lens` and `query_start_loc`, and drop "
                    "the move to the device (unsafe: the value now lives on the GPU; assumes both "
                    "tensors are on the target device and agree with the host copies the property read)",
                    tuple(read.edits),
                )
            advice = DERIVE_ADVICE if name == DERIVABLE else "see the hint configured in `sync-prone-attributes`"
            message = f"`{name}` is sync-prone: reading it may copy from the GPU; {advice}"
            self.report(read.node, message, evidence=read.hint, fix=fix)

    # --- verification: the cases that prove the fix on a GPU (`sync-lint verify`) ---------------
    @classmethod
    def verification_cases(cls) -> list[Any]:
        from sync_lint.runtime import case_kit as kit

        def _metadata(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
            torch = kit.torch()
            reqs = rng.choice([1, 3, 64])
            query = [rng.randrange(1, 9) for _ in range(reqs)]
            computed = [rng.choice([0, rng.randrange(0, 100)]) for _ in range(reqs)]
            starts = [0]
            for q in query:
                starts.append(starts[-1] + q)
            seq_lens = torch.tensor([q + c for q, c in zip(query, computed)], dtype=torch.int32, device=device)
            return {"seq_lens": seq_lens, "query_start_loc": torch.tensor(starts, dtype=torch.int32, device=device)}

        return [
            kit.Case("SL501", "num-computed-tokens", SL501_BEFORE, _metadata, unsafe=True,
                 precondition="`seq_lens` and `query_start_loc` are the device tensors the mirror was derived from"),
        ]
def _derivable_root(expr: cst.BaseExpression) -> cst.Attribute | None:
    """The `x.num_computed_tokens_cpu` read that `expr` computes a tensor from, through one chain."""
    while True:
        if isinstance(expr, cst.Attribute) and expr.attr.value == DERIVABLE:
            return expr
        if isinstance(expr, cst.Subscript):
            expr = expr.value
        elif isinstance(expr, (cst.Comparison, cst.BinaryOperation)):
            expr = expr.left
        elif isinstance(expr, cst.UnaryOperation) and not isinstance(expr.operator, cst.Not):
            expr = expr.expression
        elif isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value not in _MOVES:
            expr = expr.func.value
        else:
            return None
