"""The hot-path pass's call edges read while a forked child updates the index (`project/ahead.py`):
what was read is used only where the cache changed in no other way than by this run's own update,
and never an edge that update dropped."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fixture_support import FIXTURE_TORCH
from sync_lint import api
from sync_lint.config import Settings
from sync_lint.project import ahead
from sync_lint.project.build import Project, update_project
from sync_lint.project.hot import DEFAULT_ROOT_KINDS, edge_key, roots_key

MODEL = """\
import torch

from pkg.helpers import fast, slow


class Model(torch.nn.Module):
    def forward(self, x):
        return fast(x)
"""
HELPERS = """\
import torch


def fast(x):
    return x + 1


def slow(x):
    return torch.zeros(3, device="cuda").sum().item()
"""
OTHER = """\
import torch

from pkg.helpers import fast


class Other(torch.nn.Module):
    def forward(self, x):
        return fast(x) * 2
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    for name, text in {"pyproject.toml": "", "pkg/__init__.py": "", "pkg/model.py": MODEL,
                       "pkg/helpers.py": HELPERS, "pkg/other.py": OTHER}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    monkeypatch.chdir(root)
    return root


def check(paths: list[str], cache: Path) -> set[tuple[str, int, str, str | None]]:
    plan = api.plan(paths, target_torch_version=FIXTURE_TORCH, project=api.ProjectOptions(cache_dir=cache))
    report = api.run(plan, paths, jobs=1)
    assert not [e for r in report.results for e in r.errors]
    return {(Path(d.path).name, d.start.row, d.code, d.hot.root if d.hot else None)
            for r in report.results for d in r.diagnostics}


def edit(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def read_ahead(cache: Path) -> None:
    """What a check of an edited file does while its child updates the index."""
    ahead.read_edges_ahead(next(cache.glob("*/index.sqlite")), [], DEFAULT_ROOT_KINDS)


def settings() -> Settings:
    return api.plan(["."], target_torch_version=FIXTURE_TORCH).settings


FORWARD = edge_key("pkg.model.Model.forward")
OTHER_FORWARD = edge_key("pkg.other.Other.forward")
FAST = edge_key("pkg.helpers.fast")
ROOTS = edge_key(roots_key([], DEFAULT_ROOT_KINDS))


def test_with_nothing_changed_everything_read_ahead_is_used(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check(["."], cache)
    read_ahead(cache)
    updated = update_project(project.resolve(), settings(), jobs=1, cache_dir=cache)
    taken = ahead.take_edges_read_ahead(updated)
    assert {ROOTS, FORWARD, OTHER_FORWARD, FAST} <= set(taken)
    assert ahead.take_edges_read_ahead(updated) == {}  # taken once


def test_the_edges_this_runs_update_dropped_are_left_out(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check(["."], cache)
    read_ahead(cache)
    edit(project / "pkg/model.py", MODEL.replace("return fast(x)", "return slow(x)"))
    updated = update_project(project.resolve(), settings(), jobs=1, cache_dir=cache)
    assert updated.last_update is not None and FORWARD in updated.last_update[1]
    taken = ahead.take_edges_read_ahead(updated)
    assert FORWARD not in taken  # it called `fast`; it calls `slow` now
    assert OTHER_FORWARD in taken and FAST in taken  # nothing they read changed


def test_another_runs_update_in_between_throws_away_what_was_read(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check(["."], cache)
    read_ahead(cache)
    edit(project / "pkg/other.py", OTHER.replace("* 2", "* 3"))
    update_project(project.resolve(), settings(), jobs=1, cache_dir=cache)  # another run
    edit(project / "pkg/model.py", MODEL.replace("return fast(x)", "return slow(x)"))
    updated = update_project(project.resolve(), settings(), jobs=1, cache_dir=cache)  # this run's
    assert updated.last_update is not None
    assert ahead.take_edges_read_ahead(updated) == {}


def test_a_change_of_settings_throws_away_what_was_read(project: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    check(["."], cache)
    read_ahead(cache)
    changed = api.plan(["."], target_torch_version=FIXTURE_TORCH, config="gpu-name-patterns = ['^on_gpu_']").settings
    updated = update_project(project.resolve(), changed, jobs=1, cache_dir=cache)
    assert ahead.take_edges_read_ahead(updated) == {}


def test_the_reading_stops_when_the_update_is_done(project: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    check(["."], cache)
    database = next(cache.glob("*/index.sqlite"))
    updated = update_project(project.resolve(), settings(), jobs=1, cache_dir=cache)
    ahead.read_edges_ahead(database, [], DEFAULT_ROOT_KINDS, lambda: True)  # done before it began
    assert ahead.take_edges_read_ahead(updated) == {}
    monkeypatch.setattr(ahead, "_CHUNK", 1)
    looks: list[int] = []
    ahead.read_edges_ahead(database, [], DEFAULT_ROOT_KINDS, lambda: looks.append(1) or len(looks) > 3)
    taken = ahead.take_edges_read_ahead(updated)
    assert len(taken) == 3 and ROOTS in taken  # the roots, then two functions, nearest first
    assert {FORWARD, OTHER_FORWARD} <= set(taken) and FAST not in taken


def test_a_cache_that_cannot_be_read_is_not_read_ahead(tmp_path: Path) -> None:
    import sqlite3

    from sync_lint.project.store import summary_fingerprint

    database = tmp_path / "index.sqlite"
    with sqlite3.connect(database) as db:  # of this format, but without its tables
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute("INSERT INTO meta VALUES ('format', ?)", (summary_fingerprint(),))
    ahead.read_edges_ahead(database, [], DEFAULT_ROOT_KINDS)  # raises nothing: the check goes on
    assert ahead.take_edges_read_ahead(Project(tmp_path, database, "", 0)) == {}


def test_nothing_is_read_from_a_cache_that_does_not_exist(tmp_path: Path) -> None:
    database = tmp_path / "none" / "index.sqlite"
    ahead.read_edges_ahead(database, [], DEFAULT_ROOT_KINDS)
    assert not database.exists()
    assert ahead.take_edges_read_ahead(Project(tmp_path, database, "", 0)) == {}


@pytest.mark.skipif(not (sys.platform.startswith("linux") and hasattr(os, "fork")),
                    reason="the index update runs in a forked child on Linux only")
def test_a_check_of_an_edited_file_reads_ahead_and_reports_what_a_cold_run_reports(
        project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sync_lint.project import background

    check(["."], tmp_path / "cache")
    model = project / "pkg/model.py"
    edit(model, MODEL.replace("return fast(x)", "return slow(x)"))
    taken: list[dict[str, object]] = []
    take = ahead.take_edges_read_ahead
    monkeypatch.setattr(api, "_other_threads", lambda: False)
    monkeypatch.setattr(background, "can_fork", lambda: True)
    # The child may finish its update before the file is parsed (on a loaded machine), and then
    # nothing is read ahead, rightly: held running here, the reading is the same on every machine.
    monkeypatch.setattr(background.PendingUpdate, "done", lambda self: False)
    monkeypatch.setattr(ahead, "take_edges_read_ahead", lambda p: taken.append(take(p)) or taken[-1])
    warm = check([str(model)], tmp_path / "cache")
    assert len(taken) == 1 and OTHER_FORWARD in taken[0] and FORWARD not in taken[0]
    monkeypatch.setattr(ahead, "take_edges_read_ahead", take)
    cold = check([str(model)], tmp_path / "cold")
    assert warm == cold
    assert ("model.py", 8, "SL601", "pkg.model.Model.forward") in warm  # through the edge the edit made
