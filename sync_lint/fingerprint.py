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

Standard library only.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from sync_lint import __version__


def code_folders() -> list[Path]:
    """The folders of sync-lint's own modules and of the installed rule pack."""
    rules = importlib.util.find_spec("sync_lint.rules")
    folders = [Path(__file__).resolve().parent]
    if rules is not None:
        folders += [Path(p) for p in rules.submodule_search_locations or ()]
    return folders


def code_files() -> list[Path]:
    """sync-lint's own modules and the installed rule pack's, sorted."""
    return sorted(path for folder in code_folders() for path in folder.rglob("*.py"))


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
