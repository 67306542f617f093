"""The verifier's equivalence half on the CPU: what CI without a GPU can prove.

Every case runs the real fixer on its before snippet and compares outputs over
seeded random inputs. Blocking is measured only on the GPU (tests/gpu/).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the verifier's CPU half needs torch (CI installs the CPU build)")

from sync_lint.runtime.cases import all_cases  # noqa: E402
from sync_lint.runtime.verify import Case, same_output, verify_case  # noqa: E402

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


@pytest.mark.parametrize("case", [c for c in CASES if c.unsafe and c.broken], ids=lambda c: f"{c.rule}-{c.name}")
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
