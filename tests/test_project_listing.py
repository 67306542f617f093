"""The project's file listing kept in the cache (`sync_lint/project/listing.py`): reused while no
folder or ignore file the walk read has changed, walked again as soon as one has."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

import sync_lint.discovery
from sync_lint.config import Settings
from sync_lint.project.listing import RACY_MARGIN_NS, project_files
from sync_lint.project.store import ProjectStore

OLD_NS = time.time_ns() - 10 * RACY_MARGIN_NS


def age(root: Path) -> None:
    """Make every folder and file look long unchanged, so that a listing is kept."""
    for path in [root, *root.rglob("*")]:
        os.utime(path, ns=(OLD_NS, OLD_NS))


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("x = 1\n")
    (root / "pkg" / "sub" / "b.py").write_text("y = 2\n")
    (root / "pkg" / "notes.txt").write_text("not python\n")
    age(root)
    return root


@pytest.fixture()
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = ProjectStore(tmp_path / "index.sqlite")
    yield db
    db.close()


@pytest.fixture()
def walks(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Each directory walk the listing makes."""
    made: list[list[str]] = []
    real = sync_lint.discovery.discover

    def counted(paths, settings, **kwargs):  # type: ignore[no-untyped-def]
        made.append(list(paths))
        return real(paths, settings, **kwargs)

    monkeypatch.setattr(sync_lint.discovery, "discover", counted)
    return made


def names(files: list[str]) -> list[str]:
    return sorted(Path(f).name for f in files)


def test_an_unchanged_project_is_listed_from_the_cache(project: Path, store: ProjectStore,
                                                        walks: list[list[str]]) -> None:
    settings = Settings(root=project)
    first = project_files(project, settings, store)
    assert names(first) == ["a.py", "b.py"]
    assert project_files(project, settings, store) == first
    assert len(walks) == 1


@pytest.mark.parametrize("change", ["add", "remove", "rename", "add-folder"])
def test_a_file_added_removed_or_renamed_is_seen(project: Path, store: ProjectStore, walks: list[list[str]],
                                                 change: str) -> None:
    settings = Settings(root=project)
    project_files(project, settings, store)
    sub = project / "pkg" / "sub"
    if change == "add":
        (sub / "c.py").write_text("z = 3\n")
        expected = ["a.py", "b.py", "c.py"]
    elif change == "remove":
        (sub / "b.py").unlink()
        expected = ["a.py"]
    elif change == "rename":
        (sub / "b.py").rename(sub / "b2.py")
        expected = ["a.py", "b2.py"]
    else:
        (sub / "deeper").mkdir()
        (sub / "deeper" / "d.py").write_text("w = 4\n")
        expected = ["a.py", "b.py", "d.py"]
    os.utime(sub, ns=(OLD_NS + 1, OLD_NS + 1))  # even a change the clock barely saw
    assert names(project_files(project, settings, store)) == expected
    # Files that came and went are seen by listing their folder again; a new folder needs a walk.
    assert len(walks) == (2 if change == "add-folder" else 1)
    assert project_files(project, settings, store) == project_files(project, settings)  # as a whole walk


def test_a_folder_listed_again_keeps_the_walk_order(project: Path, store: ProjectStore,
                                                    walks: list[list[str]]) -> None:
    (project / "pkg" / "z.py").write_text("")
    (project / "top.py").write_text("")
    age(project)
    settings = Settings(root=project)
    project_files(project, settings, store)
    (project / "pkg" / "b0.py").write_text("")  # an editor's new file, in a folder listed mid-walk
    (project / "top.py").unlink()
    assert project_files(project, settings, store) == project_files(project, settings)
    assert len(walks) == 2  # the second is the whole walk it is compared with


def test_an_edited_gitignore_is_seen(project: Path, store: ProjectStore, walks: list[list[str]]) -> None:
    (project / ".gitignore").write_text("# nothing yet\n")
    age(project)
    settings = Settings(root=project)
    assert names(project_files(project, settings, store)) == ["a.py", "b.py"]
    ignore = project / ".gitignore"
    ignore.write_text("sub/\n")  # edited in place: the folder's time does not change
    os.utime(project, ns=(OLD_NS, OLD_NS))
    assert names(project_files(project, settings, store)) == ["a.py"]


