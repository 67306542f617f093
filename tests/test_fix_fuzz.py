"""Property-based fuzzing of the fixer, bounded to a few seconds (the long run: benchmarks/fuzz_fixes.py).

Over generated programs, mutated fixtures, and files with a BOM, a coding cookie or
CRLF newlines: fixing never crashes, the fixed text compiles, a second fix changes
nothing, every change lies on a reported fix edit's lines, no name is read that is
not bound at run time, a lazy-import module stays lazy, and nothing is refused.
The examples are derandomized so the suite is stable; the long run explores, and
adds hypothesmith's grammar-generated code (its grammar alone takes seconds to build).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fix_properties import TARGET_TORCH, check_text, shape_problems
from fixture_support import FIXTURES, fixture_files
from fuzz_support import as_bytes, mutations, programs
from sync_lint import api

BOUNDED = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
FIXTURE_SOURCES = [p.read_text(encoding="utf-8") for p in fixture_files()
                   if p.name == "positive.py" or p.parent == FIXTURES / "realistic"]


def _assert_clean(text: str) -> None:
    verdict = check_text(text)
    assert verdict.failures == [], f"{verdict.failures}\n--- input ---\n{text}"
    assert verdict.refusals == [], f"{verdict.refusals}\n--- input ---\n{text}"


@BOUNDED
@given(programs())
def test_generated_programs(text: str) -> None:
    _assert_clean(text)


@BOUNDED
@given(mutations(FIXTURE_SOURCES))
def test_mutated_fixtures(case: tuple[str, tuple[str, ...]]) -> None:
    _assert_clean(case[0])


@settings(BOUNDED, max_examples=4)
@given(programs(), st.booleans(), st.sampled_from([None, "utf-8", "latin-1"]))
def test_file_shapes_survive_a_fix_on_disk(tmp_path_factory: pytest.TempPathFactory, text: str, bom: bool,
                                           cookie: str | None) -> None:
    if bom and cookie == "latin-1":
        cookie = "utf-8"  # a BOM declares UTF-8
    data = as_bytes(text, bom, cookie)
    target = tmp_path_factory.mktemp("shape") / "m.py"
    target.write_bytes(data)
    target.chmod(0o640)
    plan = api.plan(isolated=True, target_torch_version=TARGET_TORCH)
    report = api.run_files(plan, [str(target)], fix=api.FixMode(unsafe=True), jobs=1)
    assert [e.message for r in report.results for e in r.errors] == []
    after = target.read_bytes()
    # The bytes are the library's fix of the decoded text, encoded the way the file was.
    decoded = data.decode("utf-8-sig" if bom else (cookie or "utf-8"))
    assert after.decode("utf-8-sig" if bom else (cookie or "utf-8")) == check_text(decoded).fixed
    assert shape_problems(data, after) == []
    assert target.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in Path(target.parent).iterdir()) == ["m.py"]
