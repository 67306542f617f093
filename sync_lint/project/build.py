"""Bringing a project's index up to date: find its files, summarise what changed, open it.

`update_project` runs in the parent process before any file is checked: it lists
the project's files (the same excludes as the check), compares them with the
cache, summarises new and changed files in parallel, and forgets removed ones.
`Project.inference()` then opens the index in whichever process needs it (each
lint worker opens its own, reading summaries from the cache on demand).
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from sync_lint.project.listing import project_files
from sync_lint.project.roots import module_name
from sync_lint.project.store import (
    CACHE_DIRNAME,
    DATABASE,
    ProjectStore,
    StoredSummary,
    StoreTables,
    content_hash,
    prepare_cache_dir,
)
from sync_lint.project.summary import ModuleSummary, summarize

if TYPE_CHECKING:
    from sync_lint.config import Settings
    from sync_lint.project.infer import Inference


# How often a run saves what it solved (seconds): `OpenProject.save_later`. Each save is a
# transaction that rewrites many pages; saving more often costs more and loses less of a killed run.
SAVE_EVERY_S = 2.0


def _save_interval() -> float:
    """`SAVE_EVERY_S`, or `SYNC_LINT_SAVE_EVERY_S` when that is a number (read at each use: a
    daemon's child takes its caller's environment after this module was imported)."""
    text = os.environ.get("SYNC_LINT_SAVE_EVERY_S")
    if text is None:
        return SAVE_EVERY_S
    try:
        return max(0.0, float(text))
    except ValueError:
        _say_not_a_number(text)
        return SAVE_EVERY_S


@functools.lru_cache(maxsize=None)
def _say_not_a_number(text: str) -> None:
    print(f"sync-lint: SYNC_LINT_SAVE_EVERY_S={text!r} is not a number of seconds; "
          f"saving every {SAVE_EVERY_S:g} s", file=sys.stderr)


@dataclass(frozen=True)
class Project:
    """A project whose index is up to date in the cache at `database`."""

    root: Path
    database: Path
    fingerprint: str
    files: int
    generation: int = 0  # the cache's generation when the index was brought up to date
    shas: dict[str, str] = field(default_factory=dict, compare=False)  # file path -> content hash
    modules: dict[str, str] = field(default_factory=dict, compare=False)  # file path -> module name
    # This update's own change to the cache (what `ProjectStore.update` returned): the generation it
    # started from and the results it dropped; None when it dropped nothing, or too much to list.
    last_update: tuple[int, frozenset[str]] | None = field(default=None, compare=False)

    def open(self, settings: "Settings") -> "OpenProject":
        """The project's index and inference in this process, reading solved facts from the cache."""
        from sync_lint.project.deps import Reads
        from sync_lint.project.index import ProjectIndex
        from sync_lint.project.infer import Inference

        store = ProjectStore(self.database)
        fresh = _FRESH.get(self.database, {})

        def load(module: str) -> ModuleSummary | None:
            found = fresh.get(module)
            return found[1] if found is not None else store.summary(module)

        index = ProjectIndex(store.modules(), load, StoreTables(store), root=str(self.root), reads=Reads())
        inference = Inference(index, settings.device_settings(), convention_share=settings.convention_share,
                              convention_sites=settings.convention_sites, cache=store)
        return OpenProject(self, store, inference)

    def inference(self, settings: "Settings") -> "Inference":
        return self.open(settings).inference


