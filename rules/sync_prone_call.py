"""# SL502 `sync-prone-call`: a library call that waits for the GPU inside the library

## What it does
Flags calls into libraries that copy some of their tensor arguments to the host
before doing anything else, when those arguments are GPU tensors, and calls that
build a GPU tensor from a Python number with a blocking copy. The built-in
table covers FlashInfer's attention wrappers, whose `plan()` (alias
`begin_forward()`) reads the index pointers back to build its schedule on the
host:

| receiver class | method | arguments read on the host |
|---|---|---|
| `BatchPrefillWithPagedKVCacheWrapper` | `plan`, `begin_forward` | `qo_indptr`, `paged_kv_indptr`, `paged_kv_last_page_len`, `seq_lens` |
| `BatchPrefillWithRaggedKVCacheWrapper` | `plan`, `begin_forward` | `qo_indptr`, `kv_indptr` |
| `BatchDecodeWithPagedKVCacheWrapper` | `plan`, `begin_forward` | `indptr`, `last_page_len`, `seq_lens` |
| `BatchMLAPagedAttentionWrapper` | `plan` | `qo_indptr`, `kv_indptr`, `kv_len_arr` |
| `MultiLevelCascadeAttentionWrapper` | `plan`, `begin_forward` | `qo_indptr_arr`, `paged_kv_indptr_arr`, `paged_kv_last_page_len` |
| `PODWithPagedKVCacheWrapper` | `plan`, `begin_forward` | `indptr`, `last_page_len` |
| `BatchAttention` | `plan` | always: it calls `torch.cuda.synchronize()` |

It also covers Lightning's `LightningModule.log(name, value)` and `log_dict({...})`
given a Python number (a literal, arithmetic, `len(...)`, an `int`-typed name, the
trainer's or module's `global_step` and `current_epoch`). The receiver is a
`LightningModule` when it is `self` in a class deriving from one (through project
classes), a value of that class, or a name Lightning gives the module it trains
(`pl_module` in callbacks, `trainer.lightning_module`). Its device is the
accelerator by convention, as for the batch its step hooks receive: such findings
carry `convention` confidence.

Your own entries go in `sync-prone-calls = { "pkg.module.Class.method" = "hint" }`
(or `"pkg.module.function"`); a configured call is reported wherever it is made,
whatever its arguments: the hint is the evidence.

## Why is this bad
Source of FlashInfer 0.7.2 (the release SGLang 0.5.23 pins; vLLM 0.33 pins
0.7.2.post1, which has the same lines): `flashinfer/prefill.py` paged `plan`
l.2743 `qo_indptr_host = qo_indptr.to("cpu")` and l.2756-2757
`paged_kv_indptr.to("cpu")` / `paged_kv_last_page_len.to("cpu")`; ragged `plan`
l.4475-4476 `qo_indptr.to("cpu")` / `kv_indptr.to("cpu")`; `flashinfer/decode.py`
`_plan_impl` l.2144-2145 `indptr.to("cpu")` / `last_page_len.to("cpu")`;
`flashinfer/attention/_core.py` `BatchAttention.plan` l.211
`torch.cuda.synchronize()`. A `.to("cpu")` of a CUDA tensor is a blocking copy
that waits for every kernel queued before it (measured for `x.to('cpu')` on an
H100: 40.5 ms with 41 ms of GPU work queued). On a CPU tensor it returns the
tensor itself and costs nothing, which is why FlashInfer's own comment says the
copy is "only required if qo_indptr/paged_kv_indptr are device tensors".

Lightning's `LightningModule.log` passes every number it is given to
`__to_tensor`, which builds `torch.tensor(value, device=self.device)`
(`lightning/pytorch/core/module.py`, every release from 1.9.0 to 2.6.0; read at
the tags). `torch.tensor(5, device="cuda")` builds the scalar in pageable memory
and copies it with `non_blocking=False`: measured on an H100 (torch 2.11), it
waited for the GPU work queued before it (SL304). A training step that logs
its step counter so waits for the step's forward and backward. NeMo removed such
calls from its Megatron strategy and data sampler ("Avoid host-device sync in
PTL logging", NeMo #14489). From Lightning 2.1, a tensor is only cloned
(`value.clone().detach()`), and the result collection moves its state to the
value's device: a CPU tensor stays on the CPU. In 2.0 and earlier a tensor was
moved to the module's device too (`.to(self.device)`).

## Example
```python
qo_indptr = torch.zeros(bs + 1, dtype=torch.int32, device="cuda")
wrapper.begin_forward(qo_indptr, kv_indptr, kv_indices, last_page_len, ...)  # SL502
```

Use instead the host copies the scheduler already has, as vLLM does:
```python
wrapper.plan(qo_indptr=query_start_loc_cpu, paged_kv_indptr=paged_kv_indptr_cpu, ...)
```
or a sync-free planner (SGLang swaps in `fast_decode_plan` for CUDA-graph replay).

```python
class Model(L.LightningModule):
    def training_step(self, batch, batch_idx):
        self.log("step", self.global_step)                 # SL502
        self.log("step", torch.tensor(self.global_step))   # a CPU tensor (Lightning 2.1+)
```

## Fix safety
No automatic fix: which host copy holds the same values is the caller's knowledge.

## When to ignore
Planning that runs once per batch on purpose, outside the hot loop; logging from
a module that runs on the CPU. Mark it with `# noqa: SL502`.
"""

