"""SL101-SL104 and SL501 beyond the fixtures: modes, settings, evidence and the host-mirror fix."""

from __future__ import annotations

import textwrap

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


def fixed(source: str, **settings: object) -> str:
    rules = [r for r in all_rules().values() if r.active_for_torch(FIXTURE_TORCH)]
    config = Settings(target_torch_version=FIXTURE_TORCH).override(**settings)
    outcome = fix_source(textwrap.dedent(source), "t.py", rules, config, unsafe=True)
    assert outcome.errors == []
    return outcome.new_source


# --- device evidence --------------------------------------------------------------------------


def test_strict_mode_widens_to_unknown_tensors():
    source = """
    import torch
    def f(x: torch.Tensor):
        if x.any():
            return x.tolist(), x.cpu(), int(x.sum())
    """
    assert lines(source, "SL104") == []
    assert lines(source, "SL104", strict=True) == [4, 5]
    assert lines(source, "SL102", strict=True) == [5]
    assert lines(source, "SL103", strict=True) == [5]


def test_configured_gpu_attribute_is_evidence():
    source = """
    def f(meta):
        if meta.seq_lens.max() > 8:
            return meta.seq_lens.tolist()
    """
    assert lines(source, "SL104") == []
    assert lines(source, "SL104", gpu_attributes=("seq_lens",)) == [3]
    assert lines(source, "SL102", gpu_attributes=("seq_lens",)) == [4]


def test_evidence_names_the_origin():
    (finding,) = findings(
        """
        import torch
        lens = torch.zeros(4, device="cuda")
        n = int(lens.sum())
        """,
        "SL104",
    )
    assert finding.evidence is not None
    assert "`lens` is on the GPU" in finding.evidence and "line 3" in finding.evidence


# --- SL103 ------------------------------------------------------------------------------------


def test_non_blocking_spellings():
    source = """
    import torch
    x = torch.ones(4, device="cuda")
    a = x.to("cpu", torch.float32, True)
    b = x.to("cpu", non_blocking=flag)
    c = x.to("cpu", non_blocking=False)
    buf = torch.empty(4)
    buf.copy_(x, True)
    """
    # Positional True: not blocking; a computed flag: unknown, so quiet; into pageable memory: always.
    assert lines(source, "SL103") == [6, 8]


def test_pinned_destination_only_blocks_without_non_blocking():
    source = """
    import torch
    x = torch.ones(4, device="cuda")
    buf = torch.empty(4, pin_memory=True)
    buf[:2].copy_(x[:2], non_blocking=True)
    buf.copy_(x)
    """
    assert lines(source, "SL103") == [6]


def test_a_pin_memory_flag_is_not_proof_of_pageable_memory():
    source = """
    import torch
    class Buffer:
        def __init__(self, *size, device, pin_memory: bool = True):
            self.cpu = torch.zeros(*size, device="cpu", pin_memory=pin_memory)
            self.gpu = torch.zeros_like(self.cpu, device=device)
        def copy_to_cpu(self):
            return self.cpu.copy_(self.gpu, non_blocking=True)
    """
    assert lines(source, "SL103") == []


def test_legacy_cpu_tensor_types_copy_to_the_host():
    source = """
    import torch
    x = torch.ones(4, device="cuda")
    m = (x > 0).type(torch.BoolTensor)
    n = x.type("torch.LongTensor")
    g = (x > 0).type(torch.cuda.BoolTensor)
    h = x.type(torch.float16)
    c = x.cpu().type(torch.LongTensor)
    back = m.to(x.device)
    """
    # A GPU type or a dtype keeps the device. Line 8 is its `.cpu()` alone: converting the CPU
    # tensor after it copies nothing from the GPU.
    assert lines(source, "SL103") == [4, 5, 8]
    assert [d.message.startswith("`.cpu()`") for d in findings(source, "SL103") if d.start.row == 8] == [True]
    [bool_type] = [d for d in findings(source, "SL103") if d.start.row == 4]
    assert "`.to(torch.bool)`" in bool_type.message
    # The converted tensor is on the CPU: moving it back is a host-to-device copy.
    assert lines(source, "SL303") == [9]


# --- SL104 ------------------------------------------------------------------------------------


def test_only_0_dim_integer_indexes_sync():
    source = """
    import torch
    x = torch.ones(8, device="cuda")
    idx = torch.arange(4, device="cuda")
    a = x[idx]
    b = x[idx.argmax()]
    c = x[x.sum() > 0]
    d = x[idx[0], ...]
    """
    assert lines(source, "SL104") == [6, 8]


def test_a_gpu_count_of_a_sequence_repetition_is_read_on_the_host():
    # TransformerEngine's padding mask before #3268: `[False] * seqlens[i]` per sequence, each count a
    # 0-dim GPU tensor that `list.__mul__` reads with `__index__`. A tensor times a number stays a tensor.
    source = """
    import torch
    lens = torch.zeros(4, dtype=torch.int32, device="cuda")
    a = [False] * lens[0]
    b = [True] * (8 - lens[1])
    c = lens[2] * (0,)
    d = [0] * 8
    e = lens * 2
    f = "-" * lens[3]
    """
    assert lines(source, "SL104") == [4, 5, 6, 9]


def test_shadowed_builtins_and_the_same_tensor_twice():
    source = """
    import torch
    def int(v):
        return v
    x = torch.ones(4, device="cuda")
    a = int(x.sum())
    b = torch.equal(x, x)
    c = x.equal(x)
    d = x.equal(x + 1)
    """
    assert lines(source, "SL104") == [9]


