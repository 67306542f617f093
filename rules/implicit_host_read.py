"""# SL104 `implicit-host-read`: Python reads a GPU tensor's value

## What it does
Flags places where Python itself needs the value of a GPU tensor, without any
`.item()` in sight:

- number conversions: `int(t)`, `float(t)`, `bool(t)`, `complex(t)`, `operator.index(t)`;
- truth tests: `if t:`, `while t:`, `assert t`, `a if t else b`, `and` / `or` /
  `not`, comprehension `if`s, and comparisons used as conditions
  (`if t.sum() > 0:`);
- a 0-dim GPU integer tensor used as an index (`x[i]` with `i = idx.argmax()`),
  and a GPU tensor used as a slice bound (`x[:n]`);
- a GPU tensor passed where torch or Python expects a number: sizes and bounds
  (`torch.zeros(n)`, `torch.arange(n)`, `x.view(n, -1)`, `x.narrow(0, start, k)`,
  `range(n)`), fill values (`torch.full(shape, v)`) and `alpha=`;
- a GPU tensor as the count of a list, tuple or string repetition (`[False] * n`):
  TransformerEngine built its padding mask with `[False] * seqlens[i]` per sequence
  before #3268;
- formatting: `print(t)`, `str(t)`, `repr(t)`, `format(t)`, f-strings (except
  in error messages: inside `raise`, `assert` and `lambda` they are built only on
  failure, or lazily);
- host predicates: `torch.equal`, `torch.allclose`, `torch.is_nonzero` (and their
  method forms); builtin `max()` / `min()` over GPU tensors, and `any()`, `all()`
  and `sorted()` of a GPU tensor, of a display of GPU tensors or of a comprehension
  of them (`any(n > 0 for n in lens)`), `sorted()` of tuples whose first item is a
  GPU tensor (`sorted([(w, i) for i, w in enumerate(loads)])`: tuples compare their
  first items), and `sorted()`, `list.sort()`, `max()`, `min()` with a
  `key=lambda` that returns one (verl's sequence balancing sorted partitions by
  `sum(workloads[i] for i in part)`): each element's truth, or each comparison,
  is read on the host (SGLang's FlashAttention backend tested `not
  any(forward_batch.extend_prefix_lens)` before PR #4745). Measured on an H100
  (torch 2.11, 30 ms queued; `benchmarks/gpu/iterate_store_probe.py`,
  `docs/verification/iterate-store-h100-torch2.11.0.md`): `any(t)`, `all(t)`,
  `sorted(t)` of 16 elements and `any(v > 0 for v in t)` each waited for the whole
  queue, `t.any()` did not (0.03 ms); so did (2026-12-07) `sorted()` of `(w, i)` tuples
  led by 0-dim GPU elements, `sorted(range(16), key=lambda i: t[i])`, `parts.sort(key=
  lambda p: sum(t[i] for i in p))` and `max(range(16), key=lambda i: t[i])`, while
  `sorted()` of `(i, w)` tuples led by distinct ints did not (0.02 ms).

Never flagged: metadata (`.shape`, `.size()`, `.numel()`, `.dim()`, `.dtype`,
`.device`, `.is_cuda`), `torch.equal(x, x)` (the same tensor twice), and indexing
with a 1-D integer tensor or a mask, which stays on the device (boolean masks
are another rule's business). `if t.item():` and `int(t.item())` are SL101's. A
value that only its `*_gpu`-style name calls a GPU tensor, used with Python
operators alone (`if use_gpu:`, `range(num_gpu)`, `n_gpu > 1`), is as likely a
flag or a count and is not flagged; a tensor method (`done_gpu.any()`) or an
assignment from torch settles it. Nor is an operand that an `isinstance` test
before it in the same `and` (of host types: `isinstance(out, (list, tuple)) and
out`) or `or` (of `torch.Tensor`: `isinstance(b, torch.Tensor) or b == 0.0`)
says is no tensor where it is read. A comparison with `None` (`t != None`) is a
Python bool: a tensor does not implement it, and Python compares identities.

## Why is this bad
Each of these calls `Tensor.__bool__`, `__int__`, `__float__` or `__index__`,
which read the value with `.item()`: a copy to pinned memory and
`at::cuda::memcpy_and_sync` (`aten/src/ATen/native/cuda/CUDAScalar.cu:_local_scalar_dense_cuda`).
The host waits for every kernel queued before it. Measured on an H100
(torch 2.11) with 41 ms of GPU work queued: `int(x.sum())` 40.5 ms and
`if x.any():` 40.5 ms; in a second run `float(t)`, `operator.index(t)`,
`f"{t:.3f}"`, `max([t0, t0 + 1])`, `x[i_cuda0d]`, `x[:i_cuda0d]`,
`torch.arange(i_cuda)`, `torch.zeros(i_cuda)`, `torch.full((4,), v_cuda)`,
`narrow(x, 0, i_cuda, 10)`, `torch.allclose` and `torch.is_nonzero` all waited for
the whole queue. A probe for this rule's table (H100, torch 2.11, 28 ms queued)
found the same for every other size and number argument it lists:
`torch.ones/empty/rand/eye/randperm(n)`, `torch.randint(n, ...)`,
`torch.full_like(v, n)`, `x.view/reshape/expand/repeat(n, ...)`,
`v.new_zeros(n)`, `v.new_full(shape, n)`, `x.select(0, n)`, `add(alpha=n)`,
`range(n)` and `complex(t)` each blocked for the whole queue (one
`set_sync_debug_mode` warning each). A repetition `[x] * t` takes its count with
`PyNumber_AsSsize_t`, which calls `t.__index__()`: the read `operator.index(t)`
measured above (checked on the CPU to give a list, not a tensor; not timed on a GPU
on its own); builtin `max(v)` over 16 GPU elements synced
15 times and `str(v)` 17 times, while `x[v]` with a 1-D index and
`torch.equal(x, x)` did not block. A 0-dim index is read in
`handleDimInMultiDimIndexing` (`aten/src/ATen/TensorIndexing.h`); `torch.equal`
ends in `.item()` in
`aten/src/ATen/native/cuda/Equal.cpp:cuda_equal` unless both arguments are the
same tensor; `repr(x)` of 4096 elements synced 19 times (`torch/_tensor_str.py`).

## Example
```python
seq_lens = torch.zeros(n, dtype=torch.int32, device=device)
if seq_lens.max() > max_model_len:  # SL104: the comparison is read with bool()
    ...
positions = torch.arange(seq_lens.sum())  # SL104: the size is read with .item()
```

Use instead a host-side value (`seq_lens_cpu.max()`, a bound the scheduler
knows), keep decisions on the device (`torch.where`, masks,
`torch._assert_async(cond)` for asserts), and pass sizes as host ints.

## Fix safety
When a `_cpu` mirror of the tensor that is read is in scope (`seq_lens_cpu`
beside `seq_lens`, bound at that point, already read in the function, or a
configured cpu-attribute), an unsafe fix reads the mirror instead:
`if seq_lens.max() > m:` -> `if seq_lens_cpu.max() > m:`. It is unsafe because
the mirror may lag the device tensor. Otherwise there is no fix.

## When to ignore
Outside the hot path (start-up checks, debugging prints). Mark intentional syncs
with `with gpu_sync_allowed():` or `# noqa: SL104`.
"""

