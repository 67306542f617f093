"""Which project a file belongs to, and the module name it is imported as.

A file's project root is the nearest folder above it holding a `pyproject.toml`,
`setup.py`, `setup.cfg` or `.git`; without one, the folder above its top package.
`project-roots` in the configuration overrides this (the deepest configured root
holding the file wins).

The module name comes from the package structure: the top package is the highest
folder above the file with an `__init__.py`, reached through folders whose names
are identifiers (namespace packages without `__init__.py` in between are common:
`sglang/srt/` has none). So `src/` layouts and corpora vendored inside a larger
repository get the names their own code imports them by. A file in no package is
named by its path below the root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

ROOT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


def project_root(path: Path, configured: Iterable[Path] = ()) -> Path:
    """The root of the project `path` (a file or folder) belongs to."""
    path = path.resolve()
    folder = path if path.is_dir() else path.parent
    inside = [root.resolve() for root in configured if _contains(root.resolve(), folder)]
    if inside:
        return max(inside, key=lambda r: len(r.parts))
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).exists() for marker in ROOT_MARKERS):
            return candidate
    top = top_package(folder)
    return top.parent if top is not None else folder


def top_package(folder: Path, stop: Path | None = None) -> Path | None:
    """The highest folder at or above `folder` with an `__init__.py`, through identifier-named folders."""
    found = None
    current = folder
    while current.name.isidentifier() and current != stop and current.parent != current:
        if (current / "__init__.py").exists():
            found = current
        current = current.parent
    return found


def _contains(root: Path, folder: Path) -> bool:
    return folder == root or root in folder.parents


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """(dotted module name, is a package `__init__`) of a file under `root`."""
    path = path.resolve()
    root = root.resolve()
    is_package = path.stem == "__init__"
    top = top_package(path.parent, stop=root)
    if top is not None:
        relative = path.relative_to(top.parent).with_suffix("").parts
    elif _contains(root, path.parent):
        relative = path.relative_to(root).with_suffix("").parts
        if relative and relative[0] == "src":
            relative = relative[1:]
    else:
        relative = (path.stem,)
    if is_package:
        relative = relative[:-1]
    return ".".join(relative), is_package
