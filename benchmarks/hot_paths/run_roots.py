#!/usr/bin/env python3
"""Check a corpus with hot-path roots, time the hot-path pass, and write what a reader judges.

    python benchmarks/hot_paths/run_roots.py --corpus DIR --config TOML --cache DIR --out DIR \\
        [--reached-only | --subset FOLDER] [--jobs N] [--timing-only]

The roots are the configuration's `hot-paths` (its `hot-path-defaults` decide the built-in
ones). `--reached-only` first resolves the call graph from the roots and checks only the
files of the functions reached (every hot finding and every SL601 lies in them; the project
is still the whole corpus); `--subset` checks one folder of it (for a cost measurement on a
slow machine); without either the whole corpus is checked. Writes, under `--out`:

- `timing.json`: the call graph from the roots (with `--reached-only`), the check (no hot-path
  pass) and the hot-path pass on top, wall seconds;
- `findings.json`: the findings, as `--output-format json`;
- `summary.txt`: the hot-path summary lines of `sync-lint check`;
- `roots.json`: per root, functions reached, unresolved calls in them, hot syncs credited to
  it (its nearest root), hot syncs reachable from it, and SL601 credited to it;
- `ranked.txt`: the 25 highest-ranked hot findings with their chains (per layer first, then
  loop depth, confidence, chain length);
- `sl601-sample.txt`: 30 random SL601 findings (seed 11) with their evidence steps.
"""

from __future__ import annotations

import argparse
import json
import linecache
import random
import time
from pathlib import Path

from sync_lint import api
from sync_lint.hotpaths import _innermost, _module_of
from sync_lint.project.hot import CallGraph, EdgeCache
from sync_lint.reporters import render


def _chain(hot: dict) -> str:
    names = []
    for step in hot["chain"]:
        parts = step["function"].split(".")
        # `Class.method` for methods, the bare name for functions.
        names.append(".".join(parts[-2:]) if len(parts) > 1 and parts[-2][:1].isupper() else parts[-1])
    return " → ".join(names)


def _rank(item: dict) -> tuple:
    hot = item["hot"]
    return (not hot["per_layer"], -hot["loop_depth"], item["confidence"] != "high", len(hot["chain"]),
            item["filename"], item["location"]["row"])


def _reached_files(plan: api.Plan, corpus: Path, jobs: int) -> list[str]:
    """The files of every function the configured roots reach."""
    anchor = next(corpus.rglob("*.py"))
    project = next(iter(api.projects_of(plan, [str(anchor)], jobs=jobs).values()))
    opened = project.open(plan.settings)
    cache = EdgeCache(opened)
    graph = CallGraph(opened.index, opened.inference, cache)
    roots, _missing = graph.roots(plan.settings.hot_paths, plan.settings.hot_path_defaults)
    files = set()
    for function in graph.reach(roots).parent:
        found = graph.function(function)
        if found is not None:
            files.add(str(corpus / found[0].path))
    opened.save_facts()
    cache.save()
    return sorted(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--reached-only", action="store_true")
    parser.add_argument("--subset", help="a folder of the corpus to check (the project is still all of it)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timing-only", action="store_true",
                        help="write timing.json and summary.txt only (the per-root tables walk every root again)")
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    # The corpus is the project, wherever the configuration lies.
    config = [str(args.config), f'project-roots = ["{corpus}"]']
    plan = api.plan([str(corpus)], config=config, project=api.ProjectOptions(cache_dir=args.cache))
    started = time.perf_counter()
    if args.reached_only:
        files = _reached_files(plan, corpus, args.jobs)
    else:
        files = [str(corpus / args.subset) if args.subset else str(corpus)]
    graphed = time.perf_counter()
    report = api.run(plan, files, hot_paths=False, jobs=args.jobs)
    checked = time.perf_counter()
    hot = api.apply_hot_paths(plan, report, jobs=args.jobs)
    done = time.perf_counter()
    diagnostics = [d for r in report.results for d in r.diagnostics]
    timing = {"graph_s": round(graphed - started, 1), "check_s": round(checked - graphed, 1), "hot_pass_s": round(done - checked, 1),
              "files": len(report.results), "findings": len(diagnostics)}
    (out / "timing.json").write_text(json.dumps(timing, indent=1) + "\n")
    (out / "summary.txt").write_text("\n".join(hot.lines(diagnostics)) + "\n")
    if args.timing_only:
        return
    (out / "findings.json").write_text(render("json", report.results, plan.registry))
    findings = json.loads((out / "findings.json").read_text())

    project = next(iter(api.projects_of(plan, [files[0]]).values()))
    opened = project.open(plan.settings)
    graph = CallGraph(opened.index, opened.inference, EdgeCache(opened))
    index = opened.index

    def function_of(item: dict) -> str | None:
        summary = index.summary(_module_of(item["filename"], corpus))
        info = _innermost(summary, item["location"]["row"]) if summary is not None else None
        return summary.qualified(info.qualname) if info is not None else None

    direct = [f for f in findings if f["code"] != "SL601"]
    transitive = [f for f in findings if f["code"] == "SL601"]
    roots: dict = {"findings": len(direct), "hot": sum(1 for f in direct if f.get("hot")),
                   "sl601": len(transitive), "per_root": {}}
    for root in hot.roots:
        reach = graph.reach(root)
        inclusive = [f for f in direct if function_of(f) in reach.parent]
        roots["per_root"][root.function] = {
            "kind": root.why,
            "functions_reached": len(reach.parent),
            "unresolved_calls": sum(len(graph.unresolved(fn)) for fn in reach.parent),
            "hot_syncs_nearest_root": sum(1 for f in direct if f.get("hot") and f["hot"]["root"] == root.function),
            "hot_syncs_reachable": len(inclusive),
            "sl601_nearest_root": sum(1 for f in transitive if f.get("hot") and f["hot"]["root"] == root.function),
        }
    (out / "roots.json").write_text(json.dumps(roots, indent=1) + "\n")

    lines = []
    for item in sorted((f for f in direct if f.get("hot")), key=_rank)[:25]:
        hot_info = item["hot"]
        where = Path(item["filename"]).relative_to(corpus)
        lines.append(f"{item['code']} {where}:{item['location']['row']} loop={hot_info['loop_depth']} "
                     f"per_layer={hot_info['per_layer']} conf={item['confidence']} | {_chain(hot_info)} | "
                     f"{item['message'][:120]}")
    (out / "ranked.txt").write_text("\n".join(lines) + "\n")

    sample = random.Random(11).sample(transitive, min(30, len(transitive)))
    lines = []
    for number, item in enumerate(sample):
        where = Path(item["filename"]).relative_to(corpus)
        text = linecache.getline(item["filename"], item["location"]["row"]).strip()
        lines.append(f"[{number}] {where}:{item['location']['row']}: {text[:120]}")
        for step in item.get("evidence_steps") or ():
            lines.append(f"      {step['message'][:170]}  @{Path(step['filename']).relative_to(corpus)}:{step['row']}")
    (out / "sl601-sample.txt").write_text("\n".join(lines) + "\n")
    print(json.dumps(timing), json.dumps(roots, indent=1), sep="\n")


if __name__ == "__main__":
    main()
