"""The command line: argument parsing and rendering over the library API (`sync_lint.api`).

| module | commands |
|---|---|
| `app.py` | the `sync-lint` group, exit codes, error handling |
| `check.py` | `check`, `fix`, `baseline create` |
| `info.py` | `rules`, `explain` |
| `paths.py` | `paths` (the call tree of a hot-path root) |
| `runtime.py` | `verify`, `trace` (these import torch) |
"""

from sync_lint.cli import check, info, paths, runtime  # noqa: F401  (each module registers its commands)
from sync_lint.cli.app import main

__all__ = ["main"]
