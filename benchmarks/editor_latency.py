"""How long the editor server takes to re-check a file as it is edited, driven by a scripted LSP client.

    python benchmarks/editor_latency.py WORKSPACE FILE [FILE ...] [--runs 9] [--index-buffer]

Spawns `sync-lint server` in WORKSPACE (stdio, as an editor does), waits for the
project index, opens each FILE, then edits it `--runs` times with the debounce set
to 0 (each edit appends a different trailing comment: the buffer differs from the file
on disk, so every check is of unsaved text, and does the same work). For each edit
it records:

- `latency`: wall time from sending `didChange` to receiving `publishDiagnostics`
  (what the user waits for; includes the protocol and the worker thread);
- `check` and `cpu`: the server's own wall and CPU time for the check (from its log).

Prints a Markdown table (median, min, max per file). Warm the project's cache first
(`sync-lint check WORKSPACE`), or the first open pays for the index.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

from sync_lint.server.client import LspClient

_LOG = re.compile(r"checked (?P<path>.+) in (?P<wall>[0-9.]+) s \(CPU (?P<cpu>[0-9.]+) s, (?P<where>[^)]+)\): "
                  r"(?P<count>\d+) finding")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--index-buffer", action="store_true",
                        help="the server's indexBuffer setting: summarise the buffer into the index on every check")
    args = parser.parse_args(argv)
    root = args.workspace.resolve()
    rows = []
    with LspClient(cwd=root) as lsp:
        started = time.perf_counter()
        lsp.initialize(root, options={"debounceMs": 0, "indexBuffer": args.index_buffer})
        while not any("project index" in line and "ready" in line for line in lsp.log):
            if time.perf_counter() - started > 900:
                print("the project index was not ready in 900 s", file=sys.stderr)
                return 1
            time.sleep(0.05)
        ready = time.perf_counter() - started
        print(f"server started and project index ready in {ready:.2f} s", file=sys.stderr)
        for name in args.files:
            path = (root / name).resolve()
            text = path.read_text(encoding="utf-8")
            sent = time.perf_counter()
            uri = lsp.open(path, text)
            first = lsp.wait_for_diagnostics(uri, timeout=900)
            opened = time.perf_counter() - sent
            latencies, checks, cpus, where = [], [], [], ""
            for run in range(args.runs):
                count = lsp.publish_count[uri]
                logged = len(lsp.log)
                sent = time.perf_counter()
                lsp.change(uri, text + f"\n# edit {run}\n", run + 2)
                lsp.wait_for_diagnostics(uri, after=count, timeout=900)
                latencies.append(time.perf_counter() - sent)
                for line in lsp.log[logged:]:
                    match = _LOG.search(line)
                    if match and match["path"] == str(path):
                        checks.append(float(match["wall"]))
                        cpus.append(float(match["cpu"]))
                        where = match["where"]
            rows.append((name, len(text.splitlines()), len(first), opened, latencies, checks, cpus, where))
            lsp.close(uri)
    print("| file | lines | findings | open (s) | edit→diagnostics, median (min–max) s | server check wall, median s | "
          "server check CPU, median s | index |")
    print("|---|---:|---:|---:|---|---:|---:|---|")
    for name, lines, findings, opened, latencies, checks, cpus, where in rows:
        print(f"| `{name}` | {lines} | {findings} | {opened:.3f} | {statistics.median(latencies):.3f} "
              f"({min(latencies):.3f}–{max(latencies):.3f}) | {statistics.median(checks):.3f} | "
              f"{statistics.median(cpus):.3f} | {where} |")
    print(f"\n{args.runs} edits per file.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
