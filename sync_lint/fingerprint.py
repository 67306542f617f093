"""Which sync-lint code is running: the version and the stat signatures of its own modules and rules.

The cache keys solved facts and results by it, and a daemon (`daemon.py`) is found by it, so that
an editable install or a rule being edited counts as other code without a new version. Standard
library only: the daemon's client computes it before importing anything else.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from sync_lint import __version__


def code_files() -> list[Path]:
    """sync-lint's own modules and the installed rule pack's, sorted."""
    rules = importlib.util.find_spec("sync_lint.rules")
    folders = [Path(__file__).resolve().parent]
    if rules is not None:
        folders += [Path(p) for p in rules.submodule_search_locations or ()]
    return sorted(path for folder in folders for path in folder.rglob("*.py"))


def stat_digest(paths: list[Path], salt: str = "") -> str:
    """A digest of the version, `salt` and each path's size and modification time."""
    digest = hashlib.sha256(f"{salt}:{__version__}".encode())
    for path in paths:
        info = path.stat()
        digest.update(f"{path}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()
