"""`sync-lint server`: the editor server (Language Server Protocol over stdio; `sync_lint.server`)."""

from __future__ import annotations

import click

from sync_lint.api import UsageError
from sync_lint.cli.app import main


@main.command()
@click.option("--stdio", is_flag=True, help="Talk over stdin/stdout (the default and only transport).")
def server(stdio: bool) -> None:
    """Run the editor server (LSP over stdio): diagnostics, hover evidence, fixes. Needs `sync-lint[server]`."""
    from sync_lint.server import MISSING_PYGLS, main as serve, pygls_available

    if not pygls_available():
        raise UsageError(MISSING_PYGLS)
    serve()
