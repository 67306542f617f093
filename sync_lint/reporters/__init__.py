"""Output formats: turn checked files into text for people, CI and other tools.

`render` is the single entry point the CLI calls. Every format returns the
complete output as one string that ends with a newline (or is empty, for the
line-oriented machine formats when nothing was found); write it with
`sys.stdout.write`, not `print`, to avoid a doubled newline.

Human formats (`full`, `concise`) include file errors and, on request, the
statistics table. Machine formats never contain statistics, so their output
stays parseable; how they treat file errors:
- `json`, `json-lines`: not included (the CLI reports them on stderr);
- `sarif`: `toolExecutionNotifications`;
- `junit`: `<error>` test cases;
- `github`: `::error` annotations without a rule code.
"""

from __future__ import annotations

from pathlib import Path

from sync_lint.diagnostics import FileResult
from sync_lint.formats import OUTPUT_FORMATS
from sync_lint.reporters._common import RuleMap
from sync_lint.reporters.statistics import render_statistics

__all__ = ["render", "render_statistics"]


def render(
    fmt: str,
    results: list[FileResult],
    rules: RuleMap,
    *,
    show_fixes_preview: bool = True,
    statistics: bool = False,
    color: bool = False,
    width: int | None = None,
    unsafe_fixes: bool = False,
    quiet: bool = False,
    root: "Path | None" = None,
    hot_summary: list[str] | None = None,
) -> str:
    """Format `results` as `fmt`, one of `sync_lint.formats.OUTPUT_FORMATS`.

    `rules` maps rule codes to rule classes, for names, docs and URLs.
    `unsafe_fixes` tells the human formats whether `--unsafe-fixes` is on, so
    that `[*]` and the closing summary say what `--fix` would really do.
    `statistics` only affects the human formats (which then print the table instead of the
    findings, as ruff does); `quiet` drops their summary lines; `hot_summary` (the hot-path
    summary lines) only affects the human formats; `color`, `width` and `show_fixes_preview`
    only affect `full`.

    Each format's module is imported when it is asked for: a one-file check prints one format, and
    importing them all (XML, SARIF) is start-up it does not need.
    """
    if fmt == "full":
        from sync_lint.reporters.full import render_full

        return render_full(
            results,
            show_fixes_preview=show_fixes_preview,
            statistics=render_statistics(results, rules, unsafe_fixes=unsafe_fixes) if statistics else "",
            color=color,
            width=width,
            unsafe_fixes=unsafe_fixes,
            quiet=quiet,
            hot_summary=hot_summary,
        )
    if fmt == "concise":
        from sync_lint.reporters.concise import render_concise

        text = render_concise(
            results,
            statistics=render_statistics(results, rules, unsafe_fixes=unsafe_fixes) if statistics else "",
            unsafe_fixes=unsafe_fixes,
            quiet=quiet,
        )
        return text + "".join(line + "\n" for line in hot_summary or ())
    if fmt in ("json", "json-lines"):
        from sync_lint.reporters.json_format import render_json, render_json_lines

        return (render_json if fmt == "json" else render_json_lines)(results, rules)
    if fmt == "github":
        from sync_lint.reporters.github import render_github

        return render_github(results)
    if fmt == "sarif":
        from sync_lint.reporters.sarif import render_sarif

        return render_sarif(results, rules, root)
    if fmt == "junit":
        from sync_lint.reporters.junit import render_junit

        return render_junit(results)
    raise ValueError(f"unknown output format {fmt!r}; expected one of: {', '.join(OUTPUT_FORMATS)}")
