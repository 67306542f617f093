"""A project's file listing, kept in the cache while nothing the walk read has changed.

A check of one file in a warm project still needs the project's files, to see what
changed. Walking vLLM's 450 folders and matching the excludes against 3,200 files
took a quarter of that check; statting the folders the walk listed, and the ignore
files it consulted, takes a few milliseconds. A folder's modification time changes
whenever an entry is added, removed or renamed in it (an editor's atomic save of a file
included), so unchanged folders and ignore files, and the same `.git` folders above the
project, mean an unchanged listing.

A listing is only kept when everything it read is older than the walk by a margin: a
folder changed during the walk, or in the same tick of a coarse file-system clock,
would otherwise keep its time and hide the change (git's "racily clean" problem).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sync_lint.config import Settings
    from sync_lint.project.store import ProjectStore

# How much older than the walk what it read must be for the listing to be kept.
RACY_MARGIN_NS = 2_000_000_000
_MISSING = (-1, -1)


@dataclass(frozen=True)
class Listing:
    files: tuple[str, ...]
    # (path, (mtime_ns, size)) of every folder listed and every ignore file looked for.
    read: tuple[tuple[str, tuple[int, int]], ...]
    # Whether each `.git` looked for above the project was there (a repository's `.git` changes all the
    # time; only its appearing or going changes which ignore files apply).
    repositories: tuple[tuple[str, bool], ...]
    # (link, the file it resolved to) of each linked file: a link through a folder outside the project
    # can be pointed elsewhere without any folder of the project changing.
    links: tuple[tuple[str, str], ...] = ()

    def unchanged(self) -> bool:
        return all(_signature(path) == signature for path, signature in self.read) and \
            all(os.path.exists(path) == present for path, present in self.repositories) and \
            all(os.path.realpath(link) == target for link, target in self.links)


def project_files(root: Path, settings: "Settings", store: "ProjectStore | None" = None) -> list[str]:
    """The project's Python files under `root` (the check's excludes, templates kept), from the
    cache when nothing the last walk read has changed."""
    key = _key(root, settings)
    if store is not None:
        cached = store.listing(key)
        if isinstance(cached, Listing) and cached.unchanged():
            return list(cached.files)
    from sync_lint.discovery import discover

    started = time.time_ns()
    found = discover([str(root.resolve())], settings, templates=True)  # templates: the index knows every module
    # Found under the resolved root by a walk that does not enter linked folders: only a linked file
    # needs resolving (a `Path.resolve()` of each of vLLM's 3,231 files took a second).
    links = tuple((p, os.path.realpath(p)) for p in found.files if p.endswith(".py") and os.path.islink(p))
    targets = dict(links)
    files = [targets.get(p, p) for p in found.files if p.endswith(".py")]
    if store is not None:
        read = tuple((path, _signature(path)) for path in dict.fromkeys([*found.folders, *found.ignore_files]))
        if all(mtime < started - RACY_MARGIN_NS for _path, (mtime, _size) in read):
            repositories = tuple((path, os.path.exists(path)) for path in found.repositories)
            store.put_listing(key, Listing(tuple(files), read, repositories, links))
    return files


def _signature(path: str) -> tuple[int, int]:
    try:
        info = os.stat(path)
    except OSError:
        return _MISSING
    return info.st_mtime_ns, info.st_size


def _key(root: Path, settings: "Settings") -> str:
    """What else the listing depends on: the folder, the settings that choose files, and the code."""
    from sync_lint.project.store import tool_fingerprint

    text = repr((str(root.resolve()), str(settings.root), settings.exclude, settings.extend_exclude,
                 settings.respect_gitignore, settings.force_exclude, tool_fingerprint()))
    return hashlib.sha256(text.encode()).hexdigest()
