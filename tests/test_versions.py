"""Torch release gates: a rule is switched off only on evidence that reaches the target."""

from __future__ import annotations

import pytest

from sync_lint.rulekit import TorchGate, before_release


@pytest.mark.parametrize("target, release, before", [
    ("2.14.1", "2.15", True), ("2.15", "2.15", False), ("2.15.0", "2.15", False), ("2.15", "2.15.0", False),
    ("2.13.0+cu130", "2.15", True), ("2.16.0.dev20261101", "2.15", False), (None, "2.15", True), ("2.11", None, True),
])
def test_before_release_treats_2_15_and_2_15_0_alike(target, release, before) -> None:
    assert before_release(target, release) is before


def test_a_checked_removal_switches_the_check_off_from_that_release() -> None:
    gate = TorchGate("2.15", "2.15.0")
    assert gate.syncs("2.14.1") and not gate.syncs("2.15") and not gate.syncs("2.16")
    assert gate.note("SL301", "2.15.0") is None  # within the evidence: nothing to say
    assert "releases after 2.15.0 were not checked" in gate.note("SL301", "2.16")


def test_a_removal_claimed_beyond_the_evidence_switches_nothing_off() -> None:
    gate = TorchGate("2.17", "2.15.0", part="scalars")
    assert gate.syncs("2.17") and gate.syncs("2.18")
    assert gate.note("SL999", "2.14") is None
    assert gate.note("SL999", "2.17") == (
        "SL999 (scalars) stays on for torch 2.17: its removal in 2.17 is claimed beyond the releases checked "
        "(up to 2.15.0)")


def test_no_removal_found_keeps_the_check_on_and_says_so_beyond_the_evidence() -> None:
    gate = TorchGate(None, "2.15.0")
    assert gate.syncs("2.99")
    assert gate.note("SL999", "2.16") == "SL999 stays on for torch 2.16: the newest release checked, 2.15.0, still syncs"


def test_a_gate_without_stated_evidence_is_trusted_and_silent() -> None:
    gate = TorchGate("2.13")  # a third-party pack's `fixed_in_torch` alone
    assert not gate.syncs("2.14") and gate.note("SL999", "3.0") is None
