#!/usr/bin/env python3
"""Check that two builds of sync-lint report byte-identical JSON on a seeded subset of a corpus.

    git archive main | tar -x -C /tmp/main && cp -r /tmp/main/rules /tmp/main/sync_lint/rules
    python benchmarks/same_findings.py /tmp/main . --corpus vllm-0.33.0 --files 300 --mode isolated

A build is a folder holding a `sync_lint` package (an export needs its `rules/` copied
to `sync_lint/rules`, as above, so that it does not pick up this checkout's rules).
`--mode isolated` checks each file on its own (`--isolated --target-torch-version 2.11`);
`--mode project` uses `benchmarks/corpus-config.toml`, whose project roots make each
corpus its own project (the index covers the whole corpus, so this is slow). Both runs
use `--no-cache`. Prints the number of findings and whether the outputs are identical;
exits 1 when they differ.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "corpus-config.toml"


def subset(root: Path, count: int, seed: int) -> list[str]:
    files = sorted(str(p) for p in root.rglob("*.py") if ".sync-lint-cache" not in p.parts)
    return sorted(random.Random(seed).sample(files, min(count, len(files))))


def run(build: str, files: list[str], mode: str) -> tuple[bytes, float]:
    flags = ["--config", str(CONFIG)] if mode == "project" else ["--isolated", "--target-torch-version", "2.11"]
    env = dict(os.environ, PYTHONPATH=str(Path(build).resolve()))
    # `python -m` puts the working folder first on sys.path: run from the build's own folder.
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sync_lint", "check", *files, *flags, "--output-format", "json",
                           "--exit-zero", "--no-cache"], capture_output=True, env=env,
                          cwd=env["PYTHONPATH"])
    if done.returncode != 0:
        raise SystemExit(f"{build}: exit {done.returncode}\n{done.stderr.decode()[-2000:]}")
    return done.stdout, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build_a")
    parser.add_argument("build_b")
    parser.add_argument("--corpus", default="vllm-0.33.0")
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--mode", choices=["isolated", "project"], default="isolated")
    args = parser.parse_args(argv)
    files = subset(HERE / "corpus" / args.corpus, args.files, args.seed)
    outputs = {}
    for build in (args.build_a, args.build_b):
        out, seconds = run(build, files, args.mode)
        outputs[build] = out
        findings = json.loads(out)
        print(f"{build}: {len(findings)} findings in {len({f['filename'] for f in findings})} files, "
              f"{len(out)} bytes, sha256 {hashlib.sha256(out).hexdigest()[:16]}, {seconds:.0f}s")
    same = outputs[args.build_a] == outputs[args.build_b]
    print(f"{args.corpus}, {len(files)} files (seed {args.seed}), {args.mode}: "
          f"{'identical' if same else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
