"""# SL502 `sync-prone-call`: a library call that reads its GPU tensor arguments on the host

## What it does
Flags calls into libraries that copy some of their tensor arguments to the host
before doing anything else, when those arguments are GPU tensors. The built-in
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

## Fix safety
No automatic fix: which host copy holds the same values is the caller's knowledge.

## When to ignore
Planning that runs once per batch on purpose, outside the hot loop. Mark it with
`# noqa: SL502`.
"""

from __future__ import annotations

import libcst as cst

from sync_lint.rulekit import Example, Fact, Rule, call_name, get_arg, method_receiver

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


class SyncProneCall(Rule):
    code = "SL502"
    name = "sync-prone-call"
    summary = "A library call that copies its GPU tensor arguments to the host (FlashInfer `plan`, configured calls)"
    triggers = ("plan(", "begin_forward(")
    triggered_by_configured_calls = True
    fix_availability = "none"
    syncs_in = "FlashInfer 0.7.2 and 0.7.2.post1 (read in the wheels' source)"
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
    )

    def visit_Call(self, node: cst.Call) -> None:
        configured = self._configured(node)
        if configured is not None:
            name, hint = configured
            self.report(node, f"`{name}` is sync-prone: {hint}", evidence=f"configured in `sync-prone-calls`: {name}")
            return
        method = call_name(node)
        receiver = method_receiver(node)
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
