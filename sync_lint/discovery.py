"""Which files to lint: the paths given, directories recursed, exclusions honoured.

Directories yield `*.py`, `*.pyi` and `*.ipynb` files, minus the default and
configured excludes (gitignore-style patterns) and whatever `.gitignore` files (and
`.git/info/exclude`) say. A file named on the command line is linted unless
`force-exclude` is on and an exclude matches it (ruff's semantics: what pre-commit
passes is filtered like a directory walk); a named file with a suffix that is not
Python's (`notes.txt`) is skipped and listed in `skipped` (a file without a suffix,
a script, is linted).

A directory walk also leaves out templates (unless `lint-templates` is on): a file that
another file of its folder names in its leading comments as the file it was generated
from, as transformers' `modeling_*.py` do with their `modular_*.py`. The template is never
imported; its code runs, and is checked, in the generated file. They are listed in
`templates`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from sync_lint.config import Settings

if TYPE_CHECKING:
    import pathspec

SOURCE_SUFFIXES = (".py", ".pyi", ".ipynb")


@dataclass
class Discovery:
    files: list[str]
    missing: list[str]
    # Named files that are not Python (a `.txt`), and named files `force-exclude` dropped.
    skipped: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)  # left out of a directory walk (see above)
    # What a walk read, so that a cached listing can tell it is still good: the folders listed, the
    # ignore files consulted (present or not), and the `.git` looked for above the first folder.
    folders: list[str] = field(default_factory=list)
    ignore_files: list[str] = field(default_factory=list)
    repositories: list[str] = field(default_factory=list)
    # Each folder walked: (the subfolders entered, the files kept), for a listing refreshed by folder.
    contents: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)


# "This file was automatically generated from src/transformers/models/gemma/modular_gemma.py."
_GENERATED_FROM = re.compile(rb"^#[^\n]*\bgenerated\s+from\s+[`'\"]?(?:[\w.-]+/)*([\w.-]+\.py)\b", re.MULTILINE)
_HEAD_BYTES = 1024


def generated_from(path: Path) -> str | None:
    """The file name of the template `path` says (in its leading comments) it was generated from."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return None
    return template_named(head)


def template_named(head: bytes) -> str | None:
    """The template file name a file's first bytes say it was generated from, if they do."""
    head = head[:_HEAD_BYTES]
    if b"generated" not in head:
        return None
    for line in head.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(b"#"):
            break  # code: the leading comments are over
        found = _GENERATED_FROM.match(stripped)
        if found is not None:
            return found.group(1).decode()
    return None