class OpenProject:
    """A project opened in one process: its store, index and inference, and what goes back to the cache."""

    def __init__(self, project: Project, store: ProjectStore, inference: "Inference") -> None:
        self.project = project
        self.store = store
        self.inference = inference
        self.index = inference.index
        self.writable = True  # False once a summary in memory differs from the cache (an unsaved buffer)
        self._unsaved: list = []  # solved facts not saved yet (a locked cache, or `save_later`)
        self._results: list = []  # (path, key, result, deps) held by `save_later`
        self._saved_at = time.monotonic()

    def use_text(self, summary: ModuleSummary) -> None:
        """Check `summary` (a text that is not the file on disk) instead of the cached one: the cached
        facts that read the module are set aside, and nothing this process solves is stored."""
        from sync_lint.project.conventions import local_conventions
        from sync_lint.project.store import changed_labels

        summary.conventions = local_conventions(summary)
        before = self.store.cached_state(summary.module)
        old = {summary.module: before} if before is not None else {}
        new = {summary.module: StoredSummary(summary).state()}
        labels = changed_labels(old, new) | self.store.renamed_bases_touched(old, new)
        self.inference.cache = self.store.facts_except(labels)
        self.inference.forget()
        self.writable = False
        self.index.replace(summary)

    def save_facts(self) -> None:
        """Store what was solved since the last save. A cache that stays locked past the store's
        timeout (another run writing) must not end this run: the facts wait for the next save,
        and are only lost (recomputed by a later run) if every save finds the cache locked."""
        self._unsaved.extend(self.inference.solved())
        self.flush()

    def result(self, path: str, key: str) -> object | None:
        return self.store.result(path, key)

    def results(self, keys: dict[str, str]) -> dict[str, object]:
        """The results stored under these names (name -> key), where present."""
        return self.store.results(keys)

    @property
    def facts_saved(self) -> bool:
        """Whether everything solved so far is in the cache: an answer stored before the facts and
        nodes it read would not be dropped when they are."""
        return not self._unsaved

    def save_later(self, path: str, key: str | None, result: object, deps: frozenset) -> None:
        """What checking one file solved, and its result (with `key`), saved with the next `flush`.

        A cold run checks thousands of files; a transaction per file (facts, then result) cost
        more than a third of the cache's time on vLLM. Saving at most every `SAVE_EVERY_S`
        seconds bounds what a killed run loses to those seconds of work."""
        self._unsaved.extend(self.inference.solved())
        if key is not None:
            self._results.append((path, key, result, deps))
        if self.save_due():
            self.flush()

    def save_due(self) -> bool:
        """Whether the save interval (`_save_interval`) has passed since the last `flush`."""
        return time.monotonic() - self._saved_at >= _save_interval()

    def flush(self) -> None:
        """Save the facts and results `save_later` holds: the facts first, and the results only
        once the facts they read are in (an answer stored without them would outlive them)."""
        self._saved_at = time.monotonic()
        if not self.writable:
            self._unsaved, self._results = [], []
            return
        try:
            if self._unsaved:
                self.store.put_facts(self._unsaved, self.project.generation)
                self._unsaved = []
            if self._results:
                self.store.put_results(self._results, self.project.generation)
        except sqlite3.OperationalError:  # locked: facts wait for the next flush; results are dropped
            pass
        self._results = []


# The summaries (less their call sites, as the cache keeps them) that `update_project` made in
# this process, by database and module: worker processes forked afterwards read them from memory
# instead of unpickling each from the cache (a cold vLLM run loads most of 3,000 in every worker).
_FRESH: dict[Path, dict[str, tuple[str, ModuleSummary]]] = {}  # module -> (content hash, summary)


def _remember_fresh(fresh: dict[str, tuple[str, ModuleSummary]], known: dict, current: set[str],
                    summaries: list[tuple[str, int, int, str, StoredSummary]]) -> None:
    """Keep this update's summaries, and forget remembered ones the cache no longer agrees with
    (another run updated a file since: a long-lived process must not serve its old summary)."""
    if not fresh and not summaries:
        return
    paths_of: dict[str, set[str]] = {}
    for path, stat in known.items():
        if path in current:
            paths_of.setdefault(stat.module, set()).add(path)
            remembered = fresh.get(stat.module)
            if remembered is not None and remembered[0] != stat.sha:
                del fresh[stat.module]
        elif stat.module in fresh:
            del fresh[stat.module]
    for path, _mtime, _size, sha, summary in summaries:
        paths_of.setdefault(summary.module, set()).add(path)
    for path, _mtime, _size, sha, summary in summaries:
        # A module two files claim (a folder listed twice) is left to the cache, which picks one.
        if len(paths_of[summary.module]) == 1:
            fresh[summary.module] = (sha, summary.header)
        else:
            fresh.pop(summary.module, None)


def forget_summaries(database: Path) -> None:
    """Forget the summaries this process remembers of a project whose index another process updated
    (`project/background.py`): they may be older than the cache's."""
    _FRESH.pop(database, None)


def _summarize_files(files: list[tuple[str, str]], jobs: int | None) -> list[tuple[str, int, int, str, StoredSummary]]:
    """Each (path, root)'s summary row; files that cannot be read or parsed give none."""
    from sync_lint.engine.parallel import run_per_file

    return [s for s in run_per_file(files, _summarize_file, initializer=_noop, initargs=(), jobs=jobs,  # type: ignore[arg-type]
                                    # summarising a file takes milliseconds: a pool pays only for many
                                    serial_below=64) if s is not None]


def cache_folder(root: Path, cache_dir: Path | None) -> Path:
    """Where the project's cache lives: `--cache-dir`, else `.sync-lint-cache/` at the root,
    else (an unwritable root) a folder under the user's cache directory."""
    if cache_dir is not None:
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
        return cache_dir / f"{root.name or 'root'}-{digest}"
    folder = root / CACHE_DIRNAME
    if os.access(root, os.W_OK) or folder.is_dir() and os.access(folder, os.W_OK):
        return folder
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return base / "sync-lint" / f"{root.name or 'root'}-{digest}"


