"""`--statistics`: one row per rule code, most frequent first (as ruff prints it)."""

from __future__ import annotations

from collections import Counter

from sync_lint.diagnostics import FileResult
from sync_lint.reporters._common import RuleMap, is_applicable, rule_name, sorted_diagnostics


def render_statistics(results: list[FileResult], rules: RuleMap, *, unsafe_fixes: bool = False) -> str:
    """Rows of `count<TAB>code<TAB>[*] name`; empty string when nothing was found.

    `[*]` marks codes for which at least one diagnostic carries a fix that `--fix`
    would apply (an unsafe fix counts only with `unsafe_fixes`); when any code has
    one, the others get `[ ]` so the names stay aligned, like ruff.
    """
    diagnostics = sorted_diagnostics(results)
    if not diagnostics:
        return ""
    counts: Counter[str] = Counter(d.code for d in diagnostics)
    names: dict[str, str] = {}
    fixable: set[str] = set()
    for d in diagnostics:
        names.setdefault(d.code, rule_name(d, rules))
        if is_applicable(d.fix, unsafe_fixes):
            fixable.add(d.code)

    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    count_width = max(len(str(count)) for _, count in rows)
    code_width = max(len(code) for code, _ in rows)
    lines = []
    for code, count in rows:
        marker = ("[*] " if code in fixable else "[ ] ") if fixable else ""
        lines.append(f"{count:>{count_width}}\t{code:<{code_width}}\t{marker}{names[code]}")
    return "\n".join(lines) + "\n"
