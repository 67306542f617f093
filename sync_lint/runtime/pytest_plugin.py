"""pytest plugin: the `no_gpu_sync` marker and fixture.

Registered through the `pytest11` entry point (name "sync_lint"), or by hand
with `-p sync_lint.runtime.pytest_plugin`.

Marker: the whole test call runs inside the guard.

    @pytest.mark.no_gpu_sync                       # or (action="warn", sleep_ms=50)
    def test_step_has_no_sync(model, batch):
        model(batch)

    `warmup=N` runs the test body N times unguarded first. Use it when the test
    launches kernels this process has not run yet: under CUDA lazy module
    loading a first launch waits for the GPU and would be reported as a sync.

Fixture: you choose the guarded region, so setup (allocations, warm-up, the
reference `.item()` in an assert) stays outside it.

    def test_step(no_gpu_sync, model, batch):
        model(batch)                                # warm-up, not checked
        with no_gpu_sync:
            out = model(batch)                      # checked
        assert out.sum().item() > 0                 # fine: outside the region

Without CUDA both skip with the reason "no CUDA device: the no_gpu_sync guard
needs a GPU to measure host blocking (...)"; never a silent pass. A
NoCudaError escaping any test (e.g. from `with no_gpu_sync():` used directly)
becomes the same kind of skip.

This module must import without torch: torch is only touched once a marked test
or the fixture actually runs.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from sync_lint.runtime.cuda import cuda_unavailable_reason, no_cuda_message
from sync_lint.runtime.errors import NoCudaError
from sync_lint.runtime.guard import GUARD_NAME
from sync_lint.runtime.guard import no_gpu_sync as _Guard

MARKER = "no_gpu_sync"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(action='raise', sleep_ms=20.0, gpu_trace=False, warmup=0): fail the test if "
        "its call synchronizes the GPU with the host (sync_lint). Needs CUDA; "
        "skipped without it.",
    )


def _skip_without_cuda() -> None:
    reason = cuda_unavailable_reason()
    if reason is not None:
        pytest.skip(no_cuda_message(GUARD_NAME, reason))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    marker = pyfuncitem.get_closest_marker(MARKER)
    try:
        if marker is None:
            return (yield)
        _skip_without_cuda()
        options = dict(marker.kwargs)
        warmup = int(options.pop("warmup", 0))
        guard = _Guard(*marker.args, **options)
        for _ in range(warmup):
            _call_test(pyfuncitem)
        with guard:
            return (yield)
    except NoCudaError as exc:
        pytest.skip(str(exc))


def _call_test(item: pytest.Function) -> None:
    # What pytest's own pytest_pyfunc_call does (it has no public re-entry point).
    args = {name: item.funcargs[name] for name in item._fixtureinfo.argnames}
    item.obj(**args)


@pytest.fixture
def no_gpu_sync() -> _Guard:
    """A `no_gpu_sync()` guard (action="raise", sleep_ms=20) to use as
    `with no_gpu_sync: ...`; skips the test when there is no CUDA device."""
    _skip_without_cuda()
    return _Guard()
