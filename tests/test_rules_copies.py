"""SL301-SL304 and SL401 beyond the fixtures: strict mode, torch-version gating,
evidence text, fix applicability, and the device-analysis facts these rules rely on."""

from __future__ import annotations

import textwrap

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


@pytest.mark.parametrize(
    "copy, applicability",
    [
        ("x.to('cuda')", "safe"),
        ("x.cuda()", "safe"),
        ("x.to(torch.device('cuda:1'))", "safe"),
        ("x.to(device)", "unsafe"),
        ("torch.zeros(4, device='cuda').copy_(x)", "safe"),
        ("torch.zeros(4, device=device).copy_(x)", "unsafe"),
    ],
)
def test_sl303_fix_is_safe_only_for_a_literal_accelerator(copy, applicability):
    source = f"import torch\ndef f(device):\n    x = torch.ones(4)\n    return {copy}\n"
    [finding] = findings(source, "SL303")
    assert finding.fix.applicability == applicability


def test_sl303_pinned_source_gets_an_unsafe_non_blocking_fix():
    source = "import torch\nx = torch.ones(4).pin_memory()\ny = x.to('cuda')\n"
    [finding] = findings(source, "SL303")
    assert finding.fix.applicability == "unsafe"
    assert "does not write the pinned source" in finding.fix.message
    assert fixed(source, unsafe=True).endswith("y = x.to('cuda', non_blocking=True)\n")


def test_sl303_pageable_non_blocking_is_reported_as_staged():
    source = "import torch\ny = torch.ones(4).to('cuda', non_blocking=True)\n"
    [finding] = findings(source, "SL303")
    assert "staged" in finding.message


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
    assert "b = th.tensor([1, 2], dtype=buf_gpu.dtype, pin_memory=True).to(buf_gpu.device, non_blocking=True)" in out
    assert "import torch\n" not in out


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
