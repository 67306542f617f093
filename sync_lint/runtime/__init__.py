"""Runtime checks: measure, on a real GPU, which code makes the host wait.

* `detect(fn, *args)`: one call, three signals (host blocking against a busy
  GPU, sync-debug warnings with user file:line, profiler copy kinds).
* `no_gpu_sync()`: a guard (context manager / decorator) that raises or warns.
* `trace_program(...)`: run a whole program under a line tracer (`sync-lint trace`).
* `sync_lint.runtime.pytest_plugin`: the `no_gpu_sync` marker and fixture.

Nothing here imports torch at import time; torch is imported when a check runs,
and a missing GPU raises NoCudaError rather than passing silently.
"""

from sync_lint.runtime.cuda import cuda_available, require_cuda
from sync_lint.runtime.detector import SyncReport, detect
from sync_lint.runtime.errors import GpuSyncError, GpuSyncWarning, NoCudaError
from sync_lint.runtime.guard import GuardReport, no_gpu_sync
from sync_lint.runtime.trace_join import join_with_static, joined_to_json
from sync_lint.runtime.trace_render import render_full, render_trace
from sync_lint.runtime.tracer import LineEntry, TraceReport, trace_program

__all__ = [
    "GpuSyncError",
    "GpuSyncWarning",
    "GuardReport",
    "LineEntry",
    "NoCudaError",
    "SyncReport",
    "TraceReport",
    "cuda_available",
    "detect",
    "join_with_static",
    "joined_to_json",
    "no_gpu_sync",
    "render_full",
    "render_trace",
    "require_cuda",
    "trace_program",
]
