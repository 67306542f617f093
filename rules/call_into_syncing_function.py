"""# SL601 `call-into-syncing-function`: a call into a function that syncs, one or more calls down

## What it does
Flags a call site inside a hot function (one reachable from a hot-path root, see
`docs/hot-paths.md`) whose callee reaches a sync through calls: a finding of
another rule one, two or more calls below; and, anywhere else, a call into
another module whose callee syncs on every call within three calls. The message
names the callee, the chain down to the nearest syncing line and where that line is:

```
runner.py:12:9: SL601 call into `build` reaches a sync 2 calls down:
  execute_model → build → compute_metadata → `seq_lens.max().item()` (SL101) at utils.py:31
```

A `with` statement is a call too: `with MemoryProfiler():` calls the context
manager's `__enter__` on entry and its `__exit__` on leaving (`__aenter__` and
`__aexit__` for `async with`), so a project class whose methods wait (vLLM's
`DeviceMemoryProfiler` empties the cache on entry and exit, a timer synchronizes
in `__exit__`) is reported at the `with` line: "the `with` statement's call of
`MemoryProfiler.__enter__` reaches a sync 1 call down". A context manager made by a
`@contextmanager` function is the call of that function, followed as any call.

Roots are the functions named in `hot-paths` (`pkg.mod:Class.method`), `def`s
marked `# sync-lint: hot`, and (unless `hot-path-defaults = []`) the `forward` of
`torch.nn.Module` subclasses, `torch.compile`d functions and calls captured in
`with torch.cuda.graph(...)`.

Off hot paths (code no root reaches, or a project with no roots configured) a
call site is reported when its callee lies in another module and reaches, one to
three calls down, a sync that runs on every call (the same test as default mode's
below), with "the host waits here each time this line runs". The sync is out of
sight of the file that makes the call: vLLM marks such calls as known syncs
(`prepare_tensors(...)` in its LoRA wrapper), and readers of SGLang files, asked
where the host waits, named them (`build_watermark_batch_config(...)`). A call
into the same module is not reported there (the sync is reported in that file),
nor a function handed to a call or bound by `functools.partial` (it may run later,
or never), nor a chain that needs a branch taken, even with `--strict`, nor a call
that does not itself supply what makes the line below wait: one the graph resolves
to several methods through a class that declares none (a subclass's own, or one a
subclass inherits through a mixin) unless each of them syncs; one that passes a CPU
tensor where another caller passes the GPU tensor the sync reads (its evidence says
"1 of 2 sources, the rest on another device"), or, where several callers pass GPU
tensors ("2 of 11 sources, ..."), one that passes a host tensor, or a tensor of unknown
device where most callers pass host tensors (SGLang's host-pool `free(host_indices)`
with indices from a CPU free list, while 2 of 11 callers free GPU-held slots; its
diffusion models' masks of unknown device handed to `build_varlen_mask_meta`, which 8
of 14 callers give GPU masks, are still reported); one that passes only None or host
values where the evidence names another call as the source of the GPU value (a
constructor's `rope_init_fn(config, device)` with a `device=None` nobody passes, while
a refresh in `forward` passes the input's device); one that passes a parameter whose
None makes the callee compute the value on the device (`if lens_sum is None:
lens_sum = cum[-1]`). Nor, anywhere, a call that passes a value certainly not None to a
parameter whose None is what runs the sync (`grid_thws.tolist() if grid_thw_list is None
else grid_thw_list`, called with a required field every construction fills). A call
nested in another on its line is read for its own arguments: `EncoderDecoderCache(DynamicCache(
config=c), DynamicCache(config=c))` leaves `DynamicCache`'s `ddp_cache_data` None, so the
`update` calls behind `if ddp_cache_data is not None:` are no chain from that line. Nor
is a block that runs only for another number of `*args` than the call gives:
`EncoderDecoderCache(self_cache, cross_cache)` never takes `if len(caches) == 1:`, which
rebuilds both caches from a legacy tuple (280 `--strict` chains on transformers 5.23 went
through it). Nor,
anywhere, a chain through a module that replaces the torch function the sync at its end calls (`torch.accelerator.synchronize = noop`
in the constructor of vLLM's V1 CPU runner, which then runs the GPU runner's
inherited methods), or whose `import a.b.c` loads a module that replaces it at
import (vLLM's CPU worker and `cpu/shm.py`). The last three hold on hot paths
too, and so does this: no chain goes through a call made where the code runs only off CUDA (an
arm of `if is_npu():` or `if not x.is_cuda:`, or of `if use_torch_reference(buf.device):`, a
project function returning such a test; `docs/device-inference.md`), and a sync in a function
that deployed code calls only there is reported only with `--strict`, so a test's call into it is
not reported either (SGLang's differential tests of its torch reference kernels). Three
calls bound what a check of one file reads: the files those calls reach are checked
too. Read one by one (the twenty-fourth audit, 60 drawn from vLLM 0.33 and
transformers 5.23): 48 real, 4 intended, 7 false, 1 undecided. Most run once, at
start-up, model load or per `generate` call, or in a mode; the false ones are code
that never runs (3), a callee the call does not reach (2: a method of another
class of the same name), and a base-class method reached from a subclass whose
device is the CPU, or that every GPU subclass overrides (2).

Default mode reports a chain only when it syncs on every pass: no call on the way
down and not the sync itself sits in a block that runs on some calls only (an `if`
or `else` arm, the rest of a block after an `if` whose body ends in `return`,
`break` or `continue`, an `except`, a `case`), nor in a function cached with
`functools.lru_cache`, `functools.cache` or
cachetools' `cached`, whose body runs on the first call with each new argument
(six such chains, read in earlier audits, were real once per device and not on every
pass). An `if` that ends in `raise` is not such a test: the lines after `if bad:
raise ...` run on every pass that succeeds (the 61 chains this added on vLLM 0.33
and transformers 5.23, read one by one: 40 real, 16 intended, 5 false). A `return`
nested deeper (an `if` inside the `if`) is one only when it hands back one of the
function's parameters as it came in (`return pe`): transformers' `extend_pe(x, pe)`
returns the table it was given when it is long enough, and rebuilds it only for
longer inputs, while `get_vision_window_index` returns from the same depth indices its
callers almost never precompute, and what follows runs on every pass. Counting every
nested return had dropped 10 chains into the table rebuilds, read false where read,
and 12 others, 10 of them through `get_vision_window_index` (audits had read 7 of
those, all real); counting only the returns that hand back a parameter drops 11
chains on transformers 5.23, all into the rebuilds (5 had been read, all false), and
nothing else there or on vLLM 0.33.
A call site that itself sits behind a test in the hot function is reported,
as any line there is, and its message says the host waits each time that line runs,
not on every pass (audit readers found "every pass" on calls behind `if _runner is
None:`, which run once per process). A longer chain that syncs on every pass is
reported instead of a nearer one behind a branch. `--strict` adds the chains that need a branch taken, with
`confidence: "strict"` and the first test they need in the message ("the host waits
here on the passes that take the branch at ops.py:9"). Measured by reading them one
by one in transformers 5.23 and vLLM 0.33 (two audits, 48 SL601 findings): 5 of 6
chains that sync on every pass were real, 12 of 42 behind a branch (padding-free
training without a cache, a first call, image-only passes; most of the rest were
branches that the default configuration never takes). A fresh draw afterwards (the
eighth audit and its `--strict` twin) read 4 of 4 default-mode chains as real, 1 more
as false (a loss method nothing calls), and 7 of 12 chains behind a branch as real,
each in a mode. A hop into a subclass's override (`self.backend: Backend` reaching
`CudaBackend.run`) is a guess about which subclass arrives, like a branch: such
chains are `--strict` only too. The two default-mode ones the fourteenth and
fifteenth audits drew (DeepEP's `weight_and_reduce_impl.apply` reaching the one
subclass that syncs) were both false: the callers never pass that subclass there.
The sync below is reported where it is in either mode.

## Why is this bad
A sync in a helper blocks every caller: the host waits for the GPU at the helper's
line whenever the hot path runs, yet the reviewer of the hot function sees only a
call. In one vLLM model's metadata builder a 30 ms stall sat inside a helper in
another module; it was found only in a profile. The cost is the cost of the sync
below (see its rule: SL101 `.item()` blocked 40.5 ms behind 41 ms of queued work
on an H100), paid once per call of the hot path, or once per layer when the
chain passes through a module called in a loop.

## Example
```python
# runner.py
from pkg.metadata import build

class Runner:
    def execute_model(self, batch):  # sync-lint: hot
        return build(batch)  # SL601: build → seq_lens.max().item() at metadata.py:6
```

Use instead: fix the sync below (the rule that flags it says how), or, when it
is intended, allow it where it is (`with gpu_sync_allowed():` or
`# noqa: SL101` on the line) and no caller reports it again.

## Fix safety
No automatic fix: the sync is in another function, often another file.

## When to ignore
The call is on a path that runs once (start-up, a cold branch the graph cannot
tell apart). Suppress one call site with `# noqa: SL601` or by calling it inside
`with gpu_sync_allowed():`; either stops the report at every caller above it.
A baseline entry for the call site does the same.
"""

from __future__ import annotations

from sync_lint.rulekit import Example, Rule


class CallIntoSyncingFunction(Rule):
    code = "SL601"
    name = "call-into-syncing-function"
    summary = "a call into a function that syncs, one or more calls down (on hot paths, or into another module)"
    # Reported after the run from the call graph (sync_lint/hotpaths.py): the walk never runs it.
    project_rule = True
    triggers = ("def ",)
    syncs_in = "wherever the sync below it syncs (see that rule)"
    examples = (
        Example(
            "import torch\n\n\ndef helper(n):\n    t = torch.zeros(n, device='cuda')\n"
            "    return t.max().item()\n\n\ndef step(n):  # sync-lint: hot\n    return helper(n)\n",
            (10,),
        ),
        Example(
            "import torch\n\n\ndef helper(n):\n    t = torch.zeros(n, device='cuda')\n"
            "    return t.max().item()  # noqa: SL101\n\n\ndef step(n):  # sync-lint: hot\n    return helper(n)\n",
        ),
        Example(
            "import torch\n\n\ndef helper(n):\n    t = torch.zeros(n, device='cuda')\n"
            "    return t.max().item()\n\n\ndef cold(n):\n    return helper(n)\n",
        ),
    )
