"""SL301-SL304 and SL401 beyond the fixtures: strict mode, torch-version gating,
evidence text, fix applicability, and the device-analysis facts these rules rely on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from fixture_support import FIXTURE_TORCH, lint_text
from sync_lint.config import Settings
from sync_lint.fix import fix_source
from sync_lint.registry import all_rules


def findings(source: str, code: str, **settings: object):
    result = lint_text(textwrap.dedent(source), **settings)
    assert not result.errors, result.errors
    return [d for d in result.diagnostics if d.code == code]


def lines(source: str, code: str, **settings: object) -> list[int]:
    return [d.start.row for d in findings(source, code, **settings)]


def fixed(source: str, unsafe: bool = False) -> str:
    rules = [r for r in all_rules().values() if r.active_for_torch(FIXTURE_TORCH)]
    outcome = fix_source(textwrap.dedent(source), "t.py", rules, Settings(target_torch_version=FIXTURE_TORCH), unsafe=unsafe)
    assert outcome.errors == []
    return outcome.new_source


# --- SL301 -------------------------------------------------------------------------------------

UNKNOWN_RANK = """
def f(x_gpu, n: int):
    x_gpu[0] = n
"""


def test_sl301_unknown_rank_only_in_strict_mode():
    assert lines(UNKNOWN_RANK, "SL301") == []
    assert lines(UNKNOWN_RANK, "SL301", strict=True) == [3]


def test_sl301_strict_fix_on_an_unknown_tensor_is_unsafe():
    source = "import torch\ndef f(buf: torch.Tensor, n: int):\n    buf[0] = n\n"
    [finding] = findings(source, "SL301", strict=True)
    assert finding.fix.applicability == "unsafe"


# The gate the docs' evidence names: every release through 2.14.1 syncs, 2.15.0 does not.
@pytest.mark.parametrize("version, active", [("2.11", True), ("2.13", True), ("2.13.0+cpu", True), ("2.14.1", True),
                                             ("2.15", False), ("2.15.0", False), ("2.16", False)])
def test_sl301_is_gated_on_the_torch_version(version, active):
    source = "import torch\nt = torch.zeros(4, device='cuda')\nt[0] = 1\n"
    assert lines(source, "SL301", target_torch_version=version) == ([3] if active else [])


def test_sl301_rank_from_size_arithmetic_and_range_loops():
    source = """
    import torch

    def f(num_reqs: int, device):
        qsl = torch.zeros(num_reqs + 1, dtype=torch.int32, device=device)
        for i in range(num_reqs):
            qsl[i] = i
        shaped = torch.zeros(shape_of(num_reqs), device=device)
        shaped[0] = 1
    """
    assert lines(source, "SL301") == [7]


def test_sl301_lists_and_strings_are_not_numbers():
    source = """
    import torch

    def f(names: list, label: str, device):
        t = torch.zeros(4, device=device)
        t[0] = names
        t[1] = label
        ids = [0, 1]
        t[2] = ids
        n = len(names) - 1
        t[3] = n
    """
    assert lines(source, "SL301") == [11]


def test_sl301_fix_keeps_comments_and_parentheses():
    source = """
    import torch

    def f(device):
        t = torch.zeros(4, device="cuda")
        t[0] = (  # why
            1
        )  # after
    """
    assert "t[0].fill_((  # why\n        1\n    ))  # after" in fixed(source)


# --- SL302 -------------------------------------------------------------------------------------

GPU_INDEX = """
import torch
t = torch.zeros(8, device="cuda")
idx = t.argsort()
t[idx] = 0
mask_cpu = torch.arange(8) > 2
t[mask_cpu] = 1
rows = t[[0, 1]]
"""


def test_sl302_scalar_value_forms_are_gated_but_list_indices_are_not():
    assert lines(GPU_INDEX, "SL302") == [5, 7, 8]
    assert lines(GPU_INDEX, "SL302", target_torch_version="2.14.1") == [5, 7, 8]
    assert lines(GPU_INDEX, "SL302", target_torch_version="2.15") == [8]


def test_sl302_gpu_index_of_unknown_dtype_needs_strict():
    source = "import torch\nt = torch.zeros(8, device='cuda')\ndef f(idx_gpu):\n    t[idx_gpu] = 0\n"
    assert lines(source, "SL302") == []
    assert lines(source, "SL302", strict=True) == [4]


def test_sl302_a_list_filled_by_append_is_a_list_index_unless_it_holds_tensors():
    source = textwrap.dedent("""
    import torch
    def f(seqs, n):
        bias = torch.zeros(10, device="cuda")
        single = []
        for s in seqs:
            single.append(s[0])
        bias[single] = 1.0
        rows = []
        for i in range(n):
            rows.append(torch.arange(i, device="cuda"))
        return bias[rows]
    """)
    assert lines(source, "SL302") == [8]  # numbers: a CPU tensor built and copied; GPU index tensors: none


def test_sl302_fix_only_for_a_plain_target():
    source = "import torch\nt = torch.zeros(8, device='cuda')\nidx = t.argsort()\nt[idx] = 0\nt.clone()[idx] = 0\n"
    fixes = [d.fix for d in findings(source, "SL302")]
    assert fixes[0] is not None and fixes[0].applicability == "safe"
    assert fixes[1] is None


# --- SL303 -------------------------------------------------------------------------------------

SEED = """
def build(common, query_start_loc, n: int):
    has_initial_states_cpu = common.context_lens_cpu[:n] > 0
    return has_initial_states_cpu.to(query_start_loc.device)