def _summarize_file(job: tuple[str, str]) -> tuple[str, int, int, str, StoredSummary] | None:
    path, root = job
    try:
        data = Path(path).read_bytes()
        info = os.stat(path)
    except OSError:
        return None
    from sync_lint.project.conventions import local_conventions

    module, is_package = module_name(Path(path), Path(root))
    relative = os.path.relpath(path, root)
    summary = summarize(data, relative, module, is_package)
    summary.conventions = local_conventions(summary)
    return path, info.st_mtime_ns, info.st_size, content_hash(data), StoredSummary(summary)


def _noop() -> None:
    pass


def fact_settings(settings: "Settings") -> str:
    """The settings solved facts depend on."""
    device = settings.device_settings()
    text = repr((device.cpu_name_patterns, device.gpu_name_patterns, sorted(device.gpu_attributes),
                 sorted(device.cpu_attributes), device.cpu_functions, device.off_cuda_modules,
                 settings.convention_share, settings.convention_sites))
    return hashlib.sha256(text.encode()).hexdigest()


# `--no-cache` folders by project, for the life of the process: the hot-path pass checks more files of
# the same project after the first pass, and must find the index the first pass built, not rebuild it.
_TEMPORARY: dict[tuple[Path, tuple[Path, ...]], Path] = {}


def _temporary_folder(root: Path, extra: Sequence[Path]) -> Path:
    key = (root, tuple(extra))
    folder = _TEMPORARY.get(key)
    if folder is None or not folder.is_dir():
        import atexit
        import shutil
        import tempfile

        folder = _TEMPORARY[key] = Path(tempfile.mkdtemp(prefix="sync-lint-index-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def update_project(root: Path, settings: "Settings", *, jobs: int | None = None, cache_dir: Path | None = None,
                   temporary: bool = False, extra: Sequence[Path] = ()) -> Project:
    """Bring the cache of the project at `root` up to date and return it.

    `temporary` (`--no-cache`): build the index in a throwaway folder; `extra`:
    folders outside the root whose files the index also reads (`extend-project`).
    """
    if temporary:
        folder = _temporary_folder(root, extra)
    else:
        folder = cache_folder(root, cache_dir)
        prepare_cache_dir(folder)
    database = folder / DATABASE
    store = ProjectStore(database)
    try:
        module_roots = {p: root for p in project_files(root, settings, store)}
        for folder in extra:
            if folder.is_dir():
                module_roots.update((p, folder.resolve()) for p in project_files(folder, settings, store))
        known = store.stats()
        current = set(module_roots)
        removed = [path for path in known if path not in current]
        changed: list[str] = []
        touched: list[tuple[str, int, int]] = []
        for path in sorted(current):
            try:
                info = os.stat(path)
            except OSError:
                continue
            old = known.get(path)
            if old is not None and (old.mtime_ns, old.size) == (info.st_mtime_ns, info.st_size):
                continue
            if old is not None and old.size == info.st_size:
                try:
                    if content_hash(Path(path).read_bytes()) == old.sha:
                        touched.append((path, info.st_mtime_ns, info.st_size))
                        continue
                except OSError:
                    continue
            changed.append(path)
        summaries = _summarize_files([(p, str(module_roots[p])) for p in changed], jobs) if changed else []
        dropped = store.update(summaries, removed, touched) if summaries or removed or touched else None
        _remember_fresh(_FRESH.setdefault(database, {}), known, current, summaries)
        store.use_settings(fact_settings(settings))  # a change drops everything, and bumps the generation again
        shas = {path: stat.sha for path, stat in known.items() if path in current}
        shas.update((row[0], row[3]) for row in summaries)
        modules = {path: stat.module for path, stat in known.items() if path in current}
        modules.update((row[0], row[4].module) for row in summaries)
        return Project(root, database, store.fingerprint(), len(current), store.generation(), shas, modules,
                       dropped)
    finally:
        store.close()


def summarize_text(project: Project, path: str, text: str) -> ModuleSummary:
    """The summary of a text standing for a file of the project (stdin, an editor buffer)."""
    module, is_package = module_name(Path(path), project.root)
    return summarize(text, os.path.relpath(Path(path).resolve(), project.root), module, is_package)


def common_roots(paths: Sequence[str], configured: Sequence[Path]) -> dict[Path, list[str]]:
    """The linted paths grouped by their project root."""
    from sync_lint.project.roots import project_root

    groups: dict[Path, list[str]] = {}
    by_folder: dict[str, Path] = {}  # a project's files share a few folders: look each up once
    for path in paths:
        folder = os.path.dirname(os.path.realpath(path))
        root = by_folder.get(folder)
        if root is None:
            root = by_folder[folder] = project_root(Path(folder), configured)
        groups.setdefault(root, []).append(path)
    return groups
