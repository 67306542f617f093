"""`detect(fn, ...)`: does this call make the host wait for the GPU, and where?

Three signals, because none is enough alone (see the ground-truth table):

(a) host time while a calibrated sleep kernel keeps the GPU busy: the only one
    that sees `torch.cuda.synchronize()`, `Event.synchronize()` and large
    pageable copies. It decides `blocked`.
(b) `set_sync_debug_mode("warn")` warnings, mapped to the user's file:line.
(c) the profiler's memcpy kinds and CUDA runtime sync calls: shows *pageable*
    copies even when they did not block this time.

The function runs `warmup` times unmeasured, `repeats` times for (a)+(b) and
once more under the profiler for (c), so it must tolerate being called several
times.

Why a warm-up by default: under CUDA lazy module loading (the default since CUDA
12.2) the first launch of a kernel in a process loads its module, and that load
waits for the busy GPU. Measured on the H100 (torch 2.11): a first
`torch.cos(x)` blocked the host 41.4 ms against a 40 ms sleep with no
sync-debug warning, the second call took 0.06 ms; with CUDA_MODULE_LOADING=EAGER
the first call took 0.22 ms. Without a warm-up, a rewrite that introduces a kernel the process has
not used yet (scatter_add_ replacing bincount) would look like a sync.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sync_lint.runtime.busy import blocked_threshold_ms
from sync_lint.runtime.capture import Site
from sync_lint.runtime.cuda import cuda_available, require_cuda
from sync_lint.runtime.errors import NoCudaError
from sync_lint.runtime.measure import Measured, Window
from sync_lint.runtime.profiling import profile_call

__all__ = ["SyncReport", "detect", "cuda_available", "require_cuda", "NoCudaError"]


@dataclass
class SyncReport:
    blocked: bool  # median host time exceeded half the GPU sleep
    host_ms: float  # median over the timed runs
    sleep_ms: float  # requested GPU sleep
    sync_sites: list[Site]  # user file:line of debug-mode warnings, first-seen order
    debug_warnings: int  # sync-debug warnings in one call (the last timed run)
    copy_kinds: list[str]  # profiler memcpy/memset names, e.g. "Memcpy HtoD (Pageable -> Device)"
    pageable_copies: int
    runtime_syncs: list[str]  # cudaStreamSynchronize etc. inside the profiled call
    result: Any  # return value of the last timed run
    exception: BaseException | None  # raised by the last timed run
    actual_sleep_ms: float | None = None  # GPU-measured length of the sleep
    host_ms_runs: list[float] = field(default_factory=list)
    # With gpu_trace=True: (kind, site) for device/stream/event syncs.
    trace_sites: list[tuple[str, Site | None]] = field(default_factory=list)
    profiled: bool = False
    profile_error: str | None = None
    profile_exception: BaseException | None = None  # raised by the profiled run

    @property
    def explicit_sync_suspected(self) -> bool:
        """Blocked, yet debug mode saw nothing: synchronize(), an event sync or a
        pageable copy, which debug mode does not report."""
        return self.blocked and self.debug_warnings == 0


def _timed_run(
    torch: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
    sleep_ms: float, gpu_trace: bool,
) -> tuple[Measured, Any, BaseException | None]:
    window = Window(torch, sleep_ms, gpu_trace=gpu_trace)
    result: Any = None
    error: BaseException | None = None
    window.start()
    try:
        result = fn(*args, **kwargs)
    except KeyboardInterrupt:
        window.stop()
        raise
    except BaseException as exc:  # the verifier compares exception types
        error = exc
    return window.stop(), result, error


def detect(
    fn: Callable[..., Any],
    *args: Any,
    sleep_ms: float = 40.0,
    repeats: int = 1,
    profile: bool = True,
    gpu_trace: bool = False,
    warmup: int = 1,
    **kwargs: Any,
) -> SyncReport:
    """Run `fn(*args, **kwargs)` and report whether and where it synchronized.

    `sleep_ms`, `repeats`, `profile`, `gpu_trace` and `warmup` are detect's own
    keywords and are not passed to `fn`. `warmup` unmeasured calls come first
    (exceptions in them are ignored: the timed run records its own). `gpu_trace=True` also records the sites of
    device/stream/event syncs through torch's private GPU trace hooks; this is
    irreversible for the process (see capture.py). Raises NoCudaError without a
    GPU. Exceptions from `fn` are recorded in the report, not raised.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    if warmup < 0:
        raise ValueError("warmup must be >= 0")
    torch = require_cuda("sync_lint.runtime.detect")

    for _ in range(warmup):
        try:
            fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise
        except BaseException:
            pass
    torch.cuda.synchronize()

    runs: list[Measured] = []
    result: Any = None
    error: BaseException | None = None
    for _ in range(repeats):
        measured, result, error = _timed_run(torch, fn, args, kwargs, sleep_ms, gpu_trace)
        runs.append(measured)

    host = [m.host_ms for m in runs]
    host_ms = statistics.median(host)
    actual = [m.actual_sleep_ms for m in runs if m.actual_sleep_ms is not None]
    actual_ms = min(actual) if actual else None
    last = runs[-1]
    blocked = host_ms > blocked_threshold_ms(sleep_ms, actual_ms)

    sites: list[Site] = []
    for m in runs:
        for site in m.debug_sites:
            if site is not None and site not in sites:
                sites.append(site)
    trace_sites: list[tuple[str, Site | None]] = []
    for m in runs:
        for item in m.trace_sites:
            if item not in trace_sites:
                trace_sites.append(item)

    report = SyncReport(
        blocked=blocked,
        host_ms=host_ms,
        sleep_ms=sleep_ms,
        sync_sites=sites,
        debug_warnings=len(last.debug_sites),
        copy_kinds=[],
        pageable_copies=0,
        runtime_syncs=[],
        result=result,
        exception=error,
        actual_sleep_ms=actual_ms,
        host_ms_runs=host,
        trace_sites=trace_sites,
    )
    if profile:
        signal, _, prof_error = profile_call(torch, lambda: fn(*args, **kwargs))
        report.profiled = signal.error is None
        report.profile_error = signal.error
        report.copy_kinds = signal.copy_kinds
        report.pageable_copies = signal.pageable_copies
        report.runtime_syncs = signal.runtime_syncs
        report.profile_exception = prof_error
    return report
