"""Prove the fixer's rewrites: sync-free after, numerically identical, on real inputs.

For each case (a `before` snippet and an input generator) the verifier runs the
real fixer to get the `after` code (never a hand-written after), executes both
over seeded random inputs, and requires:

- the before code blocks the host (the rule is real);
- the after code does not block and makes no pageable copy;
- outputs are identical: same dtype, shape and device, `torch.equal` with NaN
  where NaN; where the before raised, the after raises the same exception type.

Unsafe fixes are checked under their stated precondition, and each unsafe case
also shows what happens when the precondition is broken.

On a machine without CUDA (`device="cpu"`) only the equivalence half runs.
"""

from __future__ import annotations

import random
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

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


@dataclass
class CaseResult:
    rule: str
    case: str
    applicability: str
    after_source: str = ""
    before_blocks: bool | None = None
    after_blocks: bool | None = None
    after_pageable_copies: int | None = None
    before_host_ms: float | None = None
    after_host_ms: float | None = None
    trials: int = 0
    identical: bool = False
    failures: list[str] = field(default_factory=list)
    precondition: str = ""
    broken_precondition: str = ""
    skipped: str = ""

    @property
    def passed(self) -> bool:
        if self.skipped:
            return True
        timing_ok = self.before_blocks is not False and self.after_blocks is not True and not self.after_pageable_copies
        return self.identical and not self.failures and timing_ok


def fixed_source(case: Case) -> str:
    from sync_lint.fix import fix_snippet

    return fix_snippet(case.before, unsafe=case.unsafe)


def _load(source: str, label: str) -> Callable[..., Any]:
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


def _call(fn: Callable[..., Any], inputs: dict[str, Any]) -> tuple[Any, BaseException | None]:
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


def verify_case(case: Case, *, device: str, trials: int = 50, seed: int = 0, block_trials: int = 3,
                sleep_ms: float = 20.0) -> CaseResult:
    result = CaseResult(rule=case.rule, case=case.name, applicability="unsafe" if case.unsafe else "safe",
                        precondition=case.precondition)
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
    before, after = _load(case.before, f"{case.rule}-before"), _load(result.after_source, f"{case.rule}-after")

    rng = random.Random(f"{case.rule}/{case.name}/{seed}")
    identical = True
    timed = 0
    for trial in range(trials):
        inputs = case.inputs(rng, device, trial)
        out_before, err_before = _call(before, inputs)
        out_after, err_after = _call(after, inputs)
        result.trials += 1
        if err_before is not None or err_after is not None:
            if type(err_before) is not type(err_after):
                identical = False
                result.failures.append(
                    f"exception {type(err_before).__name__ if err_before else None} vs "
                    f"{type(err_after).__name__ if err_after else None} on {describe_inputs(inputs)}"
                )
            continue
        diff = same_output(out_before, out_after)
        if diff is not None:
            identical = False
            result.failures.append(f"{diff} on {describe_inputs(inputs)}")
        if device != "cpu" and timed < block_trials and _worth_timing(inputs):
            _time_pair(result, before, after, inputs, sleep_ms)
            timed += 1
        if len(result.failures) >= 5:
            break
    result.identical = identical
    if case.unsafe and case.broken is not None:
        result.broken_precondition = _broken_precondition(case, before, after, device, rng)
    return result


def _worth_timing(inputs: dict[str, Any]) -> bool:
    import torch

    # Timing an empty tensor proves little: the op may short-circuit.
    return all(v.numel() > 0 for v in inputs.values() if isinstance(v, torch.Tensor))


