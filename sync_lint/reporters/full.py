"""`full` (the default): each diagnostic with a ruff-like code frame.

    train.py:12:16: SL001 [*] `.item()` copies the value to the host
      --> train.py:12:16
       |
    12 |     loss_val = loss.item()
       |                ^^^^^^^^^^^
       |
       = evidence: `loss` is on the GPU: assigned from `model(x)` at line 10
       = fix (safe): Keep the value on the device
    12 +     loss_val = loss.detach()

Everything is built from styled spans rather than console markup, so user text
(messages, source lines) is never interpreted as markup: a line such as `x[bold]`
prints as written. rich prints the spans in colour; without colour (a pipe, a file,
a pre-commit hook) rich is not imported at all.
"""

from __future__ import annotations

from io import StringIO

from sync_lint.diagnostics import Diagnostic, FileResult
from sync_lint.reporters._common import (
    Summary,
    apply_edit,
    error_line,
    is_applicable,
    ranked_diagnostics,
    single_line_edit,
    sorted_errors,
)

TAB_SIZE = 4

STYLE_PATH = "bold"
STYLE_CODE = "bold red"
STYLE_FIX_MARKER = "cyan"
STYLE_GUTTER = "bold blue"
STYLE_CARET = "bold red"
STYLE_LABEL = "bold"
STYLE_SAFE = "green"
STYLE_UNSAFE = "yellow"
STYLE_PREVIEW = "green"
STYLE_ERROR = "bold red"


class Text:
    """Styled text, built as rich's `Text` is (the calls this module makes of it): importing rich
    cost a one-file check about 50 ms, for output that is mostly plain."""

    __slots__ = ("parts",)

    def __init__(self, text: str = "", style: str = "") -> None:
        self.parts: list[tuple[str, str]] = [(text, style)] if text else []

    def append(self, text: str, style: str = "") -> "Text":
        self.parts.append((text, style))
        return self

    @property
    def plain(self) -> str:
        return "".join(text for text, _style in self.parts)

    def styled(self):  # type: ignore[no-untyped-def]
        """The same spans as rich's `Text`, to print in colour."""
        from rich.text import Text as RichText

        out = RichText()
        for text, style in self.parts:
            out.append(text, style=style or None)
        return out


def cell_len(text: str) -> int:
    """Terminal cells `text` takes: its length when it is ASCII, else as rich measures it (wide
    characters take two cells)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len as cells

    return cells(text)


def _clean(line: str) -> str:
    # Tabs are expanded by us (not by rich) so that the caret offsets computed
    # below use the same widths as the printed line.
    return line.rstrip("\r\n").expandtabs(TAB_SIZE)


def _caret_span(d: Diagnostic) -> tuple[int, int]:
    """(cells before the span, cells under it) on the diagnostic's first line."""
    raw = d.source_line.rstrip("\r\n")
    start = min(max(d.start.column - 1, 0), len(raw))
    if d.end.row == d.start.row:
        end = min(max(d.end.column - 1, start), len(raw))
    else:
        end = len(raw)
    # Width is measured on the tab-expanded prefix, in terminal cells, so wide
    # characters (CJK, emoji) before the span do not shift the carets.
    before = cell_len(raw[:start].expandtabs(TAB_SIZE))
    through = cell_len(raw[:end].expandtabs(TAB_SIZE))
    return before, max(through - before, 1)


def _header(d: Diagnostic, unsafe_fixes: bool) -> Text:
    text = Text()
    text.append(d.path, style=STYLE_PATH)
    text.append(d.display_location[len(d.path):] + ": ")
    text.append(d.code, style=STYLE_CODE)
    text.append(" ")
    if is_applicable(d.fix, unsafe_fixes):
        text.append("[*]", style=STYLE_FIX_MARKER)
        text.append(" ")
    text.append(d.message)
    return text


