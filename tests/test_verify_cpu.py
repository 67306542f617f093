"""The verifier's equivalence half on the CPU: what CI without a GPU can prove.

Every case runs the real fixer on its before snippet and compares outputs over
seeded random inputs. Blocking is measured only on the GPU (tests/gpu/).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the verifier's CPU half needs torch (CI installs the CPU build)")

import random  # noqa: E402

from sync_lint.runtime.cases import all_cases  # noqa: E402
from sync_lint.runtime.cold import ColdResult, measure, run_cold  # noqa: E402
from sync_lint.runtime.verify import (  # noqa: E402
    Case,
    CaseResult,
    VerificationReport,
    fixed_source,
    input_size,
    same_output,
    verify_case,
)

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.rule}-{c.name}")
def test_fix_is_numerically_identical_on_cpu(case: Case) -> None:
    if case.needs_cuda:
        pytest.skip("needs an accelerator (pin_memory): covered by the GPU verification run")
    result = verify_case(case, device="cpu", trials=50, seed=1)
    assert result.after_source and result.after_source != case.before
    assert result.failures == []
    assert result.identical and result.trials == 50


def test_every_rule_with_a_fix_has_a_case() -> None:
    from sync_lint.registry import builtin_rules

    covered = {c.rule for c in CASES}
    for rule in builtin_rules():
        if rule.fix_availability == "none":
            assert rule.code not in covered and rule.fix_verified_by is None
        else:  # its own cases, or those of the rule whose rewrite it shares
            assert (rule.fix_verified_by or rule.code) in covered, rule.code


@pytest.mark.parametrize("case", [c for c in CASES if c.unsafe and c.broken and not c.needs_cuda],
                         ids=lambda c: f"{c.rule}-{c.name}")
def test_unsafe_fix_with_broken_precondition_is_visibly_different(case: Case) -> None:
    if case.broken_shows_only_on_cuda:
        result = verify_case(case, device="cpu", trials=1, seed=1)
        assert result.broken_precondition == "outputs still identical"  # the GPU run shows the difference
        return
    result = verify_case(case, device="cpu", trials=1, seed=1)
    assert result.broken_precondition
    assert "still identical" not in result.broken_precondition, result.broken_precondition


def test_a_non_equivalent_rewrite_is_caught(monkeypatch) -> None:
    # The harness must be able to fail: feed it a "fix" that changes the value.
    case = next(c for c in CASES if c.rule == "SL301" and not c.unsafe)
    monkeypatch.setattr("sync_lint.runtime.verify.fixed_source", lambda c: c.before.replace("= v\n", "= v + 1\n"))
    result = verify_case(case, device="cpu", trials=20, seed=1)
    assert not result.passed and "values differ" in result.failures[0]


def test_same_output_compares_dtype_shape_and_nan() -> None:
    a = torch.tensor([1.0, float("nan")])
    assert same_output(a, a.clone()) is None
    assert "dtype" in same_output(a, a.double())
    assert "shape" in same_output(a, a[:1])
    assert same_output(torch.tensor([1, 2]), torch.tensor([1, 3])) == "values differ"


@pytest.mark.parametrize("case", [c for c in CASES if c.pins_per_call], ids=lambda c: f"{c.rule}-{c.name}")
def test_a_fix_that_pins_per_call_is_unsafe_and_its_trials_grow(case: Case) -> None:
    # The verifier times a trial when its inputs are larger than all timed before: the sizes must grow.
    assert case.unsafe and "cudaHostAlloc" in case.precondition
    rng = random.Random(0)
    sizes = [input_size(case.inputs(rng, "cpu", trial)) for trial in range(4)]
    assert all(a is not None and b is not None and b > a for a, b in zip(sizes, sizes[1:])), sizes


def test_the_cold_runner_rebuilds_a_case_in_a_fresh_process() -> None:
    case = next(c for c in CASES if c.rule == "SL301" and not c.unsafe)
    after = fixed_source(case)
    cold = run_cold(case, after, device="cpu", seed=1, trial=4, sleep_ms=20.0)
    assert (cold.error, cold.diff) == ("", "") and cold.after_ms is None and cold.inputs.startswith("values: int32[1000] cpu")
    assert cold.seconds > 0


def test_the_cold_runner_reports_a_difference_and_an_unknown_case() -> None:
    case = next(c for c in CASES if c.rule == "SL301" and not c.unsafe)
    request = {"rule": case.rule, "case": case.name, "device": "cpu", "seed": 1, "trial": 4, "sleep_ms": 20.0,
               "after_source": fixed_source(case).replace(".fill_(v)", ".fill_(v + 1)")}
    assert measure(request).diff == "values differ"
    with pytest.raises(LookupError, match="no verification case SL999 nowhere"):
        measure({**request, "rule": "SL999", "case": "nowhere"})


def test_the_report_shows_the_worst_call_and_the_cold_process() -> None:
    result = CaseResult(rule="SL303", case="cuda-from-pageable", applicability="unsafe", identical=True,
                        before_blocks=True, after_blocks=False, after_pageable_copies=0, trials=50)
    result.before.add(20.1, "n=1")
    for ms, shown in ((0.1, "n=1"), (2.4, "n=262144"), (0.2, "n=1000")):
        result.after.add(ms, shown)
    result.cold = ColdResult(trial=4, inputs="n=262144", after_ms=3.1, after_blocked=False)
    result.after.add(3.1, "cold process: n=262144")
    report = VerificationReport(date="d", device="cuda", gpu="G", torch="t", trials=50, results=[result], seconds=1.0)
    text = report.to_markdown()
    assert "| yes (20.10 / 20.10) | no (1.30 / 3.10) | 3.10, no |" in text
    assert "| SL303 | cuda-from-pageable | 3.10 | cold process: n=262144 |" in text
    row = report.to_json()["results"][0]
    assert row["after"]["worst_ms"] == 3.1 and row["cold"]["after_ms"] == 3.1
