"""Prove the fixer's rewrites: sync-free after, numerically identical, on real inputs.

For each case (a `before` snippet and an input generator) the verifier runs the
real fixer to get the `after` code (never a hand-written after), executes both
over seeded random inputs, and requires:

- the before code blocks the host (the rule is real);
- the after code does not block in any timed trial, cold ones included, and
  makes no pageable copy (unless the case keeps copies of at most 64 KB on
  purpose, which were measured never to block);
- outputs are identical: same dtype, shape and device, `torch.equal` with NaN
  where NaN; where the before raised, the after raises the same exception type.

Timing is honest about cold state. A trial is timed when its inputs are larger
than every earlier timed trial's (the copy cases' makers grow their sizes), and
it is timed before any untimed call with those inputs, so a fix that allocates
pinned memory meets each new size with no free block cached. Each case also runs
once in a fresh process (`runtime/cold.py`). The report gives every side's
median and worst host time, with the inputs of the worst.

Unsafe fixes are checked under their stated precondition, and each unsafe case
also shows what happens when the precondition is broken (on a GPU, with work
queued, so a race shows).

On a machine without CUDA (`device="cpu"`) only the equivalence half runs.
"""

from __future__ import annotations

import random
import statistics
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from sync_lint.runtime.cold import ColdResult, run_cold
from sync_lint.runtime.errors import NoCudaError

