"""sync_lint.runtime against a real GPU. Skipped, with a reason, without CUDA.

Expectations come from the measured ground-truth table (H100, torch 2.11):
`x.sum().item()` blocks with one debug warning, `torch.cuda.synchronize()`
blocks with none, `t[:1] = 7` does not block, `t[0] = 7` does, a pageable
`cpu.to(dev)` is a "Pageable -> Device" copy.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path
from typing import Any

import pytest

from sync_lint.runtime import (
    GpuSyncError,
    GpuSyncWarning,
    cuda_available,
    detect,
    join_with_static,
    no_gpu_sync,
    render_full,
    trace_program,
)
from sync_lint.runtime.sites import norm

pytestmark = pytest.mark.skipif(
    not cuda_available(),
    reason="no CUDA device: GPU runtime tests need torch with a visible CUDA GPU",
)
pytest_plugins = ["pytester"]

HERE = norm(__file__)


def _line(tag: str, text: str | None = None) -> int:
    """Line number of the line carrying the comment `# SITE:<tag>`."""
    source = Path(__file__).read_text() if text is None else text
    for number, line in enumerate(source.splitlines(), start=1):
        if line.rstrip().endswith(f"# SITE:{tag}"):
            return number
    raise LookupError(tag)


@pytest.fixture(scope="module")
def torch() -> Any:
    torch = pytest.importorskip("torch")
    torch.cuda.init()
    return torch


@pytest.fixture
def x(torch: Any) -> Any:
    return torch.randn(4096, device="cuda")


# ---------------------------------------------------------------------------
# detect
# ---------------------------------------------------------------------------
def test_item_blocks_at_the_right_line(torch: Any, x: Any) -> None:
    def step() -> float:
        return x.sum().item()  # SITE:item

    report = detect(step)
    assert report.blocked, report
    assert report.host_ms > 0.5 * report.sleep_ms
    assert report.debug_warnings == 1
    assert report.sync_sites == [(HERE, _line("item"))]
    assert "Memcpy DtoH (Device -> Pinned)" in report.copy_kinds
    assert "cudaStreamSynchronize" in report.runtime_syncs
    assert isinstance(report.result, float) and report.exception is None


def test_synchronize_blocks_without_debug_warning(torch: Any) -> None:
    report = detect(torch.cuda.synchronize)
    assert report.blocked, report
    assert report.debug_warnings == 0 and report.sync_sites == []
    assert report.explicit_sync_suspected
    assert "cudaDeviceSynchronize" in report.runtime_syncs


def test_slice_setitem_does_not_block(torch: Any) -> None:
    t = torch.zeros(1024, device="cuda")

    def step() -> None:
        t[:1] = 7

    report = detect(step, repeats=3)
    assert not report.blocked, report
    assert report.debug_warnings == 0 and report.runtime_syncs == []
    assert len(report.host_ms_runs) == 3


def test_int_setitem_blocks(torch: Any) -> None:
    t = torch.zeros(1024, device="cuda")

    def step() -> None:
        t[0] = 7  # SITE:setitem

    report = detect(step)
    assert report.blocked and report.sync_sites == [(HERE, _line("setitem"))]
    assert "Memcpy HtoD (Pageable -> Device)" in report.copy_kinds


def test_pageable_h2d_copy_is_seen(torch: Any) -> None:
    cpu = torch.randn(65536)  # 256 KB, pageable

    blocking = detect(lambda: cpu.to("cuda"))
    assert blocking.blocked
    assert "Memcpy HtoD (Pageable -> Device)" in blocking.copy_kinds
    assert blocking.pageable_copies >= 1

    async_copy = detect(lambda: cpu.to("cuda", non_blocking=True))
    assert not async_copy.blocked  # ground truth: did not block at 256 KB...
    assert async_copy.pageable_copies >= 1  # ...but it is still a pageable copy

    pinned = cpu.pin_memory()
    clean = detect(lambda: pinned.to("cuda", non_blocking=True))
    assert not clean.blocked and clean.pageable_copies == 0
    assert "Memcpy HtoD (Pinned -> Device)" in clean.copy_kinds


def test_exceptions_are_recorded(torch: Any, x: Any) -> None:
    def step() -> None:
        x.sum().item()
        raise ValueError("boom")

    report = detect(step)
    assert isinstance(report.exception, ValueError)
    assert isinstance(report.profile_exception, ValueError)
    assert report.blocked


def test_debug_mode_is_restored(torch: Any, x: Any) -> None:
    before = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        detect(lambda: x.sum().item(), profile=False)
    assert torch.cuda.get_sync_debug_mode() == before
    # Our sync warnings and torch's "prototype feature" notice do not leak.
    assert not [w for w in seen if "synchroniz" in str(w.message).lower()]


# ---------------------------------------------------------------------------
# guard
# ---------------------------------------------------------------------------
def test_guard_raises_with_file_and_line(torch: Any, x: Any) -> None:
    with pytest.raises(GpuSyncError) as info:
        with no_gpu_sync():
            x.sum().item()  # SITE:guard
    assert f"{HERE}:{_line('guard')}: 1 synchronizing CUDA call" in str(info.value)


def test_guard_passes_clean_code(torch: Any, x: Any) -> None:
    (x * 2).sum()  # warm-up: a first kernel launch waits for the GPU (lazy loading)
    guard = no_gpu_sync()
    with guard:
        y = (x * 2).sum()
    assert guard.report is not None and not guard.report.violated
    assert y.item() != 0.0  # outside the guard: allowed


def test_guard_names_explicit_synchronize(torch: Any) -> None:
    with pytest.raises(GpuSyncError, match="no sync-debug warning"):
        with no_gpu_sync():
            torch.cuda.synchronize()


def test_guard_warn_action_and_decorator(torch: Any, x: Any) -> None:
    @no_gpu_sync(action="warn")
    def step() -> float:
        return x.sum().item()  # SITE:decorated

    with pytest.warns(GpuSyncWarning, match=f":{_line('decorated')}: "):
        step()
    with pytest.warns(GpuSyncWarning):
        step()  # the decorator is reusable


def test_guard_decorator_warmup_absorbs_first_launch(torch: Any, x: Any) -> None:
    @no_gpu_sync(warmup=1)
    def step() -> Any:
        return torch.special.erfcx(x)  # a kernel no earlier test launched

    step()


def test_detect_warms_up_by_default(torch: Any, x: Any) -> None:
    report = detect(lambda: torch.special.i0e(x))  # first launch in this process
    assert not report.blocked, report


def test_guard_does_not_mask_the_body_exception(torch: Any, x: Any) -> None:
    with pytest.raises(KeyError):
        with no_gpu_sync():
            x.sum().item()
            raise KeyError("body")


# ---------------------------------------------------------------------------
# pytest plugin, in a nested pytest run
# ---------------------------------------------------------------------------
INNER = """\
import pytest
import torch

