"""Where a finding's code runs, and so how much it costs.

A sync in a model's forward, a serving engine's step or a training loop runs every
step; the same sync in a test, a benchmark harness, an example or a one-off script
runs a handful of times and costs nothing that matters. The linter cannot see call
frequency, but the path says which kind of code it is:

| context | paths |
|---|---|
| `test` | a folder `tests/`, `test/`, `testing/`; `test_*.py`, `*_test.py`, `conftest.py` |
| `benchmark` | a folder `benchmarks/`, `benchmark/`, `bench/`; `bench_*.py`, `benchmark_*.py` |
| `example` | a folder `examples/`, `example/`, `docs/`, `tutorials/` |
| `script` | a folder `scripts/`; `setup.py` |
| `per-step` | everything else |

Findings outside `per-step` are still reported (a benchmark that syncs measures the
wrong thing), but at lower severity: `warning` instead of `error` in JSON, SARIF and
GitHub annotations, listed after the per-step findings in the `full` output, and
counted apart in the summary. The audit behind this choice is in
`benchmarks/results/daily-use.md`.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import PurePath
from typing import Iterable

from sync_lint.diagnostics import FileResult

PER_STEP = "per-step"
# Why a finding whose GPU is only a naming convention is left to `--strict` in a test file.
CONVENTION_IN_TEST = ("a test file, where a GPU known only by a naming convention is often the CPU: tests build "
                      "their own inputs, and many run on the CPU")
_FOLDERS = {
    "tests": "test", "test": "test", "testing": "test",
    "benchmarks": "benchmark", "benchmark": "benchmark", "bench": "benchmark",
    "examples": "example", "example": "example", "docs": "example", "tutorials": "example",
    "scripts": "script",
}


def context_of(path: str, root: str | os.PathLike[str] | None = None) -> str:
    """The context of the file at `path` (relative to `root` when it lies below it)."""
    if root is not None:
        try:
            relative = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
            if not relative.startswith(".."):
                path = relative
        except ValueError:
            pass
    parts = PurePath(path).parts
    name = parts[-1] if parts else path
    for folder in parts[:-1]:
        context = _FOLDERS.get(folder.lower())
        if context is not None:
            return context
    stem = name.rsplit(".", 1)[0]
    if stem.startswith("test_") or stem.endswith("_test") or stem == "conftest":
        return "test"
    if stem.startswith(("bench_", "benchmark_")):
        return "benchmark"
    if stem == "setup":
        return "script"
    return PER_STEP


def context_rank(context: str) -> int:
    return 0 if context == PER_STEP else 1


def severity(context: str) -> str:
    """`error` for per-step code, `warning` for the rest."""
    return "error" if context == PER_STEP else "warning"


def rank_results(results: Iterable[FileResult], root: str | os.PathLike[str] | None) -> None:
    """Set each diagnostic's context from its file's path."""
    for result in results:
        if not result.diagnostics:
            continue
        context = context_of(result.path, root)
        if context != PER_STEP:
            result.diagnostics = [d if d.context == context else replace(d, context=context)
                                  for d in result.diagnostics]