def _frame(d: Diagnostic, show_fixes_preview: bool) -> list[Text]:
    row = str(d.start.row)
    gutter = len(row)
    pad = " " * (gutter + 1)

    def bar(*parts: tuple[str, str]) -> Text:
        text = Text(pad)
        text.append("|", style=STYLE_GUTTER)
        for content, style in parts:
            text.append(content, style=style)
        return text

    def note(label: str, body: str, label_style: str = STYLE_LABEL) -> Text:
        text = Text(pad)
        text.append("= ", style=STYLE_GUTTER)
        text.append(label, style=label_style)
        text.append(" " + body)
        return text

    lines: list[Text] = []
    arrow = Text(" " * gutter)
    arrow.append("--> ", style=STYLE_GUTTER)
    arrow.append(d.display_location)
    lines.append(arrow)

    if d.source_line.strip():
        before, width = _caret_span(d)
        source = Text()
        source.append(f"{row} |", style=STYLE_GUTTER)
        source.append(" " + _clean(d.source_line))
        lines.append(bar())
        lines.append(source)
        lines.append(bar((" " + " " * before, ""), ("^" * width, STYLE_CARET)))
        lines.append(bar())

    if d.evidence:
        label = {"convention": "evidence (by convention):", "strict": "evidence (--strict):"}.get(
            d.confidence, "evidence:")
        if len(d.evidence_steps) > 1:  # one line per step: they often cross files
            lines.append(note(label, d.evidence_steps[0].message))
            lines.extend(note("   because", step.message) for step in d.evidence_steps[1:])
        else:
            lines.append(note(label, d.evidence))
    if d.occurrences > 1:
        lines.append(note("note:", f"{d.occurrences} sites on this line, same rule and same cause"))
    if d.context != "per-step":
        lines.append(note("note:", f"in {d.context} code (tests, benchmarks, examples, scripts): lower severity"))
    if d.hot is not None:
        where = [f"loop depth {d.hot.loop_depth}"] if d.hot.loop_depth else []
        if d.hot.per_layer:
            where.append("once per layer")
        extra = f" ({', '.join(where)})" if where else ""
        lines.append(note("hot:", f"{d.hot.arrow()}{extra}"))
    if d.fix is not None:
        unsafe = d.fix.applicability != "safe"
        lines.append(
            note(f"fix ({d.fix.applicability}):", d.fix.message, STYLE_UNSAFE if unsafe else STYLE_SAFE)
        )
        edit = single_line_edit(d)
        if show_fixes_preview and edit is not None and d.source_line.strip():
            preview = Text()
            preview.append(f"{row} +", style=STYLE_GUTTER)
            preview.append(" " + _clean(apply_edit(d.source_line.rstrip("\r\n"), edit)), style=STYLE_PREVIEW)
            lines.append(preview)
    return lines


_BLANK = Text()


def render_full(
    results: list[FileResult],
    *,
    show_fixes_preview: bool = True,
    statistics: str = "",
    color: bool = False,
    width: int | None = None,
    unsafe_fixes: bool = False,
    quiet: bool = False,
    hot_summary: list[str] | None = None,
) -> str:
    buffer = StringIO()
    if color:
        from rich.console import Console  # only for colour: importing it costs a one-file check ~30 ms

        console = Console(
            file=buffer,
            force_terminal=True,
            color_system="standard",
            highlight=False,
            width=width or 100,
            # Keep the output independent of the caller's terminal and environment.
            legacy_windows=False,
            emoji=False,
        )

        def emit(text: Text = _BLANK) -> None:
            # soft_wrap: never wrap or crop long source lines, which would break
            # the frame; the terminal wraps them if it must.
            console.print(text.styled(), soft_wrap=True)
    else:
        def emit(text: Text = _BLANK) -> None:
            # Without colour the console adds nothing to the text (a warm run of a large project
            # spent a third of its time printing through it).
            buffer.write(text.plain + "\n")

    diagnostics = ranked_diagnostics(results)
    # Findings on a hot path first (a stable sort keeps the ranking within each group).
    diagnostics.sort(key=lambda d: d.hot is None)
    errors = sorted_errors(results)
    if statistics:  # ruff: --statistics prints the table instead of the findings (tabs kept as tabs)
        out = [error_line(error) for error in errors]
        if errors:
            out.append("")
        out.append(statistics.rstrip("\n"))
        if not quiet:
            out.append("")
            out.extend(Summary.of(diagnostics, errors, unsafe_fixes).lines())
        return "\n".join(out) + "\n"
    for d in diagnostics:
        emit(_header(d, unsafe_fixes))
        for line in _frame(d, show_fixes_preview):
            emit(line)
        emit()

    for error in errors:
        text = Text()
        text.append("error", style=STYLE_ERROR)
        text.append(error_line(error)[len("error") :])
        emit(text)
    if errors:
        emit()

    if quiet:
        return buffer.getvalue()
    for line in Summary.of(diagnostics, errors, unsafe_fixes).lines():
        emit(Text(line, style="bold" if line.startswith("Found") else ""))
    for line in hot_summary or ():
        emit(Text(line))
    return buffer.getvalue()
