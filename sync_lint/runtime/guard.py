"""`no_gpu_sync`: fail (or warn) when a block of code synchronizes with the GPU.

    with no_gpu_sync():                 # raises GpuSyncError on exit
        step(batch)

    @no_gpu_sync(action="warn")         # warns GpuSyncWarning instead
    def step(batch): ...

A violation is either a sync-debug warning (the host called a synchronizing
CUDA operation) or the host blocking for more than half the GPU sleep queued at
entry (catches `torch.cuda.synchronize()`, event syncs and pageable copies,
which debug mode misses). The error names the user file:line of each warning.

First kernel launches: under CUDA lazy module loading (the CUDA 12.2+ default)
the first launch of each kernel in a process waits for the busy GPU while its
module loads, so it looks like a sync (measured: a first `(x * 2).sum()` blocked
20 ms). Warm up outside the guarded region, pass `warmup=1` to the decorator (or
the pytest marker), or run with CUDA_MODULE_LOADING=EAGER.

Without CUDA the guard raises NoCudaError: a guard that cannot measure must not
pass silently. The pytest plugin turns that into a skip.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Callable, Literal, ParamSpec, TypeVar

from sync_lint.runtime.capture import Site
from sync_lint.runtime.cuda import require_cuda
from sync_lint.runtime.errors import GpuSyncError, GpuSyncWarning
from sync_lint.runtime.measure import Measured, Window

Action = Literal["raise", "warn"]
P = ParamSpec("P")
R = TypeVar("R")

GUARD_NAME = "the no_gpu_sync guard"


@dataclass
class GuardReport:
    host_ms: float
    sleep_ms: float
    threshold_ms: float
    blocked: bool
    debug_sites: list[Site | None] = field(default_factory=list)
    trace_sites: list[tuple[str, Site | None]] = field(default_factory=list)

    @property
    def violated(self) -> bool:
        return self.blocked or bool(self.debug_sites)

    @classmethod
    def from_measured(cls, m: Measured) -> GuardReport:
        return cls(
            host_ms=m.host_ms,
            sleep_ms=m.sleep_ms,
            threshold_ms=m.threshold_ms,
            blocked=m.blocked,
            debug_sites=list(m.debug_sites),
            trace_sites=list(m.trace_sites),
        )

    def describe(self) -> str:
        """Human-readable message; the first lines name the offending sites."""
        lines = ["GPU<->CPU synchronization inside a no_gpu_sync region:"]
        for site, count in Counter(self.debug_sites).items():
            where = f"{site[0]}:{site[1]}" if site else "<no user frame found>"
            plural = "s" if count > 1 else ""
            lines.append(f"  {where}: {count} synchronizing CUDA call{plural} (sync-debug warning)")
        for (kind, site), count in Counter(self.trace_sites).items():
            if kind == "stream_sync" and self.debug_sites:
                continue  # the same syncs debug mode already named
            where = f"{site[0]}:{site[1]}" if site else "<no user frame found>"
            lines.append(f"  {where}: {kind} x{count} (GPU trace)")
        if self.blocked and not self.debug_sites:
            lines.append(
                f"  host blocked for {self.host_ms:.1f} ms with no sync-debug warning "
                "(explicit synchronize, event sync or pageable copy)"
            )
            lines.append(
                "  (or a kernel launched for the first time in this process: CUDA lazy "
                "module loading waits for the GPU; warm up outside the guard, use "
                "warmup=1, or set CUDA_MODULE_LOADING=EAGER)"
            )
        elif self.blocked:
            lines.append(
                f"  host blocked for {self.host_ms:.1f} ms (GPU kept busy for {self.sleep_ms:.1f} ms)"
            )
        else:
            lines.append(
                f"  host time {self.host_ms:.2f} ms (below the {self.threshold_ms:.1f} ms "
                "blocking threshold, e.g. a sync on an idle stream)"
            )
        return "\n".join(lines)


class no_gpu_sync(contextlib.ContextDecorator):  # noqa: N801 - reads as a statement
    """Context manager and decorator; see the module docstring.

    `warmup` applies to the decorator form only: the decorated function is
    called that many times unguarded before each guarded call.
    Re-usable and nestable: each `with` keeps its own measurement on a stack.
    `report` holds the GuardReport of the most recent exit. Not thread-safe
    (sync debug mode is process-global).
    """

    def __init__(
        self,
        action: Action = "raise",
        sleep_ms: float = 20.0,
        gpu_trace: bool = False,
        warmup: int = 0,
    ) -> None:
        if action not in ("raise", "warn"):
            raise ValueError(f"action must be 'raise' or 'warn', not {action!r}")
        if sleep_ms <= 0:
            raise ValueError("sleep_ms must be positive")
        if warmup < 0:
            raise ValueError("warmup must be >= 0")
        self.warmup = warmup
        self.action: Action = action
        self.sleep_ms = sleep_ms
        self.gpu_trace = gpu_trace
        self.report: GuardReport | None = None
        self._windows: list[Window] = []

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            require_cuda(GUARD_NAME)  # refuse before the unguarded warm-up runs
            for _ in range(self.warmup):
                func(*args, **kwargs)
            with self:
                return func(*args, **kwargs)

        return guarded

    def __enter__(self) -> no_gpu_sync:
        torch = require_cuda(GUARD_NAME)
        window = Window(torch, self.sleep_ms, gpu_trace=self.gpu_trace)
        window.start()
        self._windows.append(window)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        measured = self._windows.pop().stop()
        self.report = GuardReport.from_measured(measured)
        if exc_type is not None:
            return False  # never mask the body's own exception
        if self.report.violated:
            message = self.report.describe()
            if self.action == "raise":
                raise GpuSyncError(message, self.report)
            warnings.warn(message, GpuSyncWarning, stacklevel=2)
        return False