from __future__ import annotations

import libcst as cst

from sync_lint.rulekit import Device, Example, Fact, Rule, call_name, dotted_name, get_arg, is_python_number, \
    method_receiver

# (receiver class, method) -> (name, position) of the arguments the method reads on the host;
# an empty tuple: the method waits for the device whatever its arguments.
LIBRARY_CALLS: dict[tuple[str, str], tuple[tuple[str, int], ...]] = {}
for _method in ("plan", "begin_forward"):
    LIBRARY_CALLS[("BatchPrefillWithPagedKVCacheWrapper", _method)] = (
        ("qo_indptr", 0), ("paged_kv_indptr", 1), ("paged_kv_last_page_len", 3), ("seq_lens", -1))
    LIBRARY_CALLS[("BatchPrefillWithRaggedKVCacheWrapper", _method)] = (("qo_indptr", 0), ("kv_indptr", 1))
    LIBRARY_CALLS[("BatchDecodeWithPagedKVCacheWrapper", _method)] = (
        ("indptr", 0), ("last_page_len", 2), ("seq_lens", -1))
    LIBRARY_CALLS[("MultiLevelCascadeAttentionWrapper", _method)] = (
        ("qo_indptr_arr", 1), ("paged_kv_indptr_arr", 2), ("paged_kv_last_page_len", 4))
    LIBRARY_CALLS[("PODWithPagedKVCacheWrapper", _method)] = (("indptr", 1), ("last_page_len", 3))
LIBRARY_CALLS[("BatchMLAPagedAttentionWrapper", "plan")] = (("qo_indptr", 0), ("kv_indptr", 1), ("kv_len_arr", 3))
LIBRARY_CALLS[("BatchAttention", "plan")] = ()
LIBRARY = "flashinfer"
METHODS = frozenset(method for _, method in LIBRARY_CALLS)
# Lightning's `LightningModule.log` turns a Python number into `torch.tensor(value, device=self.device)`
# (`LightningModule.__to_tensor`, every release from 1.9 to 2.6), and `log_dict` logs each entry so.
LOGGING_METHODS = frozenset({"log", "log_dict"})
# What Lightning's callbacks and strategies call the module (`pl_module`, `trainer.lightning_module`).
LIGHTNING_MODULE_NAMES = frozenset({"pl_module", "lightning_module"})
# The trainer's and the module's step and epoch counters: Python ints.
LIGHTNING_COUNTERS = frozenset({"global_step", "current_epoch"})