def _time_pair(result: CaseResult, before: Callable[..., Any], after: Callable[..., Any],
               inputs: dict[str, Any], sleep_ms: float) -> None:
    from sync_lint.runtime.detector import detect

    report_before = detect(lambda: before(**_clone(inputs)), sleep_ms=sleep_ms)
    report_after = detect(lambda: after(**_clone(inputs)), sleep_ms=sleep_ms)
    if report_before.exception is not None:
        return
    # Every timed trial must agree: one non-blocking before disproves the rule for that input.
    result.before_blocks = report_before.blocked if result.before_blocks is None else (
        result.before_blocks and report_before.blocked)
    result.after_blocks = report_after.blocked if result.after_blocks is None else (
        result.after_blocks or report_after.blocked)
    result.after_pageable_copies = (result.after_pageable_copies or 0) + report_after.pageable_copies
    result.before_host_ms = max(result.before_host_ms or 0.0, report_before.host_ms)
    result.after_host_ms = max(result.after_host_ms or 0.0, report_after.host_ms)
    if not report_before.blocked:
        result.failures.append(f"before did not block ({report_before.host_ms:.2f} ms) on {describe_inputs(inputs)}")
    if report_after.blocked:
        result.failures.append(f"after blocked ({report_after.host_ms:.2f} ms) on {describe_inputs(inputs)}")
    if report_after.pageable_copies:
        result.failures.append(f"after made {report_after.pageable_copies} pageable copies: {report_after.copy_kinds}")


def _broken_precondition(case: Case, before: Callable[..., Any], after: Callable[..., Any], device: str,
                         rng: random.Random) -> str:
    assert case.broken is not None
    if device != "cpu" and case.broken_asserts_on_cuda:
        device = "cpu"  # a device-side assert would poison this process's CUDA context
        suffix = " (run on the CPU: on CUDA this is a device-side assert that poisons the context)"
    else:
        suffix = ""
    inputs = case.broken(rng, device, 0)
    out_before, err_before = _call(before, inputs)
    out_after, err_after = _call(after, inputs)
    if err_before or err_after:
        outcome = (f"before: {type(err_before).__name__ if err_before else 'ok'}, "
                   f"after: {type(err_after).__name__ if err_after else 'ok'}")
    else:
        diff = same_output(out_before, out_after)
        outcome = "outputs still identical" if diff is None else f"outputs differ: {diff}"
    return f"{outcome}{suffix}"


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
        return data

    def to_markdown(self) -> str:
        lines = [
            f"# Fix verification: {self.gpu}, torch {self.torch}",
            "",
            f"Date: {self.date}. Device: `{self.device}`. Trials per case: {self.trials}. "
            f"Wall time: {self.seconds:.1f} s. Result: **{'PASS' if self.passed else 'FAIL'}**.",
            "",
            "The after code is what `sync-lint check --fix` (or `--unsafe-fixes`) emits for the before snippet.",
            "",
            "| rule | case | fix | before blocks | after blocks | after pageable copies | trials | identical | result |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for r in self.results:
            if r.skipped:
                lines.append(f"| {r.rule} | {r.case} | {r.applicability} | - | - | - | - | - | skipped: {r.skipped} |")
                continue
            ms = lambda v: "-" if v is None else f"{v:.2f} ms"  # noqa: E731
            lines.append(
                f"| {r.rule} | {r.case} | {r.applicability} | {_yes(r.before_blocks)} ({ms(r.before_host_ms)}) "
                f"| {_yes(r.after_blocks)} ({ms(r.after_host_ms)}) | {_num(r.after_pageable_copies)} | {r.trials} "
                f"| {_yes(r.identical)} | {'pass' if r.passed else 'FAIL'} |"
            )
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


def run_verification(cases: list[Case], *, device: str, trials: int = 50, seed: int = 0,
                     on_result: Callable[[CaseResult], None] | None = None) -> VerificationReport:
    import torch

    if device != "cpu" and not torch.cuda.is_available():
        raise NoCudaError("no CUDA device: `sync-lint verify` needs a GPU to measure host blocking "
                          "(use --device cpu for the equivalence half only)")
    gpu = torch.cuda.get_device_name(0) if device != "cpu" else "CPU"
    started = time.perf_counter()
    results = []
    for case in cases:
        try:
            result = verify_case(case, device=device, trials=trials, seed=seed)
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
