"""Fixing: the pass loop (`passes.py`), offset edits (`edits.py`), the imports a fix needs
(`imports.py`), and what a fix run prints (`report.py`). Files are read and written by
`sync_lint.source`; which files get fixed is the library API's business (`sync_lint.api`).
"""

from sync_lint.fix.passes import (
    AppliedFix,
    FixError,
    FixOutcome,
    fix_snippet,
    fix_source,
    is_applicable,
    snippet_fixes,
)
from sync_lint.fix.report import fix_summary, unified_diff

__all__ = [
    "AppliedFix", "FixError", "FixOutcome", "fix_snippet", "fix_source", "fix_summary", "is_applicable",
    "snippet_fixes", "unified_diff",
]
