"""Keeping the GPU busy for a known time, so host blocking becomes measurable.

Every runtime signal here rests on one trick: queue a kernel that spins for
`ms` milliseconds (`torch.cuda._sleep(cycles)`), then time the host. Code that
waits for the GPU takes about `ms` on the host; code that does not returns in
microseconds. `_sleep` counts SM clock cycles, so cycles-per-millisecond is
calibrated once per device and cached for the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

# Per device index. Calibration costs ~100 ms of GPU time; once is enough.
_CYCLES_PER_MS: dict[int, float] = {}

# Spin long enough before calibrating that the SM clock has left its idle state
# (345 MHz idle vs ~1980 MHz boosted on an H200): calibrating at the idle clock
# would make every later sleep several times shorter than asked for.
_WARMUP_CYCLES = 50_000_000
_CALIBRATION_MS = 10.0


def cycles_per_ms(torch: ModuleType) -> float:
    """Calibrated `_sleep` cycles per millisecond on the current device."""
    index = torch.cuda.current_device()
    cached = _CYCLES_PER_MS.get(index)
    if cached is not None:
        return cached
    torch.cuda.synchronize()
    torch.cuda._sleep(_WARMUP_CYCLES)
    cycles = 2_000_000
    rates: list[float] = []
    for _ in range(4):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        torch.cuda._sleep(cycles)
        end.record()
        end.synchronize()
        ms = start.elapsed_time(end)
        rate = cycles / max(ms, 1e-3)
        rates.append(rate)
        # Re-aim at ~10 ms: event timing of a sub-millisecond sleep is noisy.
        cycles = max(1, int(rate * _CALIBRATION_MS))
    # The highest rate makes later sleeps at least as long as requested; a
    # sleep that runs long only widens the margin above the 50% threshold.
    rate = max(rates[1:])
    _CYCLES_PER_MS[index] = rate
    return rate


@dataclass
class BusyWindow:
    """A sleep kernel bracketed by CUDA events, so its real length can be read."""

    requested_ms: float
    start: Any
    end: Any

    def actual_ms(self) -> float:
        """GPU time the sleep really took. Synchronizes on the end event."""
        self.end.synchronize()
        return float(self.start.elapsed_time(self.end))


def keep_busy(torch: ModuleType, ms: float) -> BusyWindow:
    """Queue `ms` of GPU spinning on the current stream; returns at once."""
    rate = cycles_per_ms(torch)
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(max(1, int(rate * ms)))
    end.record()
    return BusyWindow(requested_ms=ms, start=start, end=end)


def blocked_threshold_ms(requested_ms: float, actual_ms: float | None = None) -> float:
    """Host time above which a call counts as having waited for the GPU.

    Half the sleep, the rule measured in the ground-truth table (blocking calls
    took ~40.5 ms against a 41 ms sleep, non-blocking ones under 1 ms). When the
    sleep's real length is known and shorter (clock boost), use that instead.
    """
    base = requested_ms if actual_ms is None else min(requested_ms, actual_ms)
    return 0.5 * base
