"""The engine of `sync-lint trace`: run a program and find the lines that block.

Method. A line tracer (`sys.settrace`) follows user files only (see
sites.FileFilter). Before each traced line runs, the GPU is topped up with a
calibrated sleep kernel so that at least `sleep_ms` of work is queued; the host
time until the next line event of the same frame is then measured. A line that
waited for the GPU takes at least `sleep_ms`; a line that did not returns in
microseconds. A line whose host time exceeds `sleep_ms / 2` is counted as
blocking. Time spent in traced callees is excluded from the caller's line (the
caller's clock pauses while a traced child frame runs), so `.item()` inside a
helper is charged to the helper's line, not to every line up the call chain.
Library calls (torch, stdlib) are *included* in the line that made them: that is
where a user can change something.

Cost, by design: the GPU is kept permanently busy, so every real sync waits for
up to 2 x sleep_ms of sleep, and each traced line pays a tracer callback plus,
when the queue runs low, a kernel launch. Expect a program to run many times
slower; trace a few steps, not a training run.

Known limits:
* only the calling thread is traced; other threads run untraced;
* sleeps go to the current stream of the current device; a sync on another
  stream or device is only seen if that stream happens to be busy;
* a line is only measured once the *program* has initialised CUDA (we never
  initialise it first: that could change CUDA_VISIBLE_DEVICES handling or fork
  safety); lines before that are counted as executed, never as blocking;
* a CPU-heavy line (first cuBLAS call, torch.compile, data loading) that runs
  longer than the queued sleep looks like a block. `first_only` marks lines that
  blocked only on their first execution, the usual signature of warm-up cost;
* the first launch of each kernel really does wait for the GPU under CUDA lazy
  module loading (the CUDA 12.2+ default), so `eager_loading=True` (the
  default) sets CUDA_MODULE_LOADING=EAGER for the program, unless the
  environment already sets it. Measured on the H100: CUDA start-up went from
  3.8 s to 6.9 s, and a 9-line script's false "blocking" lines (`x * 2`,
  `torch.cos(x)`, `torch.sin(x) + torch.tanh(x)`, each a first launch) went
  away while its two real syncs stayed.
"""

from __future__ import annotations

import json
import linecache
import os
import runpy
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import Any, Protocol

from sync_lint.runtime.cuda import cuda_unavailable_reason_isolated, no_cuda_message
from sync_lint.runtime.errors import NoCudaError
from sync_lint.runtime.sites import FileFilter, norm

DEFAULT_SLEEP_MS = 5.0


# ---------------------------------------------------------------------------
# GPU backend: what the tracer needs from CUDA, behind a seam so the line
# bookkeeping can be unit-tested on a machine without a GPU.
# ---------------------------------------------------------------------------
class GpuBackend(Protocol):
    def ready(self) -> bool:
        """True once the program has initialised CUDA (never initialise it here)."""

    def enqueue_sleep(self, ms: float) -> None:
        """Queue `ms` of GPU spinning on the current stream; must not block."""

    def drained(self) -> bool | None:
        """Has all sleep queued so far finished? None when unknown."""


class CudaBackend:
    """The real backend: torch.cuda._sleep plus an event after each top-up."""

    def __init__(self) -> None:
        self._torch: Any = None
        self._rate = 0.0
        self._last_event: Any = None

    def ready(self) -> bool:
        if self._torch is not None:
            return True
        torch = sys.modules.get("torch")
        if torch is None:
            return False
        try:
            if not torch.cuda.is_initialized():
                return False
            from sync_lint.runtime.busy import cycles_per_ms

            # Calibration synchronizes; it runs here, between two lines, outside
            # any timed window.
            self._rate = cycles_per_ms(torch)
        except Exception:
            return False
        self._torch = torch
        return True

    def enqueue_sleep(self, ms: float) -> None:
        torch = self._torch
        torch.cuda._sleep(max(1, int(self._rate * ms)))
        event = torch.cuda.Event()
        event.record()
        self._last_event = event

    def drained(self) -> bool | None:
        # A line that really waited for the GPU leaves our sleep finished. If the
        # sleep is still running, the line was merely slow on the CPU.
        if self._last_event is None:
            return None
        try:
            return bool(self._last_event.query())
        except Exception:
            return None


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
@dataclass
class LineEntry:
    file: str
    line: int
    executions: int
    blocked: int  # executions that blocked
    blocked_ms: float  # host time of those executions, summed
    max_ms: float  # longest measured execution
    first_blocked: bool  # the first execution blocked
    source: str

    @property
    def first_only(self) -> bool:
        """Blocked once, on the first of several runs: probably warm-up, not a sync."""
        return self.blocked == 1 and self.first_blocked and self.executions > 1


