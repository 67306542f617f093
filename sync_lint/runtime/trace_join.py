"""Joining a runtime trace with static findings: where does each side stand?

Pure functions over plain data, so the classification is unit-tested without a
GPU. Classes, per (file, line):

* "both"          runtime saw the line block and a static rule flagged it;
* "runtime-only"  it blocked but no rule flagged it: a recall gap (or a
                  CPU-heavy line, see `first_only`);
* "static-only"   a rule flagged it but it never blocked; `executed` says
                  whether the line ran at all (not executed: the trace says
                  nothing; executed and never blocked: a likely false alarm, or
                  a sync on a stream the tracer did not keep busy).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sync_lint.runtime.sites import norm
from sync_lint.runtime.tracer import TraceReport

CLASSES = ("both", "runtime-only", "static-only")

StaticFindings = Mapping[tuple[str, int], Sequence[str]]
# (file, line) -> the hot-path root whose path the line lies on, with the chain, or None.
HotLookup = Callable[[str, int], "dict[str, Any] | None"]


def join_with_static(report: TraceReport, static_findings: StaticFindings,
                     hot: HotLookup | None = None) -> dict[str, Any]:
    """Classify every line that blocked or was flagged statically.

    `static_findings` maps (file, line) to rule codes; file paths may be
    relative (to the current directory) and are normalised like the trace's.
    `hot` says which lines lie on a hot root's path (the static call graph), so that
    the runtime and static views agree on "hot": each row gets `hot` (None, or the
    root and chain) and the summary counts the hot lines that blocked.
    Returns {"target", "sleep_ms", "summary": {...}, "lines": [...]}, JSON-ready.
    """
    static: dict[tuple[str, int], list[str]] = {}
    for (file, line), codes in static_findings.items():
        key = (norm(file), int(line))
        merged = static.setdefault(key, [])
        merged.extend(c for c in codes if c not in merged)

    runtime = {(e.file, e.line): e for e in report.entries}
    rows: list[dict[str, Any]] = []
    for key in sorted(set(static) | set(runtime)):
        file, line = key
        entry = runtime.get(key)
        codes = sorted(static.get(key, []))
        if entry is not None and codes:
            cls = "both"
        elif entry is not None:
            cls = "runtime-only"
        else:
            cls = "static-only"
        rows.append(
            {
                "file": file,
                "line": line,
                "class": cls,
                "codes": codes,
                "executed": report.executed(file, line),
                "executions": report.execution_count(file, line),
                "blocked": entry.blocked if entry else 0,
                "blocked_ms": entry.blocked_ms if entry else 0.0,
                "first_only": entry.first_only if entry else False,
                "source": entry.source if entry else _source(file, line),
                "hot": hot(file, line) if hot is not None else None,
            }
        )

    summary: dict[str, int] = {c: 0 for c in CLASSES}
    for row in rows:
        summary[row["class"]] += 1
    summary["static-only-executed"] = sum(
        1 for r in rows if r["class"] == "static-only" and r["executed"]
    )
    summary["static-only-not-executed"] = summary["static-only"] - summary["static-only-executed"]
    if hot is not None:
        summary["hot-blocking"] = sum(1 for r in rows if r["hot"] is not None and r["class"] != "static-only")
    return {
        "target": report.target,
        "sleep_ms": report.sleep_ms,
        "cuda_initialized": report.cuda_initialized,
        "exit_code": report.exit_code,
        "exception": report.exception,
        "summary": summary,
        "lines": rows,
    }


def joined_to_json(joined: Mapping[str, Any], indent: int | None = 2) -> str:
    return json.dumps(joined, indent=indent)


def _source(file: str, line: int) -> str:
    import linecache

    return linecache.getline(file, line).strip()
