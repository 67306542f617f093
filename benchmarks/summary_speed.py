#!/usr/bin/env python3
"""CPU time of the repository summaries (`sync_lint/project/summary.py`) against another revision's.

    python benchmarks/summary_speed.py --corpus /path/to/vllm --against HEAD~1 [--files 500] [--rounds 3]

Loads the `summary.py` of `--against` (from `git show`) beside this checkout's and summarises the same
seeded random files with each, interleaved in every round (each first in turn), in one process, timed
with `time.process_time`. It first checks that both give the same summaries of the first 100 files. The
other modules the old file imports are this checkout's, so it compares revisions that changed only
`summary.py`. Summaries are about a quarter of a cold check; the machines here are shared, so read the
spread of the rounds, not one number.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sync_lint.project.summary as current

REPO = Path(__file__).resolve().parents[1]


def _load_revision(revision: str) -> object:
    text = subprocess.run(["git", "show", f"{revision}:sync_lint/project/summary.py"], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory(prefix="summary-speed-") as folder:
        path = Path(folder) / "summary_at_revision.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("summary_at_revision", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, type=Path)
    parser.add_argument("--against", required=True, help="a git revision of this repository")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    old = _load_revision(args.against)
    files = sorted(args.corpus.rglob("*.py"))
    random.seed(args.seed)
    files = random.sample(files, min(args.files, len(files)))
    sources = [(str(path), path.read_bytes()) for path in files]
    for path, source in sources[:100]:
        if repr(old.summarize(source, path, "m")) != repr(current.summarize(source, path, "m")):  # type: ignore[attr-defined]
            sys.exit(f"the two revisions summarise {path} differently")
    times: dict[str, list[float]] = {args.against: [], "this checkout": []}
    pair = [(args.against, old), ("this checkout", current)]
    for round_ in range(args.rounds):
        for name, module in pair if round_ % 2 == 0 else pair[::-1]:  # each goes first in turn
            start = time.process_time()
            for path, source in sources:
                module.summarize(source, path, "m")  # type: ignore[attr-defined]
            times[name].append(time.process_time() - start)
    for name, spent in times.items():
        print(f"{name}: " + " / ".join(f"{t:.2f}" for t in spent) + f" s CPU for {len(sources)} files")


if __name__ == "__main__":
    main()