def test_gpu_looking_names_used_as_flags_or_counts():
    source = """
    import torch
    def f(use_gpu, n_gpu, lens_gpu, a_gpu, b_gpu):
        if use_gpu and n_gpu > 1:
            count = max(n_gpu, 1)
            return [torch.zeros(n_gpu) for _ in range(count)]
        if lens_gpu.max() > 0:
            return torch.equal(a_gpu, b_gpu)
    """
    # Names and operators alone prove nothing; a tensor method or a tensor-only function does.
    assert lines(source, "SL104") == [7, 8]
    assigned = """
    import torch
    n_gpu = torch.tensor(4, device="cuda")
    for _ in range(n_gpu):
        pass
    """
    assert lines(assigned, "SL104") == [4]


def test_or_tests_only_its_left_operand_outside_a_condition():
    source = """
    import torch
    a = torch.ones(4, device="cuda")
    b = torch.zeros(4, device="cuda")
    c = a.any() or b.any()
    if a.any() or b.any():
        pass
    """
    assert [(d.start.row, d.start.column) for d in findings(source, "SL104")] == [(5, 5), (6, 4), (6, 15)]


# --- the host-mirror fix (SL101-SL104) ------------------------------------------------------------


def test_mirror_from_a_configured_cpu_attribute_or_an_earlier_read():
    source = """
    def f(meta, other):
        a = meta.seq_lens.max().item()
        b = other.seq_lens.max().item()
        return a, b, other.seq_lens_cpu
    """
    configured = fixed(source, gpu_attributes=("seq_lens",), cpu_attributes=("seq_lens_cpu",))
    assert "a = meta.seq_lens_cpu.max().item()" in configured
    assert "b = other.seq_lens_cpu.max().item()" in configured
    unconfigured = fixed(source, gpu_attributes=("seq_lens",))
    assert unconfigured == textwrap.dedent(source)  # `other.seq_lens_cpu` is read only afterwards
    seen = """
    def f(meta):
        host = meta.seq_lens_cpu
        return meta.seq_lens.max().item(), host
    """
    assert "meta.seq_lens_cpu.max().item()" in fixed(seen, gpu_attributes=("seq_lens",))


def test_no_mirror_fix_when_the_statement_writes_the_mirror():
    source = """
    import torch
    def refresh(seq_lens, seq_lens_cpu: torch.Tensor):
        seq_lens = seq_lens.cuda()
        seq_lens_cpu = seq_lens.cpu()
        seq_lens_cpu[:2] = seq_lens[:2].cpu()
        seq_lens_cpu.copy_(seq_lens)
        return seq_lens_cpu
    """
    assert [d.fix for d in findings(source, "SL103")] == [None, None, None]


def test_no_mirror_fix_when_the_mirror_is_not_a_cpu_tensor():
    source = """
    import torch
    def f(seq_lens_gpu, n):
        seq_lens_cpu = None
        return seq_lens_gpu.max().item()
    """
    (finding,) = findings(source, "SL101")
    assert finding.fix is None
    assert "`_cpu` mirror" in finding.message


def test_no_mirror_fix_through_another_tensor_or_an_in_place_op():
    source = """
    def f(seq_lens_gpu, seq_lens_cpu, other_gpu):
        a = (seq_lens_gpu + other_gpu).max().item()
        b = seq_lens_gpu.add_(1).max().item()
        c = seq_lens_gpu.cuda().max().item()
        return a, b, c
    """
    assert [d.fix for d in findings(source, "SL101")] == [None, None, None]


def test_mirror_fix_keeps_a_dtype_change_and_clones_views():
    source = """
    import torch
    def f(lens_gpu, lens_cpu, n):
        a = lens_gpu.to("cpu", torch.float32)
        b = (lens_gpu[:n]
             .cpu())
        c = (lens_gpu - 1).cpu() * 2
        return a, b, c
    """
    assert fixed(source) == textwrap.dedent("""
    import torch
    def f(lens_gpu, lens_cpu, n):
        a = lens_cpu.to("cpu", torch.float32)
        b = (lens_cpu[:n].clone())
        c = (lens_cpu - 1) * 2
        return a, b, c
    """)


# --- SL501 ------------------------------------------------------------------------------------


def test_sync_prone_hint_is_the_evidence_and_custom_names_get_no_fix():
    source = """
    def f(meta, dev):
        return (meta.seq_lens_cpu > 0).to(dev)
    """
    assert findings(source, "SL501") == []
    (finding,) = findings(source, "SL501", sync_prone_attributes=(("seq_lens_cpu", "derive it on the device"),))
    assert finding.evidence == "derive it on the device"
    assert finding.fix is None


def test_sync_prone_fix_needs_a_dotted_owner_and_keeps_a_dtype_change():
    source = """
    import torch
    def f(get_meta, meta, dev):
        a = (get_meta().num_computed_tokens_cpu > 0).to(dev)
        b = meta.num_computed_tokens_cpu.to(dev, torch.int64)
        return a, b
    """
    first, second = findings(source, "SL501")
    assert first.fix is None
    assert second.fix is not None
    assert [e.content for e in second.fix.edits] == [
        "(meta.seq_lens - (meta.query_start_loc[1:] - meta.query_start_loc[:-1]))"
    ]


def test_sync_prone_read_is_quiet_where_syncs_are_allowed():
    source = """
    def f(meta):
        with gpu_sync_allowed():
            return meta.num_computed_tokens_cpu
    """
    assert findings(source, "SL501") == []
