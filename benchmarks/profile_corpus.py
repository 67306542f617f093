#!/usr/bin/env python3
"""Profile one single-process sync-lint run on a seeded sample of a corpus's files.

    python benchmarks/profile_corpus.py                      # 200 vllm files, seed 1
    python benchmarks/profile_corpus.py --corpus transformers --files 300 --top 25

Runs
    python -m cProfile -o benchmarks/results/profile_<corpus>.prof \
        -m sync_lint check <files> --jobs 1 --exit-zero --output-format json --config ...
and writes the top functions by cumulative and by own time to
`benchmarks/results/profile_<corpus>.txt` (the .prof file is git-ignored; open it with
`python -m pstats` or snakeviz).

The sample is drawn from the files sync-lint's own discovery finds, so it includes
files that the trigger prefilter skips without parsing, as a real run does. Pass
`--parsed-only` to profile only files that contain a trigger token of the active rules.
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_DIR = HERE / "results"
CONFIG = HERE / "corpus-config.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="vllm")
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--parsed-only", action="store_true", help="sample only files the prefilter lets through")
    args = parser.parse_args(argv)

    corpora = json.loads((RESULTS_DIR / "corpus.json").read_text(encoding="utf-8"))["corpora"]
    root = REPO / corpora[args.corpus]["dir"]
    sys.path.insert(0, str(REPO))
    from sync_lint import api
    from sync_lint.discovery import discover
    from sync_lint.engine import Prefilter

    plan = api.plan([str(root)], config=str(CONFIG))
    files = discover([str(root)], plan.settings).files
    prefilter = Prefilter.for_rules([r for r in plan.loaded().rules if not r.project_rule], plan.settings, project=True)

    def passes(path: str) -> bool:
        return prefilter.wants(Path(path).read_text(encoding="utf-8", errors="replace"))

    if args.parsed_only:
        files = [f for f in files if passes(f)]
    picked = sorted(random.Random(args.seed).sample(files, min(args.files, len(files))))
    lines = sum(Path(f).read_bytes().count(b"\n") for f in picked)
    through = sum(passes(f) for f in picked)

    prof = RESULTS_DIR / f"profile_{args.corpus}.prof"
    command = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "sync_lint", "check", *picked,
               "--jobs", "1", "--exit-zero", "--output-format", "json", "--no-progress", "--config", str(CONFIG)]
    start = time.perf_counter()
    proc = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO)
    wall = time.perf_counter() - start
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)

    header = (f"{args.corpus}: {len(picked)} files (seed {args.seed}{', parsed-only' if args.parsed_only else ''}), "
              f"{lines} lines, {through} pass the trigger prefilter; rules {', '.join(r.code for r in plan.rules)}; "
              f"profiled wall {wall:.2f} s (cProfile overhead included), exit {proc.returncode}\n")
    buffer = io.StringIO()
    stats = pstats.Stats(str(prof), stream=buffer)
    # The first ~15 cumulative entries are the runpy/click/CLI chain down to lint_file:
    # print past them, then sync-lint's own functions and libcst's separately.
    buffer.write("=== cumulative, all ===\n")
    stats.sort_stats("cumulative").print_stats(args.top + 15)
    buffer.write("=== cumulative, sync_lint (excluding cli/__main__) ===\n")
    stats.sort_stats("cumulative").print_stats(r"sync_lint/(?!cli/|__main__)", args.top)
    buffer.write("=== cumulative, libcst ===\n")
    stats.sort_stats("cumulative").print_stats(r"libcst", args.top)
    buffer.write("=== own time ===\n")
    stats.sort_stats("tottime").print_stats(args.top)
    text = header + buffer.getvalue().replace(str(REPO) + "/", "")
    out = RESULTS_DIR / f"profile_{args.corpus}.txt"
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"profile: wrote {out.relative_to(REPO)} and {prof.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