class SyncProneCall(Rule):
    code = "SL502"
    name = "sync-prone-call"
    summary = ("A library call that waits for the GPU: it copies GPU tensor arguments to the host (FlashInfer "
               "`plan`, configured calls) or a Python number to the GPU (Lightning's `self.log`)")
    triggers = ("plan(", "begin_forward(", ".log(", ".log_dict(")
    triggered_by_configured_calls = True
    fix_availability = "none"
    syncs_in = "FlashInfer 0.7.2 and 0.7.2.post1 (read in the wheels' source); Lightning 1.9.0 to 2.6.0 (read at the tags)"
    examples = (
        Example(
            "import torch\nfrom flashinfer import BatchPrefillWithRaggedKVCacheWrapper\n\n"
            "def f(w: BatchPrefillWithRaggedKVCacheWrapper, n):\n"
            "    qo = torch.zeros(n, device='cuda')\n"
            "    w.plan(qo, qo)\n", (6,)),
        Example(
            "import torch\nfrom flashinfer import BatchPrefillWithRaggedKVCacheWrapper\n\n"
            "def f(w: BatchPrefillWithRaggedKVCacheWrapper, n):\n"
            "    qo = torch.zeros(n)\n"
            "    w.plan(qo, qo)\n"),
        Example(
            "import lightning.pytorch as pl\n\n"
            "class Model(pl.LightningModule):\n"
            "    def training_step(self, batch, batch_idx):\n"
            "        self.log('step', self.global_step)\n"
            "        self.log('n', len(batch))\n"
            "        return batch.sum()\n", (5, 6)),
        Example(
            "import lightning.pytorch as pl\n\n"
            "class Model(pl.LightningModule):\n"
            "    def training_step(self, batch, batch_idx):\n"
            "        loss = batch.sum()\n"
            "        self.log('loss', loss)\n"
            "        return loss\n\n"
            "def report(logger, n: int):\n"
            "    logger.log('n', n)\n"),
    )

    def visit_Call(self, node: cst.Call) -> None:
        configured = self._configured(node)
        if configured is not None:
            name, hint = configured
            self.report(node, f"`{name}` is sync-prone: {hint}", evidence=f"configured in `sync-prone-calls`: {name}")
            return
        method = call_name(node)
        receiver = method_receiver(node)
        if receiver is not None and method in LOGGING_METHODS:
            self._lightning_log(node, receiver, method)
            return
        if receiver is None or method not in METHODS:
            return
        owner = self.ctx.devices.fact(receiver)
        cls = self._library_class(owner, method)
        if cls is None:
            return
        arguments = LIBRARY_CALLS[(cls, method)]
        if not arguments:
            self.report(node, f"`{cls}.{method}` calls `torch.cuda.synchronize()` whatever its arguments: it waits "
                        "for all GPU work", evidence=f"`{self.ctx.code(receiver)}` is a `{cls}`")
            return
        for name, position in arguments:
            arg = get_arg(node, name, position if position >= 0 else None)
            fact = self.gpu_fact(arg.value) if arg is not None else None
            if fact is not None:
                self._report_argument(node, cls, method, name, fact)
                return

    def _report_argument(self, node: cst.Call, cls: str, method: str, name: str, fact: Fact) -> None:
        self.report(
            node,
            f"`{cls}.{method}` copies `{name}` to the host with a blocking `.to(\"cpu\")`, and it is a GPU tensor: "
            "the call waits for all queued GPU work; pass the host copy (a `_cpu` tensor) the scheduler already has",
            fact=fact,
        )

    def _lightning_log(self, node: cst.Call, receiver: cst.BaseExpression, method: str) -> None:
        # The number first: most `.log(` calls (`torch.log(x)`, `x.log()`, `logger.log(level, msg)`) give
        # none, and need no fact of their receiver.
        number = self._logged_number(node, method)
        if number is None:
            return
        module = self._lightning_module(receiver)
        if module is None:
            return
        text = self.ctx.code(number)
        self.report(
            node,
            f"`LightningModule.{method}` turns the number `{text}` into `torch.tensor(value, device=self.device)`: "
            "a blocking copy from pageable memory to the module's device, which waits for all queued GPU work; "
            f"log a tensor instead (a CPU one, `torch.tensor({text})`, stays on the CPU from Lightning 2.1)",
            fact=module,
        )

    def _lightning_module(self, receiver: cst.BaseExpression) -> Fact | None:
        """The receiver's device when it is a `LightningModule`: the accelerator it is trained on, by
        convention (as the batch its step hooks receive)."""
        spelled = dotted_name(receiver)
        code = self.ctx.code(receiver)
        if self.ctx.devices.lightning_module(self.ctx.devices.fact(receiver)):
            why = f"`{code}` is a `LightningModule`"
        elif spelled is not None and spelled.rsplit(".", 1)[-1] in LIGHTNING_MODULE_NAMES:
            why = f"`{code}` is named as Lightning names the module it trains"
        else:
            return None
        return Fact(Device.GPU, convention=True, origin=receiver,
                    reason=f"{why}, trained on the accelerator by convention")

    def _logged_number(self, node: cst.Call, method: str) -> cst.BaseExpression | None:
        """The Python number `log` is given (`log_dict`: the first among the values of a dict display)."""
        if method == "log":
            arg = get_arg(node, "value", 1)
            values = [arg.value] if arg is not None else []
        else:
            arg = get_arg(node, "dictionary", 0)
            values = [element.value for element in arg.value.elements if isinstance(element, cst.DictElement)] \
                if arg is not None and isinstance(arg.value, cst.Dict) else []
        return next((value for value in values if self._number(value)), None)

    def _number(self, value: cst.BaseExpression) -> bool:
        if isinstance(value, cst.Attribute) and value.attr.value in LIGHTNING_COUNTERS:
            return True  # `self.global_step`, `trainer.current_epoch`
        return is_python_number(self.ctx, value)

    @staticmethod
    def _library_class(owner: Fact, method: str) -> str | None:
        """The FlashInfer wrapper class the receiver is an instance of, when the table lists its method."""
        for ref in sorted(owner.refs):
            short = ref.rsplit(".", 1)[-1]
            if ref.split(".")[0] == LIBRARY and (short, method) in LIBRARY_CALLS:
                return short
        return None

    def _configured(self, node: cst.Call) -> tuple[str, str] | None:
        calls = self.ctx.settings.sync_prone_calls
        if not calls:
            return None
        qualified = self.ctx.imports.resolve(node.func)
        method = call_name(node)
        receiver = method_receiver(node)
        owner = self.ctx.devices.fact(receiver) if receiver is not None and qualified is None else None
        for name, hint in calls:
            if qualified is not None and qualified == name:
                return name, hint
            if owner is not None and method == name.rsplit(".", 1)[-1] and any(
                    f"{ref}.{method}" == name or name.endswith(f".{ref.rsplit('.', 1)[-1]}.{method}")
                    for ref in owner.refs):
                return name, hint
        return None
