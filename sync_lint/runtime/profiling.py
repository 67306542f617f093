"""The profiler signal: which memcpy kinds and CUDA runtime syncs a call issued.

Timing cannot tell a pageable copy that happened to be fast from a pinned one,
and debug mode does not see pageable `non_blocking` copies at all; the profiler
(CUPTI) names every copy by its memory kinds, e.g. "Memcpy HtoD (Pageable ->
Device)", and records the runtime calls that wait: cudaStreamSynchronize,
cudaDeviceSynchronize, cudaEventSynchronize.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

RUNTIME_SYNC_NAMES = frozenset(
    {"cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize"}
)
_MARK = "sync_lint::profiled_call"


@dataclass
class ProfileSignal:
    copy_kinds: list[str] = field(default_factory=list)  # sorted, unique
    pageable_copies: int = 0
    runtime_syncs: list[str] = field(default_factory=list)  # in order, repeats kept
    error: str | None = None  # the profiler itself failed (no CUPTI, nested profiler)


def _is_copy(name: str) -> bool:
    return name.startswith("Memcpy") or name.startswith("Memset")


def profile_call(
    torch: ModuleType, call: Callable[[], Any]
) -> tuple[ProfileSignal, Any, BaseException | None]:
    """Run `call` once under torch.profiler; returns (signal, result, exception)."""
    from torch.profiler import ProfilerActivity, profile, record_function

    result: Any = None
    error: BaseException | None = None
    torch.cuda.synchronize()
    try:
        with warnings.catch_warnings():
            # torch warns on a process's first profile() about acc_events: noise here.
            warnings.filterwarnings("ignore", message=".*Profiler clears events")
            with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                with record_function(_MARK):
                    try:
                        result = call()
                    except KeyboardInterrupt:
                        raise
                    except BaseException as exc:  # recorded, like the timed run does
                        error = exc
                # Let the GPU side of the copies finish inside the trace. This sync
                # happens after the marked window, so it is filtered out below.
                torch.cuda.synchronize()
        events = list(prof.events())
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        return ProfileSignal(error=f"{type(exc).__name__}: {exc}"), result, error

    # Only the CPU-side marker: kineto also emits a GPU-timeline annotation of
    # the same name whose end can fall after our trailing synchronize.
    from torch.autograd import DeviceType

    marks = [
        e for e in events
        if e.name == _MARK and getattr(e, "device_type", DeviceType.CPU) == DeviceType.CPU
    ]
    lo = min((m.time_range.start for m in marks), default=None)
    hi = max((m.time_range.end for m in marks), default=None)

    signal = ProfileSignal()
    kinds: set[str] = set()
    for event in sorted(events, key=lambda e: e.time_range.start):
        name = event.name
        if _is_copy(name):
            # GPU-side events run later than the launch, so they are not
            # window-filtered: nothing else in this trace issues copies.
            kinds.add(name)
            if "Pageable" in name:
                signal.pageable_copies += 1
        elif name in RUNTIME_SYNC_NAMES:
            start = event.time_range.start
            if lo is None or hi is None or lo <= start <= hi:
                signal.runtime_syncs.append(name)
    signal.copy_kinds = sorted(kinds)
    return signal, result, error