"""


def test_sl303_evidence_names_the_cpu_source():
    [finding] = findings(SEED, "SL303")
    assert "`has_initial_states_cpu` is on the CPU" in finding.evidence
    assert finding.fix.applicability == "unsafe"  # the destination is a variable


@pytest.mark.parametrize("signature, destination, confidence", [
    # A call that leaves the default moves nothing: the accelerator is only a convention.
    ("device=None", "device", "convention"),
    ("device: torch.device | None = None", "device", "convention"),
    ("device: Optional[torch.device] = None", "device=device", "convention"),
    ("device", "device", "high"),
    ("device: torch.device", "device", "high"),
    ("device=None", "'cuda'", "high"),
])
def test_sl303_destination_that_defaults_to_none_is_a_convention(signature, destination, confidence):
    source = (f"import torch\nfrom typing import Optional\n\ndef f({signature}):\n"
              f"    return torch.arange(8).to({destination})\n")
    [finding] = findings(source, "SL303")
    assert finding.confidence == confidence


COPIES = ["x.to('cuda')", "x.cuda()", "x.to(torch.device('cuda:1'))", "x.to(device)",
          "torch.zeros(4, device='cuda').copy_(x)", "torch.zeros(4, device=device).copy_(x)"]


@pytest.mark.parametrize("copy", COPIES)
def test_sl303_small_known_copy_gets_a_safe_non_blocking_fix(copy):
    source = f"import torch\ndef f(device):\n    x = torch.ones(4)\n    return {copy}\n"
    [finding] = findings(source, "SL303")
    assert "holds at most 16 B" in finding.message
    assert finding.fix.applicability == "safe" and "pin_memory" not in fixed(source)
    assert "non_blocking=True" in fixed(source)


@pytest.mark.parametrize("copy", COPIES)
def test_sl303_per_call_pin_is_unsafe_and_states_its_cost(copy):
    source = f"import torch\ndef f(device, n: int):\n    x = torch.ones(n)\n    return {copy}\n"
    [finding] = findings(source, "SL303")
    assert finding.fix.applicability == "unsafe"
    assert "cudaHostAlloc" in finding.fix.message and "14 ms at 16-19 MB" in finding.fix.message
    literal = "device)" not in copy and "device=device" not in copy
    assert ("needs an accelerator" in finding.fix.message) is not literal
    assert ".pin_memory()" in fixed(source, unsafe=True)


def test_sl303_pinned_source_gets_an_unsafe_non_blocking_fix():
    source = "import torch\nx = torch.ones(4).pin_memory()\ny = x.to('cuda')\n"
    [finding] = findings(source, "SL303")
    assert finding.fix.applicability == "unsafe"
    assert "does not write the pinned source" in finding.fix.message
    assert fixed(source, unsafe=True).endswith("y = x.to('cuda', non_blocking=True)\n")


@pytest.mark.parametrize("shape, reported, says", [
    ("4", False, ""),  # 16 B: never blocked
    ("16384", False, ""),  # exactly 64 KB
    ("16385", True, "just above the 64 KB"),
    ("(256, 1024)", True, "when repeated (measured from about 80 KB)"),
    ("1048576", True, "every time (measured from about 2.5 MB)"),
    ("n", True, "may block when large or repeated"),
])
def test_sl303_pageable_non_blocking_copy_is_judged_by_its_size(shape, reported, says):
    source = f"import torch\ndef f(n: int):\n    return torch.ones({shape}).to('cuda', non_blocking=True)\n"
    found = findings(source, "SL303")
    assert bool(found) is reported
    if reported:
        assert "staged" in found[0].message and says in found[0].message


def test_sl303_size_of_a_slice_a_bound_name_and_a_literal_list():
    source = """
    import torch

    def f(n: int):
        staging = torch.zeros(1 << 20, dtype=torch.int64)
        a = torch.zeros(1024, dtype=torch.int64)[:n].to("cuda", non_blocking=True)
        b = torch.tensor([[1, 2], [3, 4]]).to("cuda", non_blocking=True)
        host = torch.empty(32, 32, dtype=torch.float16)
        c = host.cuda(non_blocking=True)
        d = host[torch.tensor([0, 0, 0])].cuda(non_blocking=True)
        e = staging[:8].cuda(non_blocking=True)
    """
    assert lines(source, "SL303") == [10, 11]  # advanced indexing, and `1 << 20` is not a literal


STAGED = """
import torch