from __future__ import annotations

import libcst as cst

from sync_lint.analysis.narrowing import no_tensor_after_isinstance
from sync_lint.rulekit import (
    Device,
    Example,
    Fact,
    Rule,
    dotted_name,
    get_arg,
    positional_args,
    report_host_read,
)

# Where a tensor argument is taken as a Python number: (positions, keywords);
# None = every positional argument. Tuple and list literals there are sizes, read
# element by element.
Numbers = tuple[tuple[int, ...] | None, tuple[str, ...]]
SIZES: Numbers = (None, ("size",))
TORCH_NUMBERS: dict[str, Numbers] = {
    "zeros": SIZES, "ones": SIZES, "empty": SIZES, "rand": SIZES, "randn": SIZES,
    "full": ((0, 1), ("size", "fill_value")),
    "full_like": ((1,), ("fill_value",)),
    "arange": (None, ("start", "end", "step")),
    "randint": (None, ("low", "high", "size")),
    "randperm": ((0,), ("n",)),
    "eye": ((0, 1), ("n", "m")),
    "narrow": ((1, 2, 3), ("dim", "start", "length")),
    "add": ((), ("alpha",)), "sub": ((), ("alpha",)),
}
METHOD_NUMBERS: dict[str, Numbers] = {
    "view": SIZES, "reshape": (None, ("shape",)), "expand": SIZES, "repeat": (None, ("repeats",)),
    "new_zeros": SIZES, "new_ones": SIZES, "new_empty": SIZES,
    "new_full": ((0, 1), ("size", "fill_value")),
    "narrow": ((0, 1, 2), ("dim", "start", "length")),
    "select": ((0, 1), ("dim", "index")),
    "add": ((), ("alpha",)), "sub": ((), ("alpha",)), "add_": ((), ("alpha",)), "sub_": ((), ("alpha",)),
}
BUILTIN_NUMBERS: dict[str, Numbers] = {"range": (None, ())}
CONVERSIONS = frozenset({"int", "float", "bool", "complex"})
FORMATTERS = frozenset({"str", "repr", "format"})
# Host predicates and what keeps them on the device.
PREDICATES = {
    "equal": "keep `(a == b).all()` on the device",
    "allclose": "keep `torch.isclose(a, b).all()` on the device",
    "is_nonzero": "keep `t != 0` on the device",
}

