"""Shared helpers for fixture-driven tests.

A fixture file marks every finding it must produce with a trailing comment
`# expect: SL101` (several codes: `# expect: SL101, SL104`). Every rule runs on
every fixture, so a file states the exact set of (line, code) pairs it yields:
a stray finding from another rule fails the test just like a missing one.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable

from sync_lint.config import Settings
from sync_lint.engine import lint_source
from sync_lint.registry import all_rules

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>SL\d+(?:\s*,\s*SL\d+)*)")
# The torch version the ground truth was measured on: fixtures describe 2.11 behaviour.
FIXTURE_TORCH = "2.11"


def expected_findings(source: str) -> set[tuple[int, str]]:
    found = set()
    for row, line in enumerate(source.splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            for code in re.split(r"\s*,\s*", match.group("codes")):
                found.add((row, code))
    return found


def lint_text(source: str, path: str = "fixture.py", **settings: object):
    rules = [r for r in all_rules().values() if r.active_for_torch(str(settings.get("target_torch_version", FIXTURE_TORCH)))]
    config = Settings(target_torch_version=FIXTURE_TORCH).override(**settings)
    result = lint_source(source, path, rules, config)
    # Hot paths within the text itself (`# sync-lint: hot` roots, SL601), as an isolated run reports them.
    from sync_lint.hotpaths import analyse_text

    analyse_text(result, source, config, selected=any(r.code == "SL601" for r in rules))
    return result


def actual_findings(source: str, path: str = "fixture.py", **settings: object) -> set[tuple[int, str]]:
    result = lint_text(source, path, **settings)
    assert not result.errors, result.errors
    return {(d.start.row, d.code) for d in result.diagnostics}


PROJECTS = FIXTURES / "projects"  # multi-module projects: tests/test_project_fixtures.py checks them


def fixture_files() -> list[Path]:
    return sorted(
        p for p in FIXTURES.rglob("*.py")
        if not p.name.endswith((".fixed.py", ".unsafe.py")) and PROJECTS not in p.parents
    )


def check_small_project(tmp_path: Path, files: dict[str, str], pyproject: str = "", strict: bool = False) -> list:
    """Write a project (`pyproject.toml` and `files`, paths relative to its root) under `tmp_path`,
    check it whole with its index, and return the diagnostics."""
    from sync_lint import api

    root = tmp_path / "proj"
    for name, text in {"pyproject.toml": pyproject, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    plan = api.plan([str(root)], strict=strict, project=api.ProjectOptions(cache_dir=tmp_path / "cache"))
    return [d for r in api.run(plan, [str(root)]).results for d in r.diagnostics]


def wait_until_gone(probe: Callable[[], None], timeout: float) -> bool:
    """Whether the processes `probe` signals with 0 (`os.kill(pid, 0)`, `os.killpg(pgid, 0)`) are all
    gone within `timeout` seconds (the probe raises `ProcessLookupError`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            probe()
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False