class Builder:
    def __init__(self, device):
        self.batch_ptr = torch.full((1024,), -1, dtype=torch.int32, device=device)
        self.batch_ptr_cpu = torch.zeros(1024, dtype=torch.int32, pin_memory=True)
        self.pos = torch.zeros(1024, dtype=torch.int64, device=device)

    def build(self, mlist_cpu, pos_cpu, k: int):
        self.batch_ptr[0 : len(mlist_cpu)].copy_(mlist_cpu)
        self.batch_ptr[k : k + 1].copy_(mlist_cpu[:1], non_blocking=True)
        self.batch_ptr[self.next()].copy_(mlist_cpu)
        self.pos.copy_(pos_cpu)
"""


def test_sl303_copy_into_a_tensor_with_a_pinned_mirror_is_staged_through_it():
    found = findings(STAGED, "SL303")
    assert [f.start.row for f in found] == [11, 13, 14]  # a `non_blocking` copy of unknown pinning is strict-only
    staged, impure, no_mirror = (f.fix for f in found)
    assert staged.applicability == "unsafe" and "the pinned buffer `self.batch_ptr_cpu`" in staged.message
    assert "must not write it again until the copy has run" in staged.message
    assert "pin_memory()" in impure.edits[0].content and "pin_memory()" in no_mirror.edits[0].content
    out = fixed(STAGED, unsafe=True)
    assert ("self.batch_ptr[0 : len(mlist_cpu)].copy_(self.batch_ptr_cpu[0 : len(mlist_cpu)].copy_(mlist_cpu), "
            "non_blocking=True)") in out
    assert lines(out, "SL303") == []
def test_sl303_optional_buffer_is_the_gpu_tensor_it_becomes():
    source = """
    import numpy as np
    import torch

    def f(nums, device):
        buf = None
        for _ in [8]:
            src = torch.from_numpy(np.arange(nums))
            if buf is None:
                buf = torch.full((64,), -1, dtype=torch.int32, device=device)
            buf[:4].copy_(src)
    """
    assert lines(source, "SL303") == [11]


# --- SL304 -------------------------------------------------------------------------------------


def test_sl304_number_literal_fix_is_safe_and_name_fix_is_not():
    source = "import torch\ndef f(v: float, device):\n    a = torch.tensor(2.5, device=device)\n    b = torch.tensor(v, device=device)\n"
    a, b = findings(source, "SL304")
    assert (a.fix.applicability, b.fix.applicability) == ("safe", "unsafe")


def test_sl304_keeps_the_files_torch_alias():
    source = "import torch as th\ndef f(buf_gpu, device):\n    a = th.tensor(3, device=device)\n    b = buf_gpu.new_tensor([1, 2])\n"
    out = fixed(source, unsafe=True)
    assert "a = th.full((), 3, device=device)" in out
    assert "b = th.tensor([1, 2], dtype=buf_gpu.dtype).to(buf_gpu.device, non_blocking=True)" in out
    assert "import torch\n" not in out


def test_sl304_small_literal_data_is_copied_from_pageable_memory_safely():
    source = ("import torch\ndef f(device, rows: list):\n"
              "    a = torch.tensor([[0, 2], [5, -7]], dtype=torch.int32, device=device)\n"
              "    b = torch.as_tensor((0.5, 1.5), device=device)\n"
              "    c = torch.tensor(rows, device='cuda')\n")
    a, b, c = findings(source, "SL304")
    assert "it holds 16 B of literal data" in a.message and a.fix.applicability == "safe"
    assert b.fix.applicability == "safe"
    assert c.fix.applicability == "unsafe" and "cudaHostAlloc" in c.fix.message
    assert "needs an accelerator" not in c.fix.message  # `'cuda'` is literally one
    out = fixed(source)
    assert "a = torch.tensor([[0, 2], [5, -7]], dtype=torch.int32).to(device, non_blocking=True)" in out
    assert "b = torch.as_tensor((0.5, 1.5)).to(device, non_blocking=True)" in out
    assert "c = torch.tensor(rows, device='cuda')" in out  # unsafe: only with --unsafe-fixes
    assert lines(out, "SL303") == []


def test_sl304_as_tensor_of_unknown_data_is_quiet():
    source = "import torch\ndef f(x, device):\n    return torch.as_tensor(x, device=device)\n"
    assert lines(source, "SL304") == []


# --- SL401 -------------------------------------------------------------------------------------


def test_sl401_stream_attribute_from_init_with_evidence():
    source = """
    import torch

    class Runner:
        def __init__(self):
            self.side = torch.cuda.Stream()

        def step(self):
            self.side.synchronize()
    """
    [finding] = findings(source, "SL401")
    assert finding.start.row == 9
    assert "`self.side` is a torch stream" in finding.evidence


def test_sl401_aliases_and_look_alikes():
    source = """
    import torch as th
    from threading import Event

    th.cuda.synchronize()
    ev = Event()
    ev.wait()
    th.cuda.Event().synchronize()
    """
    assert lines(source, "SL401") == [5, 8]


def test_non_blocking_copy_from_memory_of_unknown_pinning_is_strict_only() -> None:
    from fixture_support import actual_findings

    source = (
        "import torch\n"
        "def f(device, n, pin, lens_cpu):\n"
        "    staging = torch.zeros(n, pin_memory=pin)\n"
        "    a = staging.to(device, non_blocking=True)\n"
        "    b = lens_cpu.to(device, non_blocking=True)\n"
        "    c = torch.zeros(n).to(device, non_blocking=True)\n"  # proven pageable
    )
    assert {row for row, code in actual_findings(source) if code == "SL303"} == {6}
    assert {row for row, code in actual_findings(source, strict=True) if code == "SL303"} == {4, 5, 6}


def test_pinning_flags_that_hold_with_a_gpu_pin() -> None:
    """`pin_memory=PIN_MEMORY` and `is_pin_memory_available()` are false only where nothing can be
    pinned (WSL, a CPU-only build): on a machine with a GPU the buffer is pinned, and a test that it
    is pinned (`PIN_MEMORY and not t.is_pinned()`, failing) or on the host (`assert t.is_cpu`) keeps
    that. vLLM's `async_tensor_h2d`, which 156 strict SL601 chains in vLLM 0.33 reached, is below."""
    from fixture_support import actual_findings

    source = (
        "import torch\n"  # 1
        "from vllm.utils.torch_utils import PIN_MEMORY, is_pin_memory_available\n"
        "def async_tensor_h2d(data, device):\n"
        "    if isinstance(data, torch.Tensor):\n"
        "        t = data\n"  # 5
        "        if PIN_MEMORY and not t.is_pinned():\n"
        "            t = torch.empty(t.shape, device='cpu', pin_memory=True)\n"
        "    else:\n"
        "        t = torch.tensor(data, pin_memory=PIN_MEMORY, device='cpu')\n"
        "    assert t.is_cpu\n"  # 10
        "    return t.to(device, non_blocking=True)\n"
        "def staged(n, device, pin):\n"
        "    a = torch.zeros(n, pin_memory=is_pin_memory_available()).to(device, non_blocking=True)\n"
        "    b = torch.zeros(n, pin_memory=pin).to(device, non_blocking=True)\n"
        "    c = torch.zeros(n, pin_memory=PIN_MEMORY).to(device)\n"  # 15: pinned, but blocking
        "    return a, b, c\n"
    )
    assert {row for row, code in actual_findings(source, strict=True) if code == "SL303"} == {14, 15}


