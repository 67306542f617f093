"""The verifier on a real GPU: every fix blocks before, not after, with identical outputs,
in every timed trial (sizes growing) and once more in a fresh process."""

from __future__ import annotations

import pytest

from sync_lint.runtime.cuda import cuda_available

pytestmark = pytest.mark.skipif(
    not cuda_available(), reason="no CUDA device: fix verification measures host blocking on a GPU"
)


def test_every_case_passes_on_cuda_warm_and_cold() -> None:
    from sync_lint.runtime.cases import all_cases
    from sync_lint.runtime.verify import run_verification

    report = run_verification(all_cases(), device="cuda", trials=10, seed=3)
    failures = {f"{r.rule} {r.case}": r.failures for r in report.results if not r.passed}
    assert failures == {}
    assert all(r.cold is not None and r.cold.after_ms is not None and r.cold.after_blocked is False
               for r in report.results), [(r.case, r.cold) for r in report.results]
    safe = [r for r in report.results if r.applicability == "safe"]
    assert safe and all(r.before_blocks and r.after_blocks is False for r in safe)
    # The copy cases met every size of their cycle cold: one timed call per new size, and the fresh process.
    pinning = [r for r in report.results if r.case in ("cuda-from-pageable", "copy-from-pageable")]
    assert pinning and all(len(r.after.runs) >= 6 for r in pinning)
