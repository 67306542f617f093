"""The editor server: `sync-lint server` speaks the Language Server Protocol over stdio.

| module | what |
|---|---|
| `checker.py` | checking buffers in a warm project, fixes for one finding, `# noqa` edits (no pygls) |
| `lsp.py` | the protocol on pygls: diagnostics, hover, code actions, settings, the worker thread |
| `client.py` | a minimal stdio LSP client, for the tests and the latency measurement |

pygls is an optional dependency: `pip install "sync-lint[server]"`. `docs/editor.md`
shows the VS Code, Neovim and Helix setup.
"""

from __future__ import annotations

MISSING_PYGLS = ("the editor server needs pygls: pip install 'sync-lint[server]' "
                 "(or pip install 'pygls>=2')")


def pygls_available() -> bool:
    try:
        import lsprotocol  # noqa: F401
        import pygls.lsp.server  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    """Serve the Language Server Protocol on stdin/stdout until the client says exit."""
    import gc

    from sync_lint.server.lsp import start_server

    # The executable turns automatic collection off for a check, which leaves no cycles behind
    # (`__main__.run_here`); a server lives for a whole editor session, with the protocol library's
    # objects besides ours. It collects, at the thresholds checks ran with before.
    gc.set_threshold(200_000, 30, 30)
    gc.enable()
    start_server()