@pytest.mark.no_gpu_sync
def test_marked_syncs():
    x = torch.ones(8, device="cuda")
    x.sum().item()  # SITE:inner

@pytest.mark.no_gpu_sync(warmup=1)
def test_marked_clean():
    x = torch.ones(8, device="cuda")
    torch.special.ndtri(x * 0.5).sum()  # first launch: absorbed by warmup=1

def test_fixture_clean(no_gpu_sync):
    x = torch.ones(8, device="cuda")
    (x * 2).sum()  # warm-up outside the region
    with no_gpu_sync:
        y = x * 2
    assert y.sum().item() == 16

def test_fixture_syncs(no_gpu_sync):
    x = torch.ones(8, device="cuda")
    with no_gpu_sync:
        x.sum().item()  # SITE:fixture
"""


def _plugin_args() -> list[str]:
    names = {ep.value for ep in importlib.metadata.entry_points(group="pytest11")}
    return [] if "sync_lint.runtime.pytest_plugin" in names else ["-p", "sync_lint.runtime.pytest_plugin"]


def test_marker_and_fixture_on_gpu(pytester: pytest.Pytester, torch: Any) -> None:
    path = pytester.makepyfile(test_inner_gpu=INNER)
    result = pytester.runpytest(*_plugin_args(), "-rfs")
    result.assert_outcomes(passed=2, failed=2)
    inner = norm(str(path))
    result.stdout.fnmatch_lines_random(
        [
            f"*{inner}:{_line('inner', INNER)}: 1 synchronizing CUDA call*",
            f"*{inner}:{_line('fixture', INNER)}: 1 synchronizing CUDA call*",
        ]
    )


# ---------------------------------------------------------------------------
# tracer
# ---------------------------------------------------------------------------
SCRIPT = """\
import torch
x = torch.randn(4096, device="cuda")
y = x * 2
v = y.sum().item()  # SITE:item
z = y + 1
def helper(t):
    return t.max().item()  # SITE:helper
m = helper(y)  # SITE:call
for _ in range(3):
    w = (z * 2).sum()  # SITE:noblock
    n = int(w)  # SITE:int
"""


def test_tracer_finds_blocking_lines(torch: Any, tmp_path: Path) -> None:
    script = tmp_path / "tiny.py"
    script.write_text(SCRIPT)
    report = trace_program([str(script)], sleep_ms=10.0)
    assert report.exception is None and report.exit_code == 0
    assert report.cuda_initialized
    blocked = {e.line: e for e in report.entries if e.file == norm(str(script))}
    for tag in ("item", "helper", "int"):
        assert _line(tag, SCRIPT) in blocked, (tag, report.to_json())
    assert blocked[_line("int", SCRIPT)].blocked == 3
    # The caller of helper() is not charged for helper's sync.
    assert _line("call", SCRIPT) not in blocked
    assert _line("noblock", SCRIPT) not in blocked
    assert report.execution_count(str(script), _line("noblock", SCRIPT)) == 3

    joined = join_with_static(
        report,
        {
            (str(script), _line("item", SCRIPT)): ["SL001"],
            (str(script), _line("noblock", SCRIPT)): ["SL999"],
        },
    )
    rows = {r["line"]: r["class"] for r in joined["lines"]}
    assert rows[_line("item", SCRIPT)] == "both"
    assert rows[_line("int", SCRIPT)] == "runtime-only"
    assert rows[_line("noblock", SCRIPT)] == "static-only"
    assert "runtime-only" in render_full(joined)


# ---------------------------------------------------------------------------
# Last: gpu_trace activates torch's GPU trace hooks for the rest of the process.
# ---------------------------------------------------------------------------
def test_gpu_trace_names_explicit_synchronize(torch: Any) -> None:
    def step() -> None:
        torch.cuda.synchronize()  # SITE:devsync

    report = detect(step, profile=False, gpu_trace=True)
    assert report.blocked and report.debug_warnings == 0
    assert ("device_sync", (HERE, _line("devsync"))) in report.trace_sites

    with pytest.raises(GpuSyncError, match=f"{HERE}:{_line('guarded_devsync')}: device_sync"):
        with no_gpu_sync(gpu_trace=True):
            torch.cuda.synchronize()  # SITE:guarded_devsync
