"""The engine: read, prefilter, parse once, walk once, report.

| module | what |
|---|---|
| `lint.py` | `lint_source` / `lint_file`: one file, start to finish |
| `prefilter.py` | which files could hold a finding, from their text alone |
| `walker.py` | the one read-only walk: analyses update, rule handlers run |
| `context.py` | `FileContext` (what rules read) and `Findings` (what they report) |
| `positions.py` | rows, columns and offsets of nodes, resolved lazily |
| `parallel.py` | one task per file over worker processes |
"""

from typing import Any

__all__ = ["SYNTAX_ERROR_CODE", "Prefilter", "lint_file", "lint_source"]


def __getattr__(name: str) -> Any:
    # Imported on first use: `parallel.py` is needed by runs whose results all come from the cache,
    # and `lint.py` imports the parser.
    if name in ("SYNTAX_ERROR_CODE", "lint_file", "lint_source"):
        from sync_lint.engine import lint

        return getattr(lint, name)
    if name == "Prefilter":
        from sync_lint.engine.prefilter import Prefilter

        return Prefilter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
