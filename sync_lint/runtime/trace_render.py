"""Text rendering of trace results (rich tables), for `sync-lint trace`.

rich is imported inside the functions: the rest of the runtime package must
import with nothing but the standard library.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from sync_lint.runtime.tracer import TraceReport

_STYLE = {"both": "green", "runtime-only": "red", "static-only": "yellow"}




def _console(color: bool, width: int) -> Any:
    from rich.console import Console

    return Console(
        file=io.StringIO(),
        width=width,
        force_terminal=color,
        color_system="standard" if color else None,
        highlight=False,
    )


def _footer(target: str, sleep_ms: float, cuda: bool, exit_code: Any, exception: Any) -> list[str]:
    lines = [f"traced {target} with {sleep_ms:g} ms of GPU sleep kept queued per line"]
    if not cuda:
        lines.append(
            "warning: the program never initialised CUDA, so no line could be measured"
        )
    if exception:
        lines.append(f"the program raised {exception}; results cover what ran before it")
    elif exit_code not in (0, None):
        lines.append(f"the program exited with status {exit_code}")
    return lines


def render_trace(report: TraceReport, color: bool = False, width: int = 120) -> str:
    """Blocking lines of a trace alone (no static findings)."""
    from rich.table import Table
    from rich.text import Text

    from sync_lint.discovery import walked_path  # here: it imports the configuration (tomli on 3.10)

    console = _console(color, width)
    table = Table(title="Lines that blocked the host", show_lines=False)
    for name, justify in (("location", "left"), ("blocked", "right"), ("runs", "right"),
                          ("blocked ms", "right"), ("source", "left")):
        # Fold, never truncate: a cut-off path is useless.
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for e in sorted(report.entries, key=lambda e: -e.blocked_ms):
        note = " (first run only: warm-up?)" if e.first_only else ""
        table.add_row(
            Text(f"{walked_path(e.file)}:{e.line}"), str(e.blocked), str(e.executions),
            f"{e.blocked_ms:.1f}", Text(e.source + note),
        )
    if report.entries:
        console.print(table)
    else:
        console.print("No traced line blocked the host.")
    for line in _footer(report.target, report.sleep_ms, report.cuda_initialized,
                        report.exit_code, report.exception):
        console.print(line, markup=False)
    return console.file.getvalue()


def render_full(joined: Mapping[str, Any], color: bool = False, width: int = 120) -> str:
    """The joined runtime/static view from `join_with_static`, as a rich table."""
    from rich.table import Table
    from rich.text import Text

    from sync_lint.discovery import walked_path

    console = _console(color, width)
    table = Table(title="Runtime trace vs static findings")
    hot_known = any("hot" in r for r in joined["lines"]) and "hot-blocking" in joined["summary"]
    columns = [("class", "left"), ("location", "left"), ("rules", "left"), ("blocked/runs", "right"),
               ("blocked ms", "right")]
    if hot_known:
        columns.append(("hot root", "left"))
    for name, justify in (*columns, ("source", "left")):
        # Fold, never truncate: a cut-off path is useless.
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    order = {"runtime-only": 0, "both": 1, "static-only": 2}
    rows = sorted(joined["lines"], key=lambda r: (order[r["class"]], r["file"], r["line"]))
    for r in rows:
        cls = r["class"]
        if cls == "static-only":
            runs = f"0/{r['executions']}" if r["executed"] else "not run"
        else:
            runs = f"{r['blocked']}/{r['executions']}"
        note = " (first run only: warm-up?)" if r.get("first_only") else ""
        cells = [
            Text(cls, style=_STYLE[cls]),
            Text(f"{walked_path(r['file'])}:{r['line']}"),
            Text(", ".join(r["codes"]) or "-"),
            runs,
            f"{r['blocked_ms']:.1f}" if r["blocked"] else "-",
        ]
        if hot_known:
            hot = r.get("hot")
            cells.append(Text(hot["root"].rsplit(".", 1)[-1] if hot else "-", style="bold" if hot else ""))
        table.add_row(*cells, Text(r["source"] + note))
    if rows:
        console.print(table)
    else:
        console.print("Nothing blocked at runtime and nothing was flagged statically.")
    s = joined["summary"]
    console.print(
        f"both: {s['both']}   runtime-only (recall gaps): {s['runtime-only']}   "
        f"static-only: {s['static-only']} ({s['static-only-executed']} ran without "
        f"blocking, {s['static-only-not-executed']} never ran)"
        + (f"   on a hot path and blocked: {s['hot-blocking']}" if "hot-blocking" in s else "")
    )
    for line in _footer(joined["target"], joined["sleep_ms"], joined["cuda_initialized"],
                        joined["exit_code"], joined["exception"]):
        console.print(line, markup=False)
    return console.file.getvalue()
