"""One verification case in a fresh Python process: cold allocators, first calls timed.

A fix can be sync-free in a warm process and still stall in a fresh one: a
per-call `pin_memory()` meets an empty caching host allocator there and calls
`cudaHostAlloc`. So the verifier runs every case once more in a new interpreter:

    python -m sync_lint.runtime.cold   < request.json   > result.json

The request names the case by rule code and case name (the runner rebuilds it
from the registry), and carries the fixed source, the seed and trial that pick
the inputs, the device and the GPU sleep. The runner loads both modules (their
module-level code is set-up, like an `__init__`), runs the before code once, and
the after code once too unless it pins memory per call (`Case.pins_per_call`): a
kernel's first launch in a process loads its module and waits for the GPU under
CUDA lazy loading, a one-time cost of any code, not of the fix. Nothing before
the timed calls touches pinned memory, so a per-call pin is the process's first.
It then times the after, then the before, once each behind queued GPU work, and
compares their results. On the CPU only the comparison runs (the plumbing check
CI can do). It prints one JSON line: a `ColdResult`.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from sync_lint.runtime.verify import Case

_TIMEOUT_S = 180
_DRAWS = 20


@dataclass
class ColdResult:
    trial: int
    inputs: str = ""
    before_ms: float | None = None
    after_ms: float | None = None
    threshold_ms: float | None = None
    before_blocked: bool | None = None
    after_blocked: bool | None = None
    diff: str = ""  # what differs between before and after ("" when identical)
    error: str = ""  # the runner failed: why
    seconds: float = 0.0  # the whole fresh process, start-up included


def run_cold(case: Case, after_source: str, *, device: str, seed: int, trial: int, sleep_ms: float) -> ColdResult:
    """Run `case` once in a fresh interpreter on trial `trial`'s inputs."""
    request = {"rule": case.rule, "case": case.name, "after_source": after_source, "device": device,
               "seed": seed, "trial": trial, "sleep_ms": sleep_ms}
    started = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "sync_lint.runtime.cold"], input=json.dumps(request),
                              capture_output=True, text=True, timeout=_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return ColdResult(trial=trial, error=f"no answer within {_TIMEOUT_S} s")
    seconds = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return ColdResult(trial=trial, error=f"runner exited {done.returncode}: {tail}", seconds=seconds)
    result = ColdResult(**json.loads(lines[-1]))
    result.seconds = seconds
    return result


def _find_case(rule: str, name: str) -> Case:
    from sync_lint.runtime.cases import all_cases

    for case in all_cases():
        if case.rule == rule and case.name == name:
            return case
    raise LookupError(f"no verification case {rule} {name}")


def _inputs(case: Case, device: str, seed: int, trial: int) -> dict[str, Any]:
    """Trial `trial`'s inputs, drawn again until no tensor is empty (an empty tensor may short-circuit)."""
    from sync_lint.runtime.verify import input_size

    rng = random.Random(f"{case.rule}/{case.name}/{seed}/cold/{trial}")
    inputs = case.inputs(rng, device, trial)
    for _ in range(_DRAWS):
        if input_size(inputs) is not None:
            break
        inputs = case.inputs(rng, device, trial)
    return inputs


def _timed(fn: Callable[[], Any], sleep_ms: float) -> Any:
    """The detector's report of one call behind queued GPU work, with no warm-up."""
    from sync_lint.runtime.detector import detect

    return detect(fn, sleep_ms=sleep_ms, warmup=0, profile=False)


def measure(request: dict[str, Any]) -> ColdResult:
    """The runner's work, in the fresh process."""
    from sync_lint.runtime.verify import burst_call, call_run, describe_shapes, load_run, same_output

    case = _find_case(request["rule"], request["case"])
    device, trial = request["device"], request["trial"]
    inputs = _inputs(case, device, request["seed"], trial)
    result = ColdResult(trial=trial, inputs=describe_shapes(inputs))
    before = load_run(case.before, f"{case.rule}-before")
    after = load_run(request["after_source"], f"{case.rule}-after")
    if device == "cpu":
        (out_before, err_before), (out_after, err_after) = call_run(before, inputs), call_run(after, inputs)
    else:
        import torch

        from sync_lint.runtime.busy import blocked_threshold_ms, cycles_per_ms

        torch.cuda.init()
        cycles_per_ms(torch)
        call_run(before, inputs)  # loads the before's kernels
        if not case.pins_per_call:
            call_run(after, inputs)  # loads the fix's kernels; it allocates no pinned memory per call
        sleep_ms = request["sleep_ms"]
        after_report = _timed(burst_call(after, inputs, case.burst), sleep_ms)
        before_report = _timed(burst_call(before, inputs, case.burst), sleep_ms)
        out_after, err_after = after_report.result, after_report.exception
        out_before, err_before = before_report.result, before_report.exception
        result.after_ms, result.before_ms = after_report.host_ms, before_report.host_ms
        result.after_blocked, result.before_blocked = after_report.blocked, before_report.blocked
        result.threshold_ms = blocked_threshold_ms(sleep_ms, after_report.actual_sleep_ms)
    if type(err_before) is not type(err_after):
        result.diff = f"exception {type(err_before).__name__} vs {type(err_after).__name__}"
    elif err_before is None:
        result.diff = same_output(out_before, out_after) or ""
    return result


def main() -> None:
    request = json.loads(sys.stdin.read())
    try:
        result = measure(request)
    except Exception as exc:  # reported to the parent, which records it as a failure
        result = ColdResult(trial=request.get("trial", 0), error=f"{type(exc).__name__}: {exc}")
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