InputMaker = Callable[[random.Random, str, int], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    rule: str
    name: str
    before: str  # module source defining `run(**inputs)`
    inputs: InputMaker  # (rng, device, trial) -> keyword arguments for run()
    unsafe: bool = False
    precondition: str = ""
    # Inputs that break the precondition; the report shows what the fix then does.
    broken: InputMaker | None = None
    # A broken-precondition run on CUDA that would poison the context (device assert).
    broken_asserts_on_cuda: bool = False
    needs_cuda: bool = False  # e.g. pin_memory() needs an accelerator
    # The broken precondition shows only on CUDA (e.g. CUDA's fill_ raises on overflow,
    # the CPU's stores inf like setitem does).
    broken_shows_only_on_cuda: bool = False
    # The after code pins host memory on every call: the cold-process trial times its
    # first call with nothing warmed, and no timed call is warmed up.
    pins_per_call: bool = False
    # The timed window calls the code this many times back to back (a copy in a loop).
    burst: int = 1
    # The fix keeps pageable copies of at most 64 KB on purpose (measured never to block):
    # they are counted in the report, not failed.
    small_pageable_copies: bool = False


@dataclass
class Timing:
    """Host time of every timed call of one side (before or after), cold process included."""

    runs: list[float] = field(default_factory=list)
    worst_on: str = ""  # the inputs of the slowest call

    def add(self, host_ms: float, inputs: str) -> None:
        if not self.runs or host_ms > max(self.runs):
            self.worst_on = inputs
        self.runs.append(host_ms)

    @property
    def median(self) -> float | None:
        return statistics.median(self.runs) if self.runs else None

    @property
    def worst(self) -> float | None:
        return max(self.runs) if self.runs else None


@dataclass
class CaseResult:
    rule: str
    case: str
    applicability: str
    after_source: str = ""
    before_blocks: bool | None = None
    after_blocks: bool | None = None
    after_pageable_copies: int | None = None
    before: Timing = field(default_factory=Timing)
    after: Timing = field(default_factory=Timing)
    cold: ColdResult | None = None
    trials: int = 0
    identical: bool = False
    failures: list[str] = field(default_factory=list)
    precondition: str = ""
    broken_precondition: str = ""
    skipped: str = ""
    pageable_copies_allowed: bool = False

    @property
    def passed(self) -> bool:
        if self.skipped:
            return True
        copies_ok = self.pageable_copies_allowed or not self.after_pageable_copies
        timing_ok = self.before_blocks is not False and self.after_blocks is not True and copies_ok
        return self.identical and not self.failures and timing_ok


def fixed_source(case: Case) -> str:
    from sync_lint.fix import fix_snippet

    return fix_snippet(case.before, unsafe=case.unsafe)


def load_run(source: str, label: str) -> Callable[..., Any]:
    """The `run` function of a snippet module."""
    namespace: dict[str, Any] = {"__name__": f"sync_lint_verify_{label}"}
    exec(compile(source, f"<{label}>", "exec"), namespace)  # noqa: S102 - our own fixture code
    return namespace["run"]


def _clone(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        cloned = value.clone()
        return cloned.pin_memory() if value.is_pinned() else cloned
    if isinstance(value, list):
        return [_clone(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    return value


def call_run(fn: Callable[..., Any], inputs: dict[str, Any]) -> tuple[Any, BaseException | None]:
    """(result, None) or (None, the exception) of `fn` on fresh copies of `inputs`."""
    try:
        return fn(**_clone(inputs)), None
    except Exception as exc:  # the comparison is about exception types
        return None, exc


def same_output(a: Any, b: Any) -> str | None:
    """None when identical; otherwise what differs."""
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return f"type {type(a).__name__} vs {type(b).__name__}"
        if a.dtype != b.dtype:
            return f"dtype {a.dtype} vs {b.dtype}"
        if a.shape != b.shape:
            return f"shape {tuple(a.shape)} vs {tuple(b.shape)}"
        if a.device != b.device:
            return f"device {a.device} vs {b.device}"
        if a.is_floating_point() or a.is_complex():
            if torch.equal(torch.isnan(a), torch.isnan(b)) and torch.equal(
                torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0)
            ):
                return None
            return "values differ"
        return None if torch.equal(a, b) else "values differ"
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if type(a) is not type(b) or len(a) != len(b):
            return f"{type(a).__name__}[{len(a)}] vs {type(b).__name__}[{len(b)}]"
        for index, (x, y) in enumerate(zip(a, b)):
            diff = same_output(x, y)
            if diff:
                return f"[{index}]: {diff}"
        return None
    return None if a == b else f"{a!r} vs {b!r}"


def describe_inputs(inputs: dict[str, Any]) -> str:
    import torch

    parts = []
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            shown = value.flatten()[:8].tolist()
            more = "..." if value.numel() > 8 else ""
            parts.append(f"{key}=tensor(shape={tuple(value.shape)}, dtype={value.dtype}, "
                         f"device={value.device}, values={shown}{more})")
        else:
            parts.append(f"{key}={value!r}")
    return ", ".join(parts)


def describe_shapes(inputs: dict[str, Any]) -> str:
    """`host_cpu: int64[262144] cpu, v=3`: what sizes a timed call saw, without the values."""
    import torch

    parts = []
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            dtype = str(value.dtype).removeprefix("torch.")
            parts.append(f"{key}: {dtype}{list(value.shape)} {value.device}")
        elif isinstance(value, (list, tuple)):
            parts.append(f"{key}: {type(value).__name__} of {len(value)}")
        else:
            parts.append(f"{key}={value!r}")
    return ", ".join(parts)


def verify_case(case: Case, *, device: str, trials: int = 50, seed: int = 0, block_trials: int = 3,
                sleep_ms: float = 20.0, cold: bool = True) -> CaseResult:
    """Check one case over `trials` seeded inputs; on CUDA also time it and, with `cold`, run it
    once more in a fresh process."""
    result = CaseResult(rule=case.rule, case=case.name, applicability="unsafe" if case.unsafe else "safe",
                        precondition=case.precondition, pageable_copies_allowed=case.small_pageable_copies)
    if case.needs_cuda and device == "cpu":
        result.skipped = "needs an accelerator (pin_memory); checked on the GPU run"
        return result
    try:
        result.after_source = fixed_source(case)
    except Exception as exc:
        result.failures.append(f"the fixer failed: {type(exc).__name__}: {exc}")
        return result
    if result.after_source == case.before:
        result.failures.append("the fixer emitted no fix for the before snippet")
        return result
    before, after = load_run(case.before, f"{case.rule}-before"), load_run(result.after_source, f"{case.rule}-after")

    rng = random.Random(f"{case.rule}/{case.name}/{seed}")
    plan = _TimingPlan(block_trials)
    result.identical = True
    for trial in range(trials):
        inputs = case.inputs(rng, device, trial)
        if device != "cpu" and plan.wants(inputs):
            # Timed before any untimed call with these inputs: a new size meets a cold allocator.
            _time_pair(result, case, before, after, inputs, sleep_ms)
            plan.timed(trial, inputs)
        _compare(result, before, after, inputs)
        if len(result.failures) >= 5:
            break
    if cold and device != "cpu":
        _cold_trial(result, case, device, seed, plan.largest_trial, sleep_ms)
    if case.unsafe and case.broken is not None:
        result.broken_precondition = _broken_precondition(case, before, after, device, rng, sleep_ms)
    return result


def _compare(result: CaseResult, before: Callable[..., Any], after: Callable[..., Any],
             inputs: dict[str, Any]) -> None:
    """Run both on `inputs` (untimed) and record any difference."""
    out_before, err_before = call_run(before, inputs)
    out_after, err_after = call_run(after, inputs)
    result.trials += 1
    if err_before is not None or err_after is not None:
        if type(err_before) is not type(err_after):
            result.identical = False
            result.failures.append(
                f"exception {type(err_before).__name__ if err_before else None} vs "
                f"{type(err_after).__name__ if err_after else None} on {describe_inputs(inputs)}"
            )
        return
    diff = same_output(out_before, out_after)
    if diff is not None:
        result.identical = False
        result.failures.append(f"{diff} on {describe_inputs(inputs)}")


_MAX_TIMED = 8


class _TimingPlan:
    """Which trials to time: the first `block_trials` non-empty ones, and every later one whose
    inputs are larger than all timed so far (at most `_MAX_TIMED`)."""

    def __init__(self, block_trials: int) -> None:
        self._block_trials = block_trials
        self._count = 0
        self._largest = -1
        self.largest_trial = 0

    def wants(self, inputs: dict[str, Any]) -> bool:
        size = input_size(inputs)
        if size is None or self._count >= _MAX_TIMED:
            return False  # timing an empty tensor proves little: the op may short-circuit
        return self._count < self._block_trials or size > self._largest

    def timed(self, trial: int, inputs: dict[str, Any]) -> None:
        self._count += 1
        size = input_size(inputs) or 0
        if size > self._largest:
            self._largest, self.largest_trial = size, trial


def input_size(inputs: dict[str, Any]) -> int | None:
    """Bytes of the tensors, elements of the lists and 1 per other value in `inputs`; None when
    a tensor or a list is empty."""
    import torch

    total = 0
    for value in inputs.values():
        if isinstance(value, torch.Tensor):
            size = value.numel() * value.element_size()
        elif isinstance(value, (list, tuple)):
            size = len(value)
        else:
            size = 1
        if size == 0:
            return None
        total += size
    return total


def burst_call(fn: Callable[..., Any], inputs: dict[str, Any], times: int) -> Callable[[], Any]:
    """A call of `fn` `times` times back to back, each on its own copy of `inputs` made in advance (so
    no cloning is timed; the snippets never modify their inputs, so the detector's warm-up, timed and
    profiled calls may share the copies). Returns the last result."""
    copies = [_clone(inputs) for _ in range(times)]

    def run() -> Any:
        out = None
        for each in copies:
            out = fn(**each)
        return out

    return run


def _time_pair(result: CaseResult, case: Case, before: Callable[..., Any], after: Callable[..., Any],
               inputs: dict[str, Any], sleep_ms: float) -> None:
    from sync_lint.runtime.detector import detect

    shown = describe_shapes(inputs)
    warmup = 0 if case.pins_per_call else 1  # a per-call pin must meet this size cold
    report_after = detect(burst_call(after, inputs, case.burst), sleep_ms=sleep_ms, warmup=warmup)
    report_before = detect(burst_call(before, inputs, case.burst), sleep_ms=sleep_ms, profile=False)
    if report_before.exception is not None:
        return
    result.before.add(report_before.host_ms, shown)
    result.after.add(report_after.host_ms, shown)
    # Every timed trial must agree: one non-blocking before disproves the rule for that input.
    result.before_blocks = report_before.blocked if result.before_blocks is None else (
        result.before_blocks and report_before.blocked)
    result.after_blocks = bool(result.after_blocks) or report_after.blocked
    result.after_pageable_copies = (result.after_pageable_copies or 0) + report_after.pageable_copies
    if not report_before.blocked:
        result.failures.append(f"before did not block ({report_before.host_ms:.2f} ms) on {shown}")
    if report_after.blocked:
        result.failures.append(f"after blocked ({report_after.host_ms:.2f} ms) on {shown}")
    if report_after.pageable_copies and not case.small_pageable_copies:
        result.failures.append(f"after made {report_after.pageable_copies} pageable copies: {report_after.copy_kinds}")


def _cold_trial(result: CaseResult, case: Case, device: str, seed: int, trial: int, sleep_ms: float) -> None:
    """The case once more in a fresh process, on the largest timed trial's sizes."""
    cold = run_cold(case, result.after_source, device=device, seed=seed, trial=trial, sleep_ms=sleep_ms)
    result.cold = cold
    if cold.error:
        result.failures.append(f"cold process: {cold.error}")
        return
    if cold.diff:
        result.identical = False
        result.failures.append(f"cold process: {cold.diff} on {cold.inputs}")
    if cold.after_ms is not None:
        result.after.add(cold.after_ms, f"cold process: {cold.inputs}")
        result.before.add(cold.before_ms, f"cold process: {cold.inputs}")  # type: ignore[arg-type]
        if cold.after_blocked:
            result.after_blocks = True
            result.failures.append(f"after blocked in a fresh process ({cold.after_ms:.2f} ms) on {cold.inputs}")
        if cold.before_blocked is False:
            result.before_blocks = False
            result.failures.append(f"before did not block in a fresh process ({cold.before_ms:.2f} ms)")


def _broken_precondition(case: Case, before: Callable[..., Any], after: Callable[..., Any], device: str,
                         rng: random.Random, sleep_ms: float) -> str:
    assert case.broken is not None
    if device != "cpu" and case.broken_asserts_on_cuda:
        device = "cpu"  # a device-side assert would poison this process's CUDA context
        suffix = " (run on the CPU: on CUDA this is a device-side assert that poisons the context)"
    else:
        suffix = ""
    inputs = case.broken(rng, device, 0)
    out_before, err_before = call_run(before, inputs)
    timing = ""
    if device == "cpu":
        out_after, err_after = call_run(after, inputs)
    else:
        # With GPU work queued, as in a serving loop: a copy that reads a buffer the host
        # writes again before the copy has run shows the race.
        from sync_lint.runtime.detector import detect

        report = detect(lambda: after(**_clone(inputs)), sleep_ms=sleep_ms, warmup=0, profile=False)
        out_after, err_after = report.result, report.exception
        timing = f"; after took {report.host_ms:.2f} ms with {sleep_ms:.0f} ms of GPU work queued"
    if err_before or err_after:
        outcome = (f"before: {type(err_before).__name__ if err_before else 'ok'}, "
                   f"after: {type(err_after).__name__ if err_after else 'ok'}")
    else:
        diff = same_output(out_before, out_after)
        outcome = "outputs still identical" if diff is None else f"outputs differ: {diff}"
    return f"{outcome}{timing}{suffix}"


@dataclass
class VerificationReport:
    date: str
    device: str
    gpu: str
    torch: str
    trials: int
    results: list[CaseResult]
    seconds: float

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passed"] = self.passed
        for row, result in zip(data["results"], self.results):
            row["passed"] = result.passed
            for side in ("before", "after"):
                timing = getattr(result, side)
                row[side].update(median_ms=timing.median, worst_ms=timing.worst)
        return data

    def to_markdown(self) -> str:
        lines = [
            f"# Fix verification: {self.gpu}, torch {self.torch}",
            "",
            f"Date: {self.date}. Device: `{self.device}`. Trials per case: {self.trials}. "
            f"Wall time: {self.seconds:.1f} s. Result: **{'PASS' if self.passed else 'FAIL'}**.",
            "",
            "The after code is what `sync-lint check --fix` (or `--unsafe-fixes`) emits for the before snippet. "
            "Host ms are median / worst over every timed call, the fresh-process call included: a trial is timed "
            "when its inputs are larger than all timed before it, and before any untimed call with them. "
            "**cold** is the case run once more in a fresh process, on the largest timed inputs: its after ms "
            "(the fix's first call there when it pins memory per call) and whether it blocked.",
            "",
            "| rule | case | fix | before blocks (median / worst ms) | after blocks (median / worst ms) "
            "| cold: after ms, blocked | after pageable copies | timed | trials | identical | result |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [_row(r) for r in self.results]
        lines += _worst_section(self.results)
        unsafe = [r for r in self.results if r.precondition]
        if unsafe:
            lines += ["", "## Unsafe fixes: the precondition, and what breaking it does", ""]
            lines += [f"- {r.rule} {r.case}: exact when {r.precondition}."
                      + (f" Broken: {r.broken_precondition}." if r.broken_precondition else "") for r in unsafe]
        failures = [r for r in self.results if r.failures]
        if failures:
            lines += ["", "## Failures", ""]
            for r in failures:
                lines += [f"- {r.rule} {r.case}:"] + [f"  - {f}" for f in r.failures]
        lines += ["", "## Rewrites", ""]
        for r in self.results:
            if r.after_source:
                lines += [f"### {r.rule} {r.case}", "", "```python", r.after_source.rstrip(), "```", ""]
        return "\n".join(lines) + "\n"


def _yes(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _row(r: CaseResult) -> str:
    if r.skipped:
        return f"| {r.rule} | {r.case} | {r.applicability} | - | - | - | - | - | - | - | skipped: {r.skipped} |"
    cold = "-" if r.cold is None or r.cold.after_ms is None else (
        f"{_ms(r.cold.after_ms)}, {_yes(r.cold.after_blocked)}")
    copies = _num(r.after_pageable_copies) + (" (<= 64 KB, allowed)" if r.pageable_copies_allowed and
                                               r.after_pageable_copies else "")
    return (f"| {r.rule} | {r.case} | {r.applicability} | {_yes(r.before_blocks)} ({_ms(r.before.median)} / "
            f"{_ms(r.before.worst)}) | {_yes(r.after_blocks)} ({_ms(r.after.median)} / {_ms(r.after.worst)}) "
            f"| {cold} | {copies} | {len(r.after.runs)} | {r.trials} | {_yes(r.identical)} "
            f"| {'pass' if r.passed else 'FAIL'} |")


def _worst_section(results: list[CaseResult]) -> list[str]:
    timed = [r for r in results if r.after.runs]
    if not timed:
        return []
    lines = ["", "## Worst after call of each case", "",
             "| rule | case | worst after ms | on |", "|---|---|---|---|"]
    lines += [f"| {r.rule} | {r.case} | {_ms(r.after.worst)} | {r.after.worst_on} |" for r in timed]
    return lines


def run_verification(cases: list[Case], *, device: str, trials: int = 50, seed: int = 0, cold: bool = True,
                     on_result: Callable[[CaseResult], None] | None = None) -> VerificationReport:
    """Verify every case; on CUDA each also runs once in a fresh process unless `cold` is False."""
    import torch

    if device != "cpu" and not torch.cuda.is_available():
        raise NoCudaError("no CUDA device: `sync-lint verify` needs a GPU to measure host blocking "
                          "(use --device cpu for the equivalence half only)")
    gpu = torch.cuda.get_device_name(0) if device != "cpu" else "CPU"
    started = time.perf_counter()
    results = []
    for case in cases:
        try:
            result = verify_case(case, device=device, trials=trials, seed=seed, cold=cold)
        except Exception:
            result = CaseResult(rule=case.rule, case=case.name, applicability="unsafe" if case.unsafe else "safe",
                                failures=[f"verifier error: {traceback.format_exc(limit=3)}"])
        results.append(result)
        if on_result:
            on_result(result)
    return VerificationReport(
        date=time.strftime("%Y-%m-%d"), device=device, gpu=gpu, torch=torch.__version__, trials=trials,
        results=results, seconds=time.perf_counter() - started,
    )
