"""Errors shared by the library API and the command line, in a module that imports nothing.

The command line catches `UsageError` in every command, `--version` included, so it
lives here rather than in `sync_lint.api` (whose imports bring in the parser).
"""

from __future__ import annotations


class UsageError(Exception):
    """A usage or configuration problem; the command line prints it and exits 2."""
