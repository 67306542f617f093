"""One measured window: GPU kept busy, host timed, sync sites captured.

Shared by `detect` (a function call) and `no_gpu_sync` (a `with` block), which
both need the same start/stop sequence split across two points in time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import ModuleType

from sync_lint.runtime.busy import (
    BusyWindow,
    blocked_threshold_ms,
    cycles_per_ms,
    keep_busy,
)
from sync_lint.runtime.capture import Site, SyncCapture


@dataclass
class Measured:
    host_ms: float
    sleep_ms: float  # requested
    actual_sleep_ms: float | None  # what the sleep kernel really took on the GPU
    debug_sites: list[Site | None] = field(default_factory=list)
    trace_sites: list[tuple[str, Site | None]] = field(default_factory=list)
    gpu_trace_active: bool = False

    @property
    def threshold_ms(self) -> float:
        return blocked_threshold_ms(self.sleep_ms, self.actual_sleep_ms)

    @property
    def blocked(self) -> bool:
        return self.host_ms > self.threshold_ms


class Window:
    """start() ... code under test ... stop() -> Measured."""

    def __init__(self, torch: ModuleType, sleep_ms: float, gpu_trace: bool = False) -> None:
        self._torch = torch
        self._sleep_ms = sleep_ms
        self._capture = SyncCapture(torch, gpu_trace=gpu_trace)
        self._busy: BusyWindow | None = None
        self._t0 = 0.0

    def start(self) -> None:
        torch = self._torch
        # Start from an idle GPU: leftover work would lengthen the sleep we
        # compare against. Done before capturing, so this sync is not reported.
        torch.cuda.synchronize()
        # Calibrate (first use only) before capturing: calibration synchronizes,
        # and the GPU-trace hooks would blame those syncs on the caller.
        cycles_per_ms(torch)
        self._capture.__enter__()
        try:
            self._busy = keep_busy(torch, self._sleep_ms)
        except BaseException:
            self._capture.__exit__(None, None, None)
            raise
        # Host work between the sleep launch and here eats into the sleep, which
        # only makes a blocking call look shorter; it is microseconds.
        self._t0 = time.perf_counter()

    def stop(self) -> Measured:
        host_ms = (time.perf_counter() - self._t0) * 1e3
        self._capture.__exit__(None, None, None)
        actual: float | None = None
        if self._busy is not None:
            try:
                actual = self._busy.actual_ms()
            except Exception:  # e.g. a device-side assert poisoned the context
                actual = None
        try:
            self._torch.cuda.synchronize()
        except Exception:
            pass
        return Measured(
            host_ms=host_ms,
            sleep_ms=self._sleep_ms,
            actual_sleep_ms=actual,
            debug_sites=list(self._capture.debug_sites),
            trace_sites=list(self._capture.trace_sites),
            gpu_trace_active=self._capture.gpu_trace_active,
        )