def _read_ignore_file(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


class _GitIgnores:
    """The .gitignore files that apply to a directory, innermost last."""

    def __init__(self) -> None:
        self._cache: dict[Path, pathspec.GitIgnoreSpec | None] = {}

    def files_read(self) -> list[str]:
        """The ignore files this walk looked for (a file that appears later changes the answer too)."""
        return [str(path) for directory in self._cache
                for path in (directory / ".gitignore", directory / ".git" / "info" / "exclude")]

    def spec_for(self, directory: Path) -> pathspec.GitIgnoreSpec | None:
        if directory not in self._cache:
            lines = _read_ignore_file(directory / ".gitignore")
            if (directory / ".git").is_dir():
                # Lower precedence than the .gitignore beside it: its lines go first.
                lines = _read_ignore_file(directory / ".git" / "info" / "exclude") + lines
            self._cache[directory] = None
            if lines:
                import pathspec

                self._cache[directory] = pathspec.GitIgnoreSpec.from_lines(lines)
        return self._cache[directory]

    def ignored(self, path: Path, is_dir: bool, anchors: list[Path]) -> bool:
        # As in git, the innermost .gitignore with a matching pattern decides, so a
        # nested `!keep.py` re-includes a file that a parent .gitignore ignores.
        for anchor in reversed(anchors):
            spec = self.spec_for(anchor)
            if spec is None:
                continue
            relative = path.relative_to(anchor).as_posix() + ("/" if is_dir else "")
            include = spec.check_file(relative).include
            if include is not None:
                return include
        return False


def _repo_anchors(directory: Path, searched: list[str] | None = None) -> list[Path]:
    """Directories from the enclosing git root (or the directory itself) down to `directory`;
    `searched` gets each `.git` looked for."""
    chain = [directory, *directory.parents]
    for index, candidate in enumerate(chain):
        if searched is not None:
            searched.append(str(candidate / ".git"))
        if (candidate / ".git").exists():
            return list(reversed(chain[: index + 1]))
    return [directory]


def _excluded(exclude: Callable[[str], bool], path: Path, is_dir: bool, anchor: Path) -> bool:
    # Patterns match paths below `anchor`: a directory named on the command line
    # is linted even when it matches an exclude (`sync-lint check build`).
    name = path.name + ("/" if is_dir else "")
    try:
        relative = path.relative_to(anchor).as_posix() + ("/" if is_dir else "")
    except ValueError:
        relative = name
    return exclude(relative) or exclude(name)


class _Folders:
    """How a directory walk from `given` lists each folder: the subfolders it enters and the files
    it keeps (excludes, ignore files, templates), as `discover` walks and as a cached listing is
    brought up to date folder by folder (`project/listing.py`)."""

    def __init__(self, given: Path, settings: Settings, exclude: Callable[[str], bool], gitignores: _GitIgnores,
                 templates: bool, repositories: list[str]) -> None:
        self.given = given
        self.start = given.resolve()
        self.settings = settings
        self.exclude = exclude
        self.gitignores = gitignores
        self.templates = templates
        root = settings.root
        self.anchor = root
        if root not in (self.start, *self.start.parents) or self.excluded(self.start, True, root):
            self.anchor = self.start
        self.anchors_above = _repo_anchors(self.start, repositories)[:-1] if settings.respect_gitignore else []

    def excluded(self, path: Path, is_dir: bool, anchor: Path) -> bool:
        return _excluded(self.exclude, path, is_dir, anchor)

    def listing(self, dirpath: str, dirnames: list[str], filenames: list[str]) -> tuple[list[str], list[str], list[str]]:
        """(the subfolders entered, the files kept as the walk shows them, the templates left out)."""
        settings = self.settings
        current = Path(dirpath)
        anchors = [*self.anchors_above, *_chain(self.start, current)] if settings.respect_gitignore else []
        kept = []
        for d in sorted(dirnames):
            sub = current / d
            if self.excluded(sub, True, self.anchor):
                continue
            if settings.respect_gitignore and self.gitignores.ignored(sub, True, anchors):
                continue
            kept.append(d)
        # Files by string: a walk of a large project's thousands of files through pathlib
        # took a quarter of a warm one-file check. What `excluded` and `_display_path` do per
        # file, done once per folder.
        below_anchor = current.relative_to(self.anchor).as_posix()
        shown = _display_path(current, self.given, self.start)
        walked = []
        for f in sorted(filenames):
            if not f.endswith(SOURCE_SUFFIXES):
                continue
            if self.exclude(f if below_anchor == "." else f"{below_anchor}/{f}") or self.exclude(f):
                continue
            if settings.respect_gitignore and self.gitignores.ignored(current / f, False, anchors):
                continue
            walked.append(f)
        sources = set() if self.templates else _templates_in(current, walked)
        files, left_out = [], []
        for f in walked:
            display = f if shown == "." else f"{shown}{os.sep}{f}"
            (left_out if f in sources else files).append(display)
        return kept, files, left_out


def discover(paths: list[str], settings: Settings, *, force_exclude: bool | None = None,
             templates: bool | None = None) -> Discovery:
    """The files to lint under `paths`; `force_exclude` (default: the setting) filters named files too;
    `templates` (default: the `lint-templates` setting) keeps templates in a directory walk."""
    if force_exclude is None:
        force_exclude = settings.force_exclude
    if templates is None:
        templates = settings.lint_templates
    exclude = _matcher([*settings.exclude, *settings.extend_exclude])
    root = settings.root
    gitignores = _GitIgnores()
    found = Discovery(files=[], missing=[])
    seen: set[str] = set()

    def excluded(path: Path, is_dir: bool, anchor: Path) -> bool:
        return _excluded(exclude, path, is_dir, anchor)

    def add(path: str) -> None:
        if path not in seen:
            seen.add(path)
            found.files.append(path)

    for raw in paths:
        given = Path(raw)
        if not given.exists():
            found.missing.append(raw)
            continue
        if not given.is_dir():
            if given.suffix and given.suffix not in SOURCE_SUFFIXES:
                found.skipped.append(raw)
            elif force_exclude and _force_excluded(given.resolve(), root, excluded):
                found.excluded.append(raw)
            else:
                add(raw)  # named explicitly: linted unless force-exclude drops it
            continue
        if force_exclude and _force_excluded(given.resolve(), root, excluded, is_dir=True):
            found.excluded.append(raw)
            continue
        folders = _Folders(given, settings, exclude, gitignores, templates, found.repositories)
        for dirpath, dirnames, filenames in os.walk(folders.start):
            found.folders.append(dirpath)
            kept, files, left_out = folders.listing(dirpath, dirnames, filenames)
            dirnames[:] = kept
            found.contents[dirpath] = (tuple(kept), tuple(files))
            for display in files:
                add(display)
            found.templates.extend(left_out)
    named = set(found.files)
    found.templates = [t for t in dict.fromkeys(found.templates) if t not in named]
    found.ignore_files = gitignores.files_read()
    return found


def list_folders(root: Path, settings: Settings, folders: list[str], *, templates: bool) -> dict[str, tuple]:
    """What a walk of `root` (as `discover([str(root)])` does it) lists in each of these folders:
    folder -> (the subfolders it enters, the files it keeps, shown as that walk shows them). A
    folder that is gone is left out."""
    exclude = _matcher([*settings.exclude, *settings.extend_exclude])
    lister = _Folders(root, settings, exclude, _GitIgnores(), templates, [])
    out: dict[str, tuple] = {}
    for folder in folders:
        try:
            with os.scandir(folder) as entries:
                dirnames, filenames = [], []
                for entry in entries:
                    (dirnames if entry.is_dir() else filenames).append(entry.name)
        except OSError:
            continue
        kept, files, _left_out = lister.listing(folder, dirnames, filenames)
        out[folder] = (tuple(kept), tuple(files))
    return out


def _templates_in(folder: Path, names: list[str]) -> set[str]:
    """The names, among a folder's files `names`, of those another of them was generated from."""
    present = set(names)
    found = set()
    for name in names:
        if name.endswith(".py"):
            source = generated_from(folder / name)
            if source is not None and source != name and source in present:
                found.add(source)
    return found


def _matcher(patterns: list[str]) -> Callable[[str], bool]:
    """Whether a relative path matches the gitignore-style patterns. Without negations any match
    decides, so one regex joining them all answers at once (pathspec tries each pattern in turn:
    two tries per file, 0.4 s of a warm one-file check of vLLM)."""
    lines = [p for p in patterns if p.strip() and not p.startswith("#")]
    if all(_PLAIN_NAME.fullmatch(p) and "**" not in p and p.strip("*?") for p in lines):
        # Names and `*.egg-info`, as the defaults are: the regex pathspec would build, without
        # importing it (pathspec imports asyncio through typing_extensions before Python 3.13,
        # a tenth of a warm one-file check).
        if not lines:
            return lambda path: False
        joined = re.compile("|".join(f"(?:{_plain_name_regex(p)})" for p in lines))
        return lambda path: joined.match(path) is not None
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    active = [p for p in spec.patterns if p.include is not None]  # blank lines and comments match nothing
    if not active:
        return lambda path: False
    if any(not p.include or not isinstance(getattr(p, "regex", None), re.Pattern) for p in active):
        return spec.match_file
    joined = re.compile("|".join(f"(?:{p.regex.pattern.replace('(?P<ps_d>', '(?:')})" for p in active))
    return lambda path: joined.match(path) is not None


# A gitignore pattern that is a file or folder name at any depth, with `*`/`?` wildcards at most.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.~+-]*(?:[*?][A-Za-z0-9_.~+-]*)*")


def _plain_name_regex(pattern: str) -> str:
    """The regex of a `_PLAIN_NAME` pattern: the name at any depth, and everything below it."""
    body = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in pattern)
    return f"^(?:.+/)?{body}(?:/|$)"


def _force_excluded(path: Path, root: Path, excluded, is_dir: bool = False) -> bool:  # type: ignore[no-untyped-def]
    """Whether an exclude matches `path` or a folder above it (below the root, else by name)."""
    if path == root:
        return False  # patterns match below the root: the root is `./` to itself, which `.*` would match
    if root in path.parents:
        chain = [path, *[p for p in path.parents if root in p.parents]]
    else:
        chain = [path]
    return any(excluded(p, is_dir or p != path, root) for p in chain)


def _chain(start: Path, current: Path) -> list[Path]:
    """`start` and each directory below it down to `current`."""
    chain = [current]
    while chain[-1] != start:
        chain.append(chain[-1].parent)
    return list(reversed(chain))


def _display_path(path: Path, given: Path, resolved_given: Path) -> str:
    # Keep paths as the user wrote them (relative stays relative), like ruff.
    return str(given / path.relative_to(resolved_given))


def walked_path(path: str) -> str:
    """A path as a walk from the working directory spells it: relative when it lies below it, else
    as it is (above it, or on another drive)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if relative.startswith("..") else relative
