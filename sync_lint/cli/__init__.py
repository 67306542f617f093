"""The command line: argument parsing and rendering over the library API (`sync_lint.api`).

| module | commands |
|---|---|
| `app.py` | the `sync-lint` group, exit codes, error handling |
| `check.py` | `check`, `fix`, `baseline create` |
| `info.py` | `rules`, `explain` |
| `runtime.py` | `verify`, `trace` (these import torch) |
| `server.py` | `server` (the editor server; needs pygls) |
"""

from sync_lint.cli import check, info, runtime, server  # noqa: F401  (each module registers its commands)
from sync_lint.cli.app import main

__all__ = ["main"]
