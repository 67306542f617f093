"""What a check leaves to Python's cyclic garbage collector: nothing of its own.

The executable turns automatic collection off (`sync_lint.__main__.run_here`): the objects a check makes
are freed by reference counting as soon as nothing holds them. A reference cycle among them would keep
a file's whole tree alive until the process ends, so these tests collect, with `gc.DEBUG_SAVEALL`,
whatever a check left in cycles, and name what it is.
"""

from __future__ import annotations

import gc
import shutil
from collections import Counter
from pathlib import Path
from typing import Callable

import pytest

from fixture_support import FIXTURE_TORCH, PROJECTS
from sync_lint import api
from sync_lint.project.summary import summarize

# Objects of these packages must never be found in a cycle after a check.
OURS = ("sync_lint", "libcst", "ast")

SOURCE = '''\
import torch


class Runner:
    def __init__(self, device):
        self.buf = torch.zeros(8, device="cuda")
        self.device = device

    def step(self, lens, mask=None):
        if mask is not None:
            lens = lens[mask]
        if lens is None:
            return None
        total = self.buf.sum()
        first, second = self.buf[0], self.buf[1]
        for row in self.buf:
            print(row)
        if total > 0:
            self.buf[0] = 0
        return total.item(), first, second


def helper(x):
    def inner(y):
        return y.cpu()
    return inner(x) if x is not None else None
'''


def left_in_cycles(run: Callable[[], object]) -> Counter:
    """The types of the objects `run()` left in reference cycles, by module and name."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        gc.collect()
        return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                       if type(o).__module__.split(".")[0] in OURS)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()


def copied_project(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fixture project copied under `tmp_path`, as the working directory."""
    root = tmp_path / name
    shutil.copytree(PROJECTS / name, root)
    monkeypatch.chdir(root)
    return root


def test_checking_a_file_in_a_project_leaves_nothing_in_cycles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = copied_project("dataclass_fields", tmp_path, monkeypatch)
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=tmp_path / "c"))
    text = (project / "pkg/runner.py").read_text()
    api.check_source(plan, text, "pkg/runner.py")  # builds the index first: what stays of it is not a leak
    results: list = []
    leaked = left_in_cycles(lambda: results.append(api.check_source(plan, text + "\n" + SOURCE, "pkg/runner.py")))
    assert results[0].diagnostics  # the check found something: its findings' objects were made
    assert not leaked


def test_checking_a_file_alone_leaves_nothing_in_cycles() -> None:
    plan = api.plan([], isolated=True, target_torch_version=FIXTURE_TORCH)
    results: list = []
    leaked = left_in_cycles(lambda: results.append(api.check_source(plan, SOURCE, "runner.py")))
    assert {d.code for d in results[0].diagnostics} >= {"SL101", "SL301"}
    assert not leaked


def test_a_summary_leaves_no_tree_in_cycles() -> None:
    # Its walks of a function's branches were closures calling themselves: each kept the function's
    # statements alive until a collection.
    summaries: list = []
    leaked = left_in_cycles(lambda: summaries.append(summarize(SOURCE, "runner.py", "runner")))
    assert summaries[0].functions["Runner.step"].branches
    assert not leaked


def test_fixing_a_file_leaves_nothing_in_cycles(tmp_path: Path) -> None:
    path = tmp_path / "runner.py"
    path.write_text(SOURCE)
    plan = api.plan([str(path)], isolated=True, target_torch_version=FIXTURE_TORCH)
    reports: list = []
    leaked = left_in_cycles(lambda: reports.append(api.run(plan, [str(path)], fix=api.FixMode(unsafe=True, diff=True),
                                                           jobs=1)))
    assert reports[0].diff_text  # fixes were made (and shown, not written)
    assert not leaked


@pytest.mark.parametrize("name", ["dataclass_fields", "off_cuda_callers"])
def test_a_whole_run_with_a_fresh_cache_leaves_nothing_in_cycles(name: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Every file's check, the hot-path pass and its call graph. The index update may run in a forked
    # child, out of this test's sight: `test_a_summary_leaves_no_tree_in_cycles` covers the summaries.
    copied_project(name, tmp_path, monkeypatch)
    plan = api.plan(["."], target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=tmp_path / "c"))
    reports: list = []
    leaked = left_in_cycles(lambda: reports.append(api.run(plan, ["."], jobs=1)))
    assert any(r.diagnostics for r in reports[0].results)
    assert not leaked