def test_a_branch_on_a_pinning_flag_takes_its_pinned_arm(tmp_path) -> None:
    """`x.pin_memory() if PIN_MEMORY else x` and `if PIN_MEMORY: t = t.pin_memory()` are pinned on a
    machine with a GPU, in the file and through the project's summaries (vLLM's `np_to_pinned_tensor`)."""
    from fixture_support import actual_findings, check_small_project

    source = (
        "import torch\n"  # 1
        "from vllm.utils.torch_utils import PIN_MEMORY\n"
        "def staged(array):\n"
        "    t = torch.from_numpy(array)\n"
        "    if PIN_MEMORY:\n"  # 5
        "        t = t.pin_memory()\n"
        "    a = t.to('cuda', non_blocking=True)\n"
        "    b = (t.pin_memory() if PIN_MEMORY else t).to('cuda', non_blocking=True)\n"
        "    c = torch.from_numpy(array).to('cuda', non_blocking=True)\n"  # pageable
        "    d = t.to('cuda')\n"  # 10: pinned, but a blocking copy still waits
        "    return a, b, c, d\n"
    )
    assert {row for row, code in actual_findings(source, strict=True) if code == "SL303"} == {9, 10}
    found = check_small_project(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/utils.py": "import torch\n\nPIN_MEMORY = True\n\n\ndef np_to_pinned_tensor(array):\n"
                        "    t = torch.from_numpy(array)\n    return t.pin_memory() if PIN_MEMORY else t\n",
        "pkg/use.py": "from pkg.utils import np_to_pinned_tensor\n\n\ndef load(array):\n"
                      "    return np_to_pinned_tensor(array).to('cuda', non_blocking=True)\n",
    }, strict=True)
    assert [(Path(d.path).name, d.start.row) for d in found if d.code == "SL303"] == []


