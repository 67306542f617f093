"""Fixes against golden files, and properties every fixture must keep when fixed.

Golden files: next to `fixtures/<CODE>/X.py`, `X.fixed.py` is what the safe
fixes make of it and `X.unsafe.py` what safe plus unsafe fixes make of it. An
`X.unsafe.py` without an `X.fixed.py` says the safe fixes leave `X.py` as it is
(a rule whose fixes are all unsafe), rather than keeping a copy of `X.py`.

Properties, over every fixture (collected at test time, so new fixtures join
automatically), with safe fixes and with unsafe ones too:
- the fixed text parses;
- no fix had to be refused or rolled back (a rule whose fix breaks the code or
  introduces a finding fails here);
- fixing the fixed text again changes nothing;
- re-linting the fixed text finds nothing, of the fixed rule, where a fix wrote;
- fixing never adds a finding of any code.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import libcst as cst
import pytest

from fixture_support import FIXTURE_TORCH, FIXTURES, fixture_files
from sync_lint.config import Settings
from sync_lint.diagnostics import Position
from sync_lint.engine import lint_source
from sync_lint.fix import FixOutcome, fix_source
from sync_lint.registry import all_rules

MODES = {"safe": False, "unsafe": True}


def _rules():
    return [rule for rule in all_rules().values() if rule.active_for_torch(FIXTURE_TORCH)]


def _fix(source: str, path: Path, unsafe: bool) -> FixOutcome:
    return fix_source(source, str(path), _rules(), Settings(target_torch_version=FIXTURE_TORCH), unsafe=unsafe)


def _golden_cases() -> list[tuple[Path, Path, bool]]:
    cases = []
    for source in fixture_files():
        stem = source.name[: -len(".py")]
        fixed, unsafe = source.with_name(stem + ".fixed.py"), source.with_name(stem + ".unsafe.py")
        if fixed.exists():
            cases.append((source, fixed, False))
        elif unsafe.exists():
            cases.append((source, source, False))
        if unsafe.exists():
            cases.append((source, unsafe, True))
    return cases


def _id(path: Path) -> str:
    return str(path.relative_to(FIXTURES))


GOLDEN = _golden_cases()
_IDS = [_id(golden) + (" (unchanged by safe fixes)" if golden == source else "") for source, golden, _ in GOLDEN]


# With no golden file yet, pytest reports this test as skipped (empty parameter set).
@pytest.mark.parametrize("source, golden, unsafe", GOLDEN, ids=_IDS)
def test_golden(source: Path, golden: Path, unsafe: bool) -> None:
    outcome = _fix(source.read_text(encoding="utf-8"), source, unsafe)
    assert outcome.errors == []
    assert outcome.new_source == golden.read_text(encoding="utf-8")


def test_golden_files_have_a_source() -> None:
    """A stray X.fixed.py whose X.py is gone would never be checked."""
    for golden in [*FIXTURES.rglob("*.fixed.py"), *FIXTURES.rglob("*.unsafe.py")]:
        stem = golden.name.rsplit(".", 2)[0]
        assert golden.with_name(stem + ".py").exists(), f"{_id(golden)} has no source fixture"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", fixture_files(), ids=_id)
def test_fix_properties(path: Path, mode: str) -> None:
    unsafe = MODES[mode]
    source = path.read_text(encoding="utf-8")
    outcome = _fix(source, path, unsafe)
    assert outcome.errors == [], "a fix was refused or rolled back"
    fixed = outcome.new_source

    # The fixed text parses.
    cst.parse_module(fixed)

    # Fixing again changes nothing.
    again = _fix(fixed, path, unsafe)
    assert again.new_source == fixed
    assert not again.applied

    # Nothing of the fixed rule is reported where a fix wrote.
    remaining = lint_source(fixed, str(path), _rules(), Settings(target_torch_version=FIXTURE_TORCH))
    for record in outcome.records:
        for diagnostic in remaining.diagnostics:
            if diagnostic.code != record.code:
                continue
            assert not (record.start <= diagnostic.start < max(record.end, _after(record.start))), (
                f"{record.code} still reported at {diagnostic.start.row}:{diagnostic.start.column} "
                f"after its fix wrote {record.after!r}"
            )

    # Fixing never adds findings.
    before = Counter(d.code for d in lint_source(source, str(path), _rules(),
                                                 Settings(target_torch_version=FIXTURE_TORCH)).diagnostics)
    after = Counter(d.code for d in remaining.diagnostics)
    assert not after - before, f"fixing added {dict(after - before)}"


def _after(position: Position) -> Position:
    return Position(position.row, position.column + 1)
