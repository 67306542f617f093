"""The command line: argument parsing and rendering over the library API (`sync_lint.api`).

| module | commands |
|---|---|
| `app.py` | the `sync-lint` group, exit codes, error handling |
| `check.py` | `check`, `fix`, `baseline create` |
| `info.py` | `rules`, `explain` |
| `paths.py` | `paths` (the call tree of a hot-path root) |
| `runtime.py` | `verify`, `trace` (these import torch) |
| `server.py` | `server` (the editor server; needs pygls) |
| `daemon.py` | `daemon start`, `stop`, `status`, `run` (a warm process that `check` hands its work to) |
"""

# Each module registers its commands on `main` when first imported; `main` imports them on
# demand (`app.COMMAND_MODULES`), so that `sync-lint --version` loads no parser.
from sync_lint.cli.app import main

__all__ = ["main"]
