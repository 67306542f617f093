"""Deciding which source files are "user code", and finding user call sites.

Pure functions over paths and frames (no torch), shared by the detector (which
maps a sync warning's Python stack to the user line that caused it) and the
tracer (which only traces user files).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import sysconfig
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import FrameType

_RUNTIME_DIR = os.path.dirname(os.path.realpath(__file__))
_SYNC_LINT_DIR = os.path.dirname(_RUNTIME_DIR)


def norm(path: str) -> str:
    """Absolute, symlink-free form used for every comparison and report key."""
    # Relative paths depend on the current directory, so only the absolute form
    # goes through the cache.
    return _norm_abs(path if os.path.isabs(path) else os.path.abspath(path))


@lru_cache(maxsize=8192)
def _norm_abs(path: str) -> str:
    # Cached: the warning hook and the tracer call this for every frame they see.
    return os.path.realpath(path)


def is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@lru_cache(maxsize=None)
def package_dir(name: str) -> str | None:
    """Directory of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return norm(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=None)
def stdlib_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {norm(paths[key]) for key in ("stdlib", "platstdlib") if key in paths}
    return tuple(sorted(roots))


def default_library_roots() -> tuple[str, ...]:
    """Roots never treated as user code: stdlib, torch, and sync_lint itself."""
    roots = list(stdlib_roots())
    torch_dir = package_dir("torch")
    if torch_dir:
        roots.append(torch_dir)
    roots.append(_SYNC_LINT_DIR)
    return tuple(roots)


def is_synthetic(filename: str) -> bool:
    # "<frozen importlib._bootstrap>", "<string>", "<stdin>": no file to point at.
    return filename.startswith("<") and filename.endswith(">")


def is_library_path(path: str, library_roots: Sequence[str]) -> bool:
    """True for third-party and stdlib code, which a user cannot fix in place."""
    parts = path.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return True
    return any(is_under(path, root) for root in library_roots)


@dataclass(frozen=True)
class FileFilter:
    """Which files the tracer follows.

    Order of the rules (why: explicit wishes beat defaults, but a program must
    never trace the tracer):
      1. synthetic filenames and sync_lint's own files: never;
      2. a path matching an `exclude` glob: never;
      3. a path matching an `include` glob: yes, even inside site-packages or
         torch (that is how you trace into an installed project such as vLLM);
      4. with `include` given, anything else: no;
      5. otherwise: yes unless it is library code (stdlib, torch, site-packages).
    Globs use fnmatch on the absolute, symlink-resolved path: `*/myproj/*`.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    library_roots: tuple[str, ...] = field(default_factory=default_library_roots)
    own_root: str = _SYNC_LINT_DIR

    def wants(self, filename: str) -> bool:
        if is_synthetic(filename):
            return False
        path = norm(filename)
        if is_under(path, self.own_root):
            return False
        if any(fnmatch.fnmatchcase(path, pat) for pat in self.exclude):
            return False
        if self.include:
            return any(fnmatch.fnmatchcase(path, pat) for pat in self.include)
        return not is_library_path(path, self.library_roots)


@lru_cache(maxsize=None)
def site_skip_roots() -> tuple[str, ...]:
    """Frames skipped when looking for the user line behind a sync: torch (the op
    that synced), sync_lint.runtime (the detector), and the warnings module."""
    roots = [_RUNTIME_DIR]
    torch_dir = package_dir("torch")
    if torch_dir:
        roots.append(torch_dir)
    import warnings

    roots.append(norm(warnings.__file__))
    # Python 3.14 moved the implementation into _py_warnings.
    spec = importlib.util.find_spec("_py_warnings")
    if spec is not None and spec.origin:
        roots.append(norm(spec.origin))
    return tuple(roots)


def first_user_site(
    frame: FrameType | None, skip_roots: Iterable[str]
) -> tuple[str, int] | None:
    """Walk outward from `frame` to the first frame not under `skip_roots`.

    Third-party frames are *not* skipped: if transformers syncs on our behalf,
    the line inside transformers is where the sync is.
    """
    roots = tuple(skip_roots)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not is_synthetic(filename):
            path = norm(filename)
            if not any(is_under(path, root) for root in roots):
                return path, frame.f_lineno
        frame = frame.f_back
    return None
