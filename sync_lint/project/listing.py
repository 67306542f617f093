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
    # (folder, the subfolders the walk entered, the files it kept there), in walk order.
    contents: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()

    def unchanged(self) -> bool:
        return not self._changed() and self._same_links()

    def _changed(self) -> list[str]:
        return [path for path, signature in self.read if _signature(path) != signature]

    def _same_links(self) -> bool:
        return all(os.path.exists(path) == present for path, present in self.repositories) and \
            all(os.path.realpath(link) == target for link, target in self.links)

    def refreshed(self, root: Path, settings: "Settings") -> "Listing | None":
        """This listing with the folders that changed since listed again, when only files came and
        went in them (an editor's atomic save, a file added): None when a folder came or went, an
        ignore file changed, or a repository appeared, which only a whole walk can follow."""
        from sync_lint.discovery import list_folders

        changed = self._changed()
        listed = {folder: (kept, files) for folder, kept, files in self.contents}
        if not changed or not self.contents or any(path not in listed for path in changed) \
                or not self._same_links():
            return None
        relisted = list_folders(root.resolve(), settings, changed, templates=True)  # as `project_files` walks
        if any(relisted.get(folder, (None,))[0] != listed[folder][0] for folder in changed):
            return None
        signatures = {path: _signature(path) for path in changed}
        contents = tuple((folder, kept, relisted[folder][1] if folder in relisted else files)
                         for folder, kept, files in self.contents)
        return _listing(contents, tuple((path, signatures.get(path, signature)) for path, signature in self.read),
                        self.repositories)


def project_files(root: Path, settings: "Settings", store: "ProjectStore | None" = None) -> list[str]:
    """The project's Python files under `root` (the check's excludes, templates kept), from the
    cache when nothing the last walk read has changed, or only files in some of its folders."""
    key = _key(root, settings)
    cached = store.listing(key) if store is not None else None
    if isinstance(cached, Listing):
        if cached.unchanged():
            return list(cached.files)
        started = time.time_ns()
        listing = cached.refreshed(root, settings)
        if listing is not None:
            _keep(store, key, listing, started)
            return list(listing.files)
    from sync_lint.discovery import discover

    started = time.time_ns()
    found = discover([str(root.resolve())], settings, templates=True)  # templates: the index knows every module
    read = tuple((path, _signature(path)) for path in dict.fromkeys([*found.folders, *found.ignore_files]))
    repositories = tuple((path, os.path.exists(path)) for path in found.repositories)
    listing = _listing(tuple((folder, kept, files) for folder, (kept, files) in found.contents.items()),
                       read, repositories, found.files)
    _keep(store, key, listing, started)
    return list(listing.files)


def _listing(contents: tuple, read: tuple, repositories: tuple, walked: list[str] | None = None) -> Listing:
    """A listing of these folders' files (`walked`: all of them in walk order, when known)."""
    found = walked if walked is not None else [f for _folder, _kept, files in contents for f in files]
    # Found under the resolved root by a walk that does not enter linked folders: only a linked file
    # needs resolving (a `Path.resolve()` of each of vLLM's 3,231 files took a second).
    links = tuple((p, os.path.realpath(p)) for p in found if p.endswith(".py") and os.path.islink(p))
    targets = dict(links)
    files = tuple(targets.get(p, p) for p in found if p.endswith(".py"))
    return Listing(files, read, repositories, links, contents)


def _keep(store: "ProjectStore | None", key: str, listing: Listing, started: int) -> None:
    """Store the listing, unless something it read changed too recently to be told apart from a
    change in the same tick of the file system's clock."""
    if store is not None and all(mtime < started - RACY_MARGIN_NS for _path, (mtime, _size) in listing.read):
        store.put_listing(key, listing)


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