# What a repetition `display * n` certainly repeats as a sequence: `n` is read as a count.
_SEQUENCE_DISPLAYS = (cst.List, cst.Tuple, cst.ListComp, cst.SimpleString, cst.ConcatenatedString,
                      cst.FormattedString)
TRUTH = "Python tests a GPU tensor for truth here, reading it with `.item()`, which waits for the GPU"
TRUTH_ADVICE = "decide on the device (`torch.where`, masks), or test a value the host already has"
ASSERT_ADVICE = "use `torch._assert_async(cond)`, which checks on the device (a failure is a device-side assert)"
NUMBER_ADVICE = (
    "pass a host number (a `_cpu` mirror, a size the host knows); for a value, "
    "keep it on the device with tensor ops (`x * v`, `torch.where`)"
)


class ImplicitHostRead(Rule):
    code = "SL104"
    name = "implicit-host-read"
    summary = "Python reads a GPU tensor's value (`int(t)`, `if t:`, `x[:n]`, `print(t)`) and waits for the GPU"
    # Python's protocols have no token of their own: a truth test, a call taking a number, an index.
    # A file without GPU evidence of its own is still skipped outside a project (the prefilter's
    # evidence test); in a project its tensors may come from any other module (`if self.no_absorb(b):`
    # in a file that names no device).
    triggers = ("if ", "while ", "assert ", "(", "[")
    needs_gpu_evidence = True
    fix_availability = "sometimes"
    fix_verified_by = "SL101"  # the same host-mirror rewrite
    examples = (
        Example("import torch\nx = torch.ones(4, device='cuda')\nif x.sum() > 0:\n    pass\n", (3,)),
        Example("import torch\nx = torch.ones(4, device='cuda')\nn = int(x.sum())\n", (3,)),
        Example("import torch\nx = torch.ones(4, device='cuda')\nrow = [False] * x.sum().long()\n"
                "pad = [True] * 4\n", (3,)),
        Example("import torch\nx = torch.ones(4, device='cuda')\ny = torch.zeros(x.sum().long())\n", (3,)),
        Example("import torch\nx = torch.ones(4, device='cuda')\nif x.shape[0] > 0:\n    pass\n"),
        Example("import torch\nx = torch.ones(4, device='cuda')\nok = torch.equal(x, x)\n"),
        Example("import torch\nx = torch.ones(4)\nif x.sum() > 0:\n    pass\n"),
        Example("import torch\nx = torch.ones(4, device='cuda')\nif not any(x):\n    pass\n", (3,)),
        Example("import torch\nx = torch.ones(4, device='cuda')\nok = all(v > 0 for v in x)\n", (3,)),
        Example("import torch\nx = torch.ones(4, device='cuda')\nok = any(x.tolist())\nids = sorted([3, 1])\n"
                "none = any([])\n"),
    )

    def __init__(self) -> None:
        super().__init__()
        # Inside `raise`, `assert` and `lambda`: a message formatted there is built only on
        # failure, or lazily.
        self._lazy_messages = 0
        # Enclosing comprehensions and the names their `for` clauses bind.
        self._comprehensions: list[tuple[cst.CSTNode, frozenset[str]]] = []

    def _enter_comprehension(self, node: cst.ListComp | cst.SetComp | cst.GeneratorExp | cst.DictComp) -> None:
        names: set[str] = set()
        clause: cst.CompFor | None = node.for_in
        while clause is not None:
            names.update(_target_names(clause.target))
            clause = clause.inner_for_in
        self._comprehensions.append((node, frozenset(names)))

    def _leave_comprehension(self, node: cst.CSTNode) -> None:
        self._comprehensions.pop()

    visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _enter_comprehension
    leave_ListComp = leave_SetComp = leave_GeneratorExp = leave_DictComp = _leave_comprehension

    def visit_Raise(self, node: cst.Raise) -> None:
        self._lazy_messages += 1

    def leave_Raise(self, node: cst.Raise) -> None:
        self._lazy_messages -= 1

    def visit_Lambda(self, node: cst.Lambda) -> None:
        self._lazy_messages += 1

    def leave_Lambda(self, node: cst.Lambda) -> None:
        self._lazy_messages -= 1

    def _gpu(self, expr: cst.BaseExpression) -> Fact | None:
        """`expr`'s fact when it is a GPU tensor, unless only a `*_gpu`-style name says so.

        `if use_gpu:`, `range(num_gpu)` and `n_gpu > 1` combine names with Python
        operators only: such a name is as likely a flag or a count as a tensor.
        A tensor method (`done_gpu.any()`) or an assignment from torch settles it.
        """
        fact = self.gpu_fact(expr)
        if fact is None or not _operators_only(expr):
            return fact
        root: Fact | None = fact
        while root is not None:
            if root.origin is not None and not _operators_only(root.origin):
                return fact
            last, root = root, root.via
        return None if last.from_name else fact

    # --- truth tests ------------------------------------------------------------------------
    def visit_If(self, node: cst.If) -> None:
        self._truth(node.test)

    def visit_While(self, node: cst.While) -> None:
        self._truth(node.test)

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self._truth(node.test)

    def visit_CompIf(self, node: cst.CompIf) -> None:
        self._truth(node.test)

    def visit_Assert(self, node: cst.Assert) -> None:
        self._truth(node.test, ASSERT_ADVICE)
        self._lazy_messages += 1

    def leave_Assert(self, node: cst.Assert) -> None:
        self._lazy_messages -= 1

    def visit_BooleanOperation(self, node: cst.BooleanOperation) -> None:
        for operand in (node.left, node.right):
            if operand is node.right and no_tensor_after_isinstance(node, self.ctx.imports.resolve):
                continue
            if self.ctx.marks.is_condition(operand):  # `b` in `x = a or b` is returned, not tested
                self._truth(operand)

    def visit_UnaryOperation(self, node: cst.UnaryOperation) -> None:
        if isinstance(node.operator, cst.Not):
            self._truth(node.expression)

    def _truth(self, test: cst.BaseExpression, advice: str = TRUTH_ADVICE) -> None:
        if isinstance(test, cst.BooleanOperation) or (
            isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not)
        ):
            return  # Python tests their operands one by one; those are visited on their own
        fact = self._gpu(test)
        if fact is not None:
            report_host_read(self, test, fact, TRUTH, advice, test)

    # --- indexing ---------------------------------------------------------------------------
    def visit_Subscript(self, node: cst.Subscript) -> None:
        base = self.ctx.devices.fact(node.value)
        indexes_tensor = base.is_tensor or base.is_unknown_tensor
        for element in node.slice:
            index = element.slice
            if isinstance(index, cst.Index):
                fact = self._gpu(index.value) if indexes_tensor else None
                # A 1-D index tensor gathers on the device; a mask is another rule's.
                if fact is not None and fact.ndim == 0 and fact.dtype in ("int", None):
                    report_host_read(self, 
                        index.value, fact,
                        "a 0-dim GPU tensor used as an index is read with `.item()`, which waits for the GPU",
                        "index with a host int, or stay on the device: `x.index_select(0, i.view(1)).squeeze(0)`",
                        index.value,
                    )
                continue
            for bound in (index.lower, index.upper, index.step):
                fact = self._gpu(bound) if bound is not None else None
                if bound is not None and fact is not None and fact.ndim in (0, None):
                    report_host_read(self, 
                        bound, fact,
                        "a GPU tensor used as a slice bound is read with `__index__`, which waits for the GPU",
                        "slice with a host int (a `_cpu` mirror, a size the host knows)",
                        bound,
                    )

    # --- sequence repetition ----------------------------------------------------------------
    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Multiply):
            return
        for sequence, count in ((node.left, node.right), (node.right, node.left)):
            if not isinstance(sequence, _SEQUENCE_DISPLAYS):
                continue
            fact = self._gpu(count)
            if fact is not None and fact.ndim in (0, None):
                report_host_read(self,
                    count, fact,
                    "a GPU tensor used as the count of a sequence repetition is read with `__index__`, which "
                    "waits for the GPU",
                    "repeat by a host int, or build the result on the device (`torch.arange(width) >= n`)",
                    count,
                )
            return

    # --- calls ------------------------------------------------------------------------------
    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        qual = self.ctx.imports.resolve(func)
        if qual is None and isinstance(func, cst.Name):
            if self.ctx.devices.bound_fact(func.value) is None:  # not shadowed
                self._builtin(node, func.value)
        elif qual == "operator.index":
            self._conversion(node, "operator.index")
        elif qual is not None and qual.count(".") == 1 and qual.startswith("torch."):
            name = qual[len("torch."):]
            if name in PREDICATES:
                self._predicate(node, name, [a.value for a in positional_args(node)[:2]])
            elif name in TORCH_NUMBERS:
                self._numbers(node, qual, TORCH_NUMBERS[name])
        elif qual is None and isinstance(func, cst.Attribute):
            method, receiver = func.attr.value, func.value
            if method not in PREDICATES and method not in METHOD_NUMBERS:
                return
            if self.ctx.devices.fact(receiver).device is Device.NOT_TENSOR:
                return
            if method in PREDICATES:
                self._predicate(node, method, [receiver, *(a.value for a in positional_args(node)[:1])])
            elif method in METHOD_NUMBERS:
                self._numbers(node, f".{method}()", METHOD_NUMBERS[method])

    def _builtin(self, node: cst.Call, name: str) -> None:
        if name in CONVERSIONS:
            self._conversion(node, name)
        elif name in BUILTIN_NUMBERS:
            self._numbers(node, name, BUILTIN_NUMBERS[name])
        elif name == "print":
            for arg in positional_args(node):
                self._formatted(arg.value)
        elif name in FORMATTERS and node.args:
            self._formatted(node.args[0].value)
        elif name in ("max", "min"):
            self._compared(node, name)

    def _conversion(self, node: cst.Call, name: str) -> None:
        value = node.args[0].value if len(node.args) == 1 and not node.args[0].star else None
        fact = self._gpu(value) if value is not None else None
        if value is not None and fact is not None:
            report_host_read(self, 
                node, fact,
                f"`{name}()` of a GPU tensor reads its value with `.item()`, which waits for the GPU",
                "use a value the host already has (a `_cpu` mirror), or keep it on the device as a 0-dim tensor",
                value,
            )

    def _numbers(self, node: cst.Call, where: str, numbers: Numbers) -> None:
        positions, keywords = numbers
        for index, arg in enumerate(positional_args(node)):
            if positions is None or index in positions:
                self._number(arg.value, where)
        for keyword in keywords:
            arg = get_arg(node, keyword)
            if arg is not None and arg.keyword is not None:
                self._number(arg.value, where)

    def _number(self, value: cst.BaseExpression, where: str) -> None:
        if isinstance(value, (cst.Tuple, cst.List)):
            for element in value.elements:
                self._number(element.value, where)
            return
        fact = self._gpu(value)
        if fact is None or fact.ndim not in (0, None):
            return
        comprehension = self._iterated_in(value)
        if comprehension is not None:
            # `[torch.arange(n) for n in lens_gpu]`: the loop over the GPU tensor is the sync, once per element.
            self.report(
                comprehension,
                f"this comprehension iterates a GPU tensor in Python, and `{where}` reads each 0-dim element with "
                "`.item()`: one wait for the GPU per element; " + NUMBER_ADVICE,
                fact=fact,
            )
            return
        report_host_read(
            self,
            value, fact,
            f"`{where}` takes this GPU tensor as a Python number and reads it with `.item()`, "
            "which waits for the GPU",
            NUMBER_ADVICE,
            value,
        )

    def _iterated_in(self, value: cst.BaseExpression) -> cst.CSTNode | None:
        """The comprehension whose `for` binds the name `value` (or the name it is computed from)."""
        names = {n.value for n in _names_in(value)}
        for node, bound in reversed(self._comprehensions):
            if names & bound:
                return node
        return None

    def visit_FormattedStringExpression(self, node: cst.FormattedStringExpression) -> None:
        self._formatted(node.expression)

    def _formatted(self, value: cst.BaseExpression) -> None:
        fact = self._gpu(value) if not self._lazy_messages else None
        if fact is not None:
            report_host_read(self, 
                value, fact,
                "formatting a GPU tensor copies its values to the host (`torch/_tensor_str.py`) "
                "and waits for the GPU",
                "format host-side values, or keep tensor printing off the hot path",
                value,
            )

    def _predicate(self, node: cst.Call, name: str, tensors: list[cst.BaseExpression]) -> None:
        facts = [f for f in map(self.gpu_fact, tensors) if f is not None]
        if not facts:
            return
        if name == "equal" and len(tensors) == 2 and self.ctx.code(tensors[0]) == self.ctx.code(tensors[1]):
            return  # the same tensor twice: `torch.equal` returns before reading anything
        what = f"`{name}` reads its result on the host with `.item()`, which waits for the GPU"
        if len(tensors) == 1:
            report_host_read(self, node, facts[0], what, PREDICATES[name], tensors[0])
        else:
            self.report(node, f"{what}; {PREDICATES[name]}", fact=facts[0])

    def _compared(self, node: cst.Call, name: str) -> None:
        values = [a.value for a in positional_args(node)]
        if len(values) == 1 and isinstance(values[0], (cst.List, cst.Tuple)):
            values = [e.value for e in values[0].elements]
        fact: Fact | None = self._key(node) or next((f for f in map(self._gpu, values) if f is not None), None)
        if fact is not None:
            self.report(
                node,
                f"builtin `{name}()` compares GPU tensors in Python, reading each comparison with "
                f"`.item()`, which waits for the GPU; use `torch.{name}imum` or `torch.{name}` on the device",
                fact=fact,
            )


    def leave_Call(self, node: cst.Call) -> None:
        # On leaving: a comprehension's names are bound once the walk has been through it.
        func = node.func
        if isinstance(func, cst.Name) and func.value in ("any", "all", "sorted") \
                and self.ctx.imports.resolve(func) is None and self.ctx.devices.bound_fact(func.value) is None:
            self._iterated(node, func.value)
        elif isinstance(func, cst.Attribute) and func.attr.value == "sort":
            # `parts.sort(key=lambda p: workloads[p])`: a list's sort (a tensor's takes no `key`).
            fact = self._key(node)
            if fact is not None:
                self._report_sorted(node, fact)

    def _key(self, node: cst.Call) -> Fact | None:
        """The GPU tensor a `key=lambda ...` gives `sorted`, `min`, `max` or `list.sort` to compare."""
        key = next((a.value for a in node.args if a.keyword is not None and a.keyword.value == "key"), None)
        return self._compared_item(key.body) if isinstance(key, cst.Lambda) else None

    def _compared_item(self, value: cst.BaseExpression) -> Fact | None:
        """A GPU tensor that comparing `value` with another reads: the value itself, or the first item of
        a tuple (`(seqlen, i)`: tuples compare their first items first, with `==`, then its truth)."""
        if isinstance(value, cst.Tuple) and value.elements and isinstance(value.elements[0], cst.Element):
            value = value.elements[0].value
        return self._gpu(value)

    def _iterated(self, node: cst.Call, name: str) -> None:
        """`any(t)`, `all(t)`, `sorted(t)`: Python iterates its one argument and reads each element (the
        truth of each for `any`/`all`, each comparison for `sorted`): a GPU tensor of one or more
        dimensions, a display of GPU tensors, or a comprehension whose elements are GPU tensors
        (`any(n > 0 for n in lens)`)."""
        args = positional_args(node)
        if len(args) != 1:
            return
        if name == "sorted":
            keyed = self._key(node)
            if keyed is not None:
                self._report_sorted(node, keyed)
                return
        element = self._gpu if name != "sorted" else self._compared_item
        iterable = args[0].value
        found: Fact | None
        if isinstance(iterable, (cst.List, cst.Tuple)):
            elements = [e.value for e in iterable.elements if isinstance(e, cst.Element)]
            found = next((f for f in map(element, elements) if f is not None), None)
        elif isinstance(iterable, (cst.GeneratorExp, cst.ListComp)):
            found = element(iterable.elt)
        else:
            found = self._gpu(iterable)
            if found is not None and found.ndim == 0:
                return  # iterating a 0-dim tensor raises
        if found is None:
            return
        if name == "sorted":
            self._report_sorted(node, found)
            return
        self.report(
            node,
            f"builtin `{name}()` iterates GPU tensors in Python and tests each element for truth, reading each "
            f"with `.item()`: one wait for the GPU per element; reduce on the device (`t.{name}()`, "
            f"`torch.{name}`) and keep the result there, or test host values",
            fact=found,
        )

    def _report_sorted(self, node: cst.Call, found: Fact) -> None:
        what = "builtin `sorted()` iterates GPU tensors in Python and compares its elements" \
            if isinstance(node.func, cst.Name) else "`list.sort()` compares GPU tensors (its keys) in Python"
        self.report(
            node,
            f"{what}, reading each comparison with `.item()`: one wait for the GPU per element; sort on the "
            "device (`torch.sort`)",
            fact=found,
        )


def _operators_only(expr: cst.CSTNode) -> bool:
    """Names and literals combined by Python operators, nothing only a tensor has."""
    if isinstance(expr, (cst.Name, cst.Integer, cst.Float)) or dotted_name(expr) is not None:  # type: ignore[arg-type]
        return True
    if isinstance(expr, cst.BinaryOperation):
        return _operators_only(expr.left) and _operators_only(expr.right)
    if isinstance(expr, cst.Comparison):
        return _operators_only(expr.left) and all(_operators_only(c.comparator) for c in expr.comparisons)
    if isinstance(expr, cst.UnaryOperation):
        return _operators_only(expr.expression)
    return False


def _target_names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        return set().union(*(_target_names(e.value) for e in target.elements)) if target.elements else set()
    return set()


def _names_in(expr: cst.BaseExpression) -> list[cst.Name]:
    """The plain names an arithmetic expression of names is made of (`n`, `n + 1`)."""
    if isinstance(expr, cst.Name):
        return [expr]
    if isinstance(expr, cst.BinaryOperation):
        return _names_in(expr.left) + _names_in(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return _names_in(expr.expression)
    return []