def test_a_new_gitignore_in_a_folder_is_seen(project: Path, store: ProjectStore) -> None:
    settings = Settings(root=project)
    project_files(project, settings, store)
    (project / "pkg" / ".gitignore").write_text("a.py\n")
    os.utime(project / "pkg", ns=(OLD_NS, OLD_NS))  # seen by the ignore file itself, not its folder's time
    assert names(project_files(project, settings, store)) == ["b.py"]


def test_other_excludes_are_another_listing(project: Path, store: ProjectStore) -> None:
    settings = Settings(root=project)
    project_files(project, settings, store)
    assert names(project_files(project, replace(settings, extend_exclude=("sub",)), store)) == ["a.py"]
    assert names(project_files(project, settings, store)) == ["a.py", "b.py"]


def test_a_listing_of_folders_that_just_changed_is_not_kept(project: Path, store: ProjectStore,
                                                            walks: list[list[str]]) -> None:
    # A folder changed moments ago may change again within the same clock tick and keep its time.
    os.utime(project / "pkg", None)
    settings = Settings(root=project)
    project_files(project, settings, store)
    project_files(project, settings, store)
    assert len(walks) == 2
    age(project)
    project_files(project, settings, store)
    project_files(project, settings, store)
    assert len(walks) == 3


def test_without_a_store_the_folders_are_walked(project: Path, walks: list[list[str]]) -> None:
    settings = Settings(root=project)
    assert names(project_files(project, settings)) == ["a.py", "b.py"]
    assert names(project_files(project, settings)) == ["a.py", "b.py"]
    assert len(walks) == 2


def test_a_repository_appearing_above_the_project_is_seen(tmp_path: Path, store: ProjectStore) -> None:
    outer = tmp_path / "outer"
    (outer / "proj").mkdir(parents=True)
    (outer / "proj" / "a.py").write_text("x = 1\n")
    (outer / "proj" / "b.py").write_text("y = 2\n")
    (outer / ".gitignore").write_text("a.py\n")
    age(outer)
    root = outer / "proj"
    settings = Settings(root=root)
    assert names(project_files(root, settings, store)) == ["a.py", "b.py"]  # no repository: no .gitignore applies
    (outer / ".git").mkdir()
    assert names(project_files(root, settings, store)) == ["b.py"]


def test_the_cache_folder_inside_the_project_does_not_spoil_the_listing(project: Path,
                                                                         walks: list[list[str]]) -> None:
    # Every run writes in `.sync-lint-cache/` (its journal comes and goes): were it walked, the listing
    # would never be reused.
    folder = project / ".sync-lint-cache"
    folder.mkdir()
    db = ProjectStore(folder / "index.sqlite")
    try:
        age(project)
        settings = Settings(root=project)
        project_files(project, settings, db)
        (folder / "index.sqlite-journal-like").write_text("")
        assert names(project_files(project, settings, db)) == ["a.py", "b.py"]
        assert len(walks) == 1
    finally:
        db.close()


def test_a_link_pointed_elsewhere_outside_the_project_is_seen(tmp_path: Path, store: ProjectStore) -> None:
    # `pkg/a.py -> ext/current/a.py`, and `ext/current` switched from v1 to v2: no folder of the project
    # changes, but the file the index reads does.
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    for version in ("v1", "v2"):
        (tmp_path / "ext" / version).mkdir(parents=True)
        (tmp_path / "ext" / version / "a.py").write_text("x = 1\n")
    (tmp_path / "ext" / "current").symlink_to(tmp_path / "ext" / "v1")
    (root / "pkg" / "a.py").symlink_to(tmp_path / "ext" / "current" / "a.py")
    age(tmp_path)
    settings = Settings(root=root)
    assert project_files(root, settings, store) == [str(tmp_path / "ext" / "v1" / "a.py")]
    (tmp_path / "ext" / "current").unlink()
    (tmp_path / "ext" / "current").symlink_to(tmp_path / "ext" / "v2")
    assert project_files(root, settings, store) == [str(tmp_path / "ext" / "v2" / "a.py")]
