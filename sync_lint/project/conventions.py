"""Conventions a module teaches on its own: what each attribute it stores holds, seen locally.

`self.seq_lens = torch.zeros(n, device=self.device)` says, without looking at any
other file, that this store puts a GPU tensor into `seq_lens`. Counted over the
whole repository ("stored from GPU tensors at 14 of 15 sites") this becomes a
convention the inference can use for an `x.seq_lens` whose class it cannot tell.
Computed once per file when it is summarised, so that asking costs a database
sum, not a pass over every module.
"""

from __future__ import annotations

from sync_lint.analysis.facts import Device
from sync_lint.project.index import ProjectIndex
from sync_lint.project.infer import Context, Inference, _informative
from sync_lint.project.summary import ModuleSummary


def local_conventions(summary: ModuleSummary) -> dict[str, tuple]:
    """attr -> (GPU stores, CPU stores, informative stores, GPU example, CPU example), examples (line, reason)."""
    inference = Inference(ProjectIndex.from_summaries([summary]))
    out: dict[str, list] = {}
    for store in summary.stores:
        function = summary.functions.get(store.function) if store.function else None
        try:
            fact = inference.eval(store.value, Context(summary, function, mode="shallow"))
        except RecursionError:
            continue
        counts = out.setdefault(store.attr, [0, 0, 0, None, None])
        if not _informative(fact):
            continue
        counts[2] += 1
        if fact.by_convention or not fact.is_tensor:
            continue
        if fact.device is Device.GPU:
            counts[0] += 1
            counts[3] = counts[3] or (store.line, fact.reason)
        else:
            counts[1] += 1
            counts[4] = counts[4] or (store.line, fact.reason)
    return {attr: tuple(counts) for attr, counts in out.items() if counts[2]}
