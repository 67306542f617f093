"""Which sync-lint code is running: the version, and the signatures of its own modules and rules.

Two signatures, for two uses:

- `stat_digest` (paths, sizes, modification times) finds a running daemon (`daemon.py`). Its
  client computes it before every check, before importing anything else, so it must cost
  nothing; an edit of a rule in an editable install changes it, and the daemon steps aside.
- `content_digest` (names inside the package, and contents) keys the project cache's solved
  facts and its format (`project/store.py`). `pip install` gives every file the time of the
  install, so a stat signature made each fresh install of the same release (a CI job, a
  re-created virtual environment) throw the whole cache away, and a cache restored from an
  earlier CI run was never used. Hashing the contents costs a few milliseconds, once a process.

Third-party rule packs (distributions declaring `sync_lint.rules` entry points) run in the same
process, so their files are part of both: the daemon's signature, and the key of a file's cached
findings (`rule_pack_digest`). They are found without importing them, from each distribution's
`entry_points.txt` on `sys.path`.

Standard library only.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sync_lint import __version__

ENTRY_POINT_GROUP = "sync_lint.rules"


def code_folders() -> list[Path]:
    """The folders of sync-lint's own modules and of the installed rule pack."""
    rules = importlib.util.find_spec("sync_lint.rules")
    folders = [Path(__file__).resolve().parent]
    if rules is not None:
        folders += [Path(p) for p in rules.submodule_search_locations or ()]
    return folders


def code_files() -> list[Path]:
    """sync-lint's own modules, its built-in rules', and the files of third-party rule packs, sorted."""
    own = {path for folder in code_folders() for path in folder.rglob("*.py")}
    return sorted(own | {path for _name, path in rule_pack_files()})


@dataclass(frozen=True)
class RulePack:
    """A distribution that declares `sync_lint.rules` entry points."""

    declared_in: Path | None  # its `entry_points.txt`; None when read through `importlib.metadata`
    modules: tuple[str, ...]  # the top-level modules its entry points name


def rule_packs() -> list[RulePack]:
    """The installed third-party rule packs, in `sys.path` order.

    It reads each distribution's `entry_points.txt` in the folders of `sys.path`, where
    `importlib.metadata` looks, without importing that module (a tenth of a warm one-file check's
    import time, by `python -X importtime`). A path entry that is not a folder (a zip) leaves the
    whole answer to `importlib.metadata`."""
    packs: list[RulePack] = []
    for entry in sys.path:
        folder = entry or "."
        try:
            with os.scandir(folder) as listing:
                names = sorted(item.name for item in listing if item.name.endswith((".dist-info", ".egg-info")))
        except NotADirectoryError:
            return _rule_packs_from_metadata()
        except OSError:
            continue
        for name in names:
            declared = Path(folder, name, "entry_points.txt")
            try:
                text = declared.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            modules = _declared_modules(text)
            if modules is not None:
                packs.append(RulePack(declared, modules))
    return packs


def _declared_modules(text: str) -> tuple[str, ...] | None:
    """The top-level modules named in the `sync_lint.rules` section of an `entry_points.txt`; None
    without that section."""
    section: str | None = None
    found: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section == ENTRY_POINT_GROUP and found is None:
                found = []
        elif section == ENTRY_POINT_GROUP and "=" in line and found is not None:
            found.append(line.partition("=")[2].split(":")[0].split("[")[0].strip().split(".")[0])
    return None if found is None else tuple(dict.fromkeys(m for m in found if m))


def _rule_packs_from_metadata() -> list[RulePack]:
    from importlib import metadata

    return [RulePack(None, (entry.module.split(".")[0],))
            for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)]


def rule_pack_files() -> list[tuple[str, Path]]:
    """The files of the installed rule packs: each declaring `entry_points.txt` and the Python files of
    the modules it names, as (a name that does not depend on where it is installed, the file). A
    module that cannot be found is left out (loading the pack reports it)."""
    files: dict[Path, str] = {}
    for pack in rule_packs():
        if pack.declared_in is not None:
            files[pack.declared_in] = f"{pack.declared_in.parent.name}/{pack.declared_in.name}"
        for module in pack.modules:
            if module == "sync_lint":
                continue  # its own code, digested as such
            try:
                spec = importlib.util.find_spec(module)
            except (ImportError, ValueError):
                continue
            if spec is None:
                continue
            if spec.submodule_search_locations:
                for folder in map(Path, spec.submodule_search_locations):
                    for path in folder.rglob("*.py"):
                        files[path] = f"{module}/{path.relative_to(folder).as_posix()}"
            elif spec.origin and os.path.isfile(spec.origin):
                files[Path(spec.origin)] = f"{module}{Path(spec.origin).suffix}"
    return sorted(((name, path) for path, name in files.items()), key=lambda item: (item[0], str(item[1])))


@functools.lru_cache(maxsize=1)
def rule_pack_digest() -> str:
    """`content_digest` of the rule packs' files: what a cached finding of their rules depends on
    besides the rules' names. Once a process: the rules it runs were loaded once too."""
    return content_digest(rule_pack_files())


def stat_digest(paths: list[Path], salt: str = "") -> str:
    """A digest of the version, `salt` and each path's size and modification time."""
    digest = hashlib.sha256(f"{salt}:{__version__}".encode())
    for path in paths:
        info = path.stat()
        digest.update(f"{path}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def content_digest(files: list[tuple[str, Path]], salt: str = "") -> str:
    """A digest of the version, `salt`, and each file's name and bytes: the same for the same code
    wherever it is installed and whenever. `files`: (the name the file has inside its package, the
    file), in a stable order."""
    digest = hashlib.sha256(f"{salt}:{__version__}".encode())
    for name, path in files:
        data = path.read_bytes()
        digest.update(f"{name}:{len(data)}\n".encode())
        digest.update(data)
    return digest.hexdigest()


def code_content_digest(salt: str = "") -> str:
    """`content_digest` of `code_files`, each named from its folder's name down."""
    files = sorted((f"{folder.name}/{path.relative_to(folder).as_posix()}", path)
                   for folder in code_folders() for path in folder.rglob("*.py"))
    return content_digest(files, salt)
