"""Keep the GPU busy for a known time; shared by the probes in this folder.

The same approach as `sync_lint/runtime/busy.py`, copied (not imported) so the
probes need only torch on the GPU machine: queue `torch.cuda._sleep(cycles)`,
then time the host. Code that waits for the GPU takes about the queued time on
the host; code that does not returns in microseconds. `_sleep` counts SM clock
cycles, so cycles per millisecond are calibrated once, after a long warm-up
spin that lifts the SM clock out of its idle state.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time

import torch

_WARMUP_CYCLES = 50_000_000
_CALIBRATION_MS = 10.0
_rate: float | None = None


def require_cuda() -> None:
    """Exit with a clear message where there is no CUDA device."""
    if not torch.cuda.is_available():
        sys.exit(f"{sys.argv[0]}: needs CUDA (torch {torch.__version__} sees no CUDA device)")


def cycles_per_ms() -> float:
    """Calibrated `_sleep` cycles per millisecond (the highest of 3 re-aimed rounds)."""
    global _rate
    if _rate is not None:
        return _rate
    torch.cuda.synchronize()
    torch.cuda._sleep(_WARMUP_CYCLES)
    cycles = 2_000_000
    rates = []
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
        cycles = max(1, int(rate * _CALIBRATION_MS))
    _rate = max(rates[1:])
    return _rate


class Busy:
    """A sleep kernel of `ms` milliseconds bracketed by timing events."""

    def __init__(self, ms: float):
        self.requested_ms = ms
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)
        self.start.record()
        torch.cuda._sleep(max(1, int(cycles_per_ms() * ms)))
        self.end.record()

    def done(self) -> bool:
        return self.end.query()

    def actual_ms(self) -> float:
        self.end.synchronize()
        return float(self.start.elapsed_time(self.end))


def now_ms() -> float:
    return time.perf_counter() * 1e3


def environment() -> dict:
    """What a report must state: GPU, driver, torch, python, date."""
    env = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "python": platform.python_version(),
        "host": platform.node(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        try:
            env["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20, check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            env["driver"] = "unknown"
        env["sleep_cycles_per_ms"] = cycles_per_ms()
    return env


def median(xs):
    s = sorted(xs)
    n = len(s)
    if n == 0:
        return float("nan")
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])



def host_ms_behind_queue(call, sleep_ms: float, repeats: int, prepare=None) -> float:
    """The median host time of `call()` issued right after a `sleep_ms` sleep kernel was queued,
    over `repeats` runs (`prepare()`, if given, runs before each, with the GPU idle). A call that
    waits for the GPU takes about `sleep_ms`; one that does not, microseconds."""
    times = []
    for _ in range(repeats):
        if prepare is not None:
            prepare()
        busy = Busy(sleep_ms)
        start = now_ms()
        call()
        times.append(now_ms() - start)
        busy.actual_ms()
    return median(times)


def waits_behind_queue(cases: dict, sleep_ms: float, repeats: int) -> list[dict]:
    """Each case's median host time behind a queued sleep (`host_ms_behind_queue`), after one warm call
    (first-call allocations and lazy init are not what is measured), and whether it waited."""
    out = []
    for name, call in cases.items():
        call()
        torch.cuda.synchronize()
        host = host_ms_behind_queue(call, sleep_ms, repeats)
        out.append({"case": name, "host_ms": round(host, 3), "queued_ms": sleep_ms, "waited": host > sleep_ms / 2})
    return out


def save_waits(out: str, name: str, title: str, rows: list[dict], sleep_ms: float, repeats: int) -> None:
    """`save_report` of `waits_behind_queue`'s rows, as a table of host times."""
    table = [f"| case | host ms (median of {repeats}) | waited for the GPU |", "|---|---:|---|"]
    table += [f"| `{r['case']}` | {r['host_ms']} | {'yes' if r['waited'] else 'no'} |" for r in rows]
    save_report(out, name, queue_report(rows, sleep_ms, repeats), title, table)


def waits_probe(description: str, name: str, title: str, cases, sleep_ms: float, repeats: int) -> None:
    """A probe's whole run: its `--out` folder, each case of `cases()` timed behind a queued sleep,
    the report written."""
    out = probe_folder(description)
    save_waits(out, name, title, waits_behind_queue(cases(), sleep_ms, repeats), sleep_ms, repeats)


def probe_folder(description: str) -> str:
    """A probe's command line: its `--out` folder, made. Exits unless a CUDA device is visible."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", required=True)
    out = parser.parse_args().out
    require_cuda()
    os.makedirs(out, exist_ok=True)
    return out


def queue_report(rows: list[dict], sleep_ms: float, repeats: int, **extra: object) -> dict:
    """The report of a probe that times calls behind a queued sleep (`host_ms_behind_queue`)."""
    return {"environment": environment(), "command": " ".join(sys.argv), "sleep_ms": sleep_ms,
            "repeats": repeats, "cases": rows, **extra}


def save_report(out: str, name: str, report: dict, title: str, table: list[str]) -> None:
    """Write `<name>-<gpu>-torch<version>.json` (the report) and `.md` (the title, the environment,
    the command line and the table) into `out`, and print the Markdown."""
    slug = torch.cuda.get_device_name(0).split()[-1].lower()
    base = os.path.join(out, f"{name}-{slug}-torch{torch.__version__.split('+')[0]}")
    with open(base + ".json", "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
    lines = [title, "", f"{report['environment']}", "", f"`{report['command']}`", "", *table]
    with open(base + ".md", "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