def test_sl303_evidence_names_why_the_destination_is_the_accelerator():
    # The host source alone does not make a host-to-device copy: the evidence says why the target is a GPU.
    source = textwrap.dedent("""\
        import torch

        def given(x, device):
            inv = torch.arange(0, 8, 2)
            return inv.to(device=device, dtype=torch.float)

        def through(x):
            inv = torch.arange(0, 8, 2)
            y = torch.ones(3, device="cuda")
            return inv.to(y.device)
        """)
    found = {d.start.row: d for d in findings(source, "SL303")}
    assert sorted(found) == [5, 10]
    assert "`inv` is on the CPU" in found[5].evidence
    assert "`device` is an accelerator device: a variable named `device`" in found[5].evidence
    assert "`y.device` is an accelerator device: the device of a GPU tensor" in found[10].evidence
    assert len(found[10].evidence_steps) == 2


def test_a_data_loaders_batches_are_in_host_memory_pinned_as_it_pins_them() -> None:
    # open-instruct's data loader before #1443 moved every batch with a blocking `v.to(device)`. The
    # default collate stacks samples in host memory, pinned with `pin_memory=True`; a copy from there
    # without `non_blocking=True` waits for the step the GPU is still running.
    source = """
        import torch
        from torch.utils.data import DataLoader


        def train(ds, model, device):
            for step, (x, y) in enumerate(DataLoader(ds, batch_size=8)):
                model(x.to(device), y.to(device))                                    # 8, 8: pageable, blocking


        def pinned(ds, model):
            loader = DataLoader(ds, batch_size=8, pin_memory=True)
            for batch in loader:
                batch = {k: v.to("cuda", non_blocking=True) for k, v in batch.items()}
                model(**batch)
            for batch in loader:
                model(batch["input_ids"].cuda())                                     # 17: pinned, blocking


        def unknown(ds, model, flag):
            for batch in DataLoader(ds, pin_memory=flag):
                model(batch[0].to("cuda", non_blocking=True))                        # pinned or not: strict
        """
    found = findings(source, "SL303")
    assert [(d.start.row, d.start.column) for d in found] == [(8, 15), (8, 29), (17, 15)]
    assert all(d.confidence == "convention" for d in found)
    assert "a batch of `DataLoader(ds, batch_size=8)`" in found[0].evidence
    assert "pinned" in found[2].message
    assert lines(source, "SL303", strict=True) == [8, 8, 17, 22]


def test_a_data_loader_a_launcher_prepared_yields_batches_on_the_device() -> None:
    # accelerate's `prepare` hands back a loader that moves each batch to the training device: its
    # batches are on the GPU by convention, not in the host memory the plain loader's collate fills.
    source = """
        from accelerate import Accelerator
        from torch.utils.data import DataLoader


        def train(ds, model):
            accelerator = Accelerator()
            model, dl = accelerator.prepare(model, DataLoader(ds, batch_size=8))
            for batch in dl:
                batch.to("cuda")
                batch.sum().item()
        """
    assert lines(source, "SL303") == []
    assert lines(source, "SL101") == [11]