@dataclass
class TraceReport:
    target: str  # script path, or "-m module"
    argv: list[str]
    sleep_ms: float
    entries: list[LineEntry]  # lines that blocked at least once, by file then line
    executions: dict[str, dict[int, int]]  # every traced line that ran: file -> line -> count
    cuda_initialized: bool
    exit_code: int | None = None  # from SystemExit; 0 when the program just ended
    exception: str | None = None  # "Type: message" of an uncaught exception
    traceback: str | None = None
    wall_s: float = 0.0
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)

    def executed(self, file: str, line: int) -> bool:
        return line in self.executions.get(norm(file), {})

    def execution_count(self, file: str, line: int) -> int:
        return self.executions.get(norm(file), {}).get(line, 0)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        # JSON object keys must be strings.
        data["executions"] = {
            f: {str(ln): n for ln, n in sorted(lines.items())}
            for f, lines in sorted(self.executions.items())
        }
        for entry, raw in zip(self.entries, data["entries"]):
            raw["first_only"] = entry.first_only
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TraceReport:
        data = dict(data)
        data["entries"] = [
            LineEntry(**{k: v for k, v in e.items() if k != "first_only"})
            for e in data.get("entries", [])
        ]
        data["executions"] = {
            f: {int(ln): n for ln, n in lines.items()}
            for f, lines in data.get("executions", {}).items()
        }
        return cls(**data)


# ---------------------------------------------------------------------------
# The line tracer
# ---------------------------------------------------------------------------
class _Pending:
    """The line a traced frame is currently running, and its clock."""

    __slots__ = ("frame", "file", "line", "t0", "acc", "armed")

    def __init__(self, frame: FrameType, file: str) -> None:
        self.frame = frame
        self.file = file
        self.line: int | None = None
        self.t0: float | None = None  # None while paused (a traced callee runs)
        self.acc = 0.0  # seconds accumulated before the last pause
        self.armed = False  # GPU work was queued when this line started


class _Stats:
    __slots__ = ("executions", "blocked", "blocked_ms", "max_ms", "first_blocked")

    def __init__(self) -> None:
        self.executions = 0
        self.blocked = 0
        self.blocked_ms = 0.0
        self.max_ms = 0.0
        self.first_blocked = False


class LineTracer:
    """sys.settrace machinery. `start()`/`stop()` around the program."""

    def __init__(self, file_filter: FileFilter, sleep_ms: float, backend: GpuBackend) -> None:
        if sleep_ms <= 0:
            raise ValueError("sleep_ms must be positive")
        self.filter = file_filter
        self.sleep_s = sleep_ms / 1e3
        self.threshold_s = self.sleep_s / 2
        self.backend = backend
        self.stats: dict[tuple[str, int], _Stats] = {}
        self.cuda_seen = False
        self._stack: list[_Pending] = []
        self._wanted: dict[str, str | None] = {}  # co_filename -> normalised path or None
        self._busy_until = 0.0  # host-clock estimate of when queued sleep ends
        self._previous_trace: Any = None

    # -- GPU queue -----------------------------------------------------------
    def _arm(self) -> bool:
        """Make sure at least sleep_ms of sleep is queued; False before CUDA is up."""
        if not self.backend.ready():
            return False
        self.cuda_seen = True
        now = time.perf_counter()
        if self._busy_until - now < self.sleep_s:
            self.backend.enqueue_sleep(self.sleep_s * 1e3)
            # Keeps the queue within [sleep, 2*sleep): long enough that a sync
            # exceeds the threshold, short enough that each sync costs little.
            self._busy_until = max(self._busy_until, now) + self.sleep_s
        return True

    # -- bookkeeping ---------------------------------------------------------
    def _close(self, rec: _Pending, now: float) -> None:
        if rec.line is None:
            return
        elapsed = rec.acc + (now - rec.t0 if rec.t0 is not None else 0.0)
        key = (rec.file, rec.line)
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = _Stats()
        stats.executions += 1
        ms = elapsed * 1e3
        if rec.armed:
            stats.max_ms = max(stats.max_ms, ms)
            if elapsed > self.threshold_s and self.backend.drained() is not False:
                stats.blocked += 1
                stats.blocked_ms += ms
                if stats.executions == 1:
                    stats.first_blocked = True
                self._busy_until = now  # the wait drained the queue
        rec.line = None
        rec.t0 = None
        rec.acc = 0.0

    def _begin(self, rec: _Pending, line: int) -> None:
        rec.line = line
        rec.acc = 0.0
        rec.armed = self._arm()
        rec.t0 = time.perf_counter()  # after the top-up: our launch is not timed

    def _top_for(self, frame: FrameType) -> _Pending | None:
        stack = self._stack
        if stack and stack[-1].frame is frame:
            return stack[-1]
        # Out of order (a generator closed from elsewhere, say): search.
        for rec in reversed(stack):
            if rec.frame is frame:
                return rec
        return None

    # -- trace functions -----------------------------------------------------
    def _wanted_file(self, filename: str) -> str | None:
        try:
            return self._wanted[filename]
        except KeyError:
            path = norm(filename) if self.filter.wants(filename) else None
            self._wanted[filename] = path
            return path

    def _global(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event != "call":
            return None
        path = self._wanted_file(frame.f_code.co_filename)
        if path is None:
            return None
        now = time.perf_counter()
        if self._stack:
            parent = self._stack[-1]
            if parent.t0 is not None:
                parent.acc += now - parent.t0
                parent.t0 = None
        self._stack.append(_Pending(frame, path))
        return self._local

    def _local(self, frame: FrameType, event: str, arg: Any) -> Any:
        now = time.perf_counter()
        rec = self._top_for(frame)
        if rec is None:
            return self._local
        if event == "line":
            self._close(rec, now)
            self._begin(rec, frame.f_lineno)
        elif event == "return":
            self._close(rec, now)
            self._stack.remove(rec)
            if self._stack:
                parent = self._stack[-1]
                if parent.line is not None and parent.t0 is None:
                    # Top the queue up again: the callee may have drained it.
                    parent.armed = self._arm() and parent.armed
                    parent.t0 = time.perf_counter()
        elif event == "exception":
            # The line raised; what follows is a handler line or the return.
            self._close(rec, now)
        return self._local

    def start(self) -> None:
        self._previous_trace = sys.gettrace()
        sys.settrace(self._global)

    def stop(self) -> None:
        sys.settrace(self._previous_trace)
        now = time.perf_counter()
        while self._stack:  # frames left open, e.g. the program replaced settrace
            self._close(self._stack.pop(), now)

    # -- results -------------------------------------------------------------
    def entries(self) -> list[LineEntry]:
        out = []
        for (file, line), s in sorted(self.stats.items()):
            if s.blocked:
                out.append(
                    LineEntry(
                        file=file,
                        line=line,
                        executions=s.executions,
                        blocked=s.blocked,
                        blocked_ms=round(s.blocked_ms, 3),
                        max_ms=round(s.max_ms, 3),
                        first_blocked=s.first_blocked,
                        source=linecache.getline(file, line).strip(),
                    )
                )
        return out

    def executions(self) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {}
        for (file, line), s in self.stats.items():
            out.setdefault(file, {})[line] = s.executions
        return out


# ---------------------------------------------------------------------------
# Running a program
# ---------------------------------------------------------------------------
def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # what the interpreter would have done
    return 1


def run_traced(
    argv: Sequence[str] | None,
    module: str | None,
    tracer: LineTracer,
) -> TraceReport:
    """Run a script (`argv[0]` is its path) or a module (`argv` are its args)
    under `tracer`. Never raises for the program's own failures: SystemExit and
    exceptions are recorded in the report."""
    argv = list(argv or [])
    if module is None and not argv:
        raise ValueError("give a script path (argv[0]) or a module name")
    if module is not None:
        target = f"-m {module}"
        sys_argv = [module, *argv]
        path0 = os.getcwd()  # what `python -m` puts first on sys.path
    else:
        target = argv[0]
        sys_argv = argv
        path0 = os.path.dirname(os.path.abspath(argv[0]))

    saved_argv, saved_path = sys.argv[:], sys.path[:]
    sys.argv = sys_argv
    sys.path.insert(0, path0)
    exit_code: int | None = 0
    error: str | None = None
    tb: str | None = None
    started = time.perf_counter()
    tracer.start()
    try:
        if module is not None:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exc:
        exit_code = _exit_code(exc)
    except BaseException as exc:  # KeyboardInterrupt too: keep what was measured
        exit_code = None
        error = f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    finally:
        tracer.stop()
        sys.argv, sys.path[:] = saved_argv, saved_path
    wall = time.perf_counter() - started

    return TraceReport(
        target=target,
        argv=sys_argv,
        sleep_ms=tracer.sleep_s * 1e3,
        entries=tracer.entries(),
        executions=tracer.executions(),
        cuda_initialized=tracer.cuda_seen,
        exit_code=exit_code,
        exception=error,
        traceback=tb,
        wall_s=round(wall, 3),
        include=list(tracer.filter.include),
        exclude=list(tracer.filter.exclude),
    )


def trace_program(
    argv: list[str] | None,
    module: str | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    sleep_ms: float = DEFAULT_SLEEP_MS,
    eager_loading: bool = True,
) -> TraceReport:
    """Run a program under the line tracer on the GPU; see the module docstring.

    Script: `trace_program(["train.py", "--steps", "3"])`.
    Module: `trace_program(["--steps", "3"], module="pkg.train")`.
    `include`/`exclude` are fnmatch globs on absolute paths. `eager_loading`:
    see the module docstring. Raises NoCudaError
    (checked in a child process, so this process's CUDA state is untouched)
    when no GPU is usable.
    """
    reason = cuda_unavailable_reason_isolated()
    if reason is not None:
        raise NoCudaError(no_cuda_message("sync-lint trace", reason))
    tracer = LineTracer(
        FileFilter(include=tuple(include), exclude=tuple(exclude)),
        sleep_ms=sleep_ms,
        backend=CudaBackend(),
    )
    # Read by CUDA when the program initialises it (we never do so first); has
    # no effect if this process already initialised CUDA.
    set_loading = eager_loading and "CUDA_MODULE_LOADING" not in os.environ
    if set_loading:
        os.environ["CUDA_MODULE_LOADING"] = "EAGER"
    try:
        return run_traced(argv, module, tracer)
    finally:
        if set_loading:
            os.environ.pop("CUDA_MODULE_LOADING", None)
