#!/usr/bin/env python3
"""Draw the files of a fresh precision-audit sample, outside every earlier sample.

    cd benchmarks/corpus/vllm-0.33.0
    python ../../sample_files.py --index 7 --out ../../../.bench/vllm-0.33.0.sample7

The audits' samples form one chain over a corpus's sorted `.py` files: the first is 400
files drawn with seed 20261130, and the n-th (n >= 2) 300 files drawn with seed
20261199 + n from the files no earlier sample holds. Samples 1-6 were drawn from every
`.py` file; from sample 7 on, only from the files `sync-lint check <package>` checks (a
directory walk leaves transformers' `modular_*.py` templates out, which files named on
the command line would bring back in). Run from the corpus folder; `--package` is the
folder the walk starts from (default: the corpus folder's name up to its first `-`).
"""

from __future__ import annotations

import argparse
import glob
import os
import random
from pathlib import Path

FIRST_SEED = 20261130
FIRST_SIZE = 400
SIZE = 300
WALKED_FROM = 7  # the first sample drawn from the directory walk's files only


def seed_of(index: int) -> int:
    return FIRST_SEED if index == 1 else 20261199 + index


def chain(files: list[str], walked: set[str], upto: int) -> list[list[str]]:
    """Samples 1..upto over `files` (sorted), each from what the earlier ones left."""
    samples: list[list[str]] = []
    rest = sorted(files)
    for index in range(1, upto + 1):
        pool = rest if index < WALKED_FROM else [f for f in rest if f in walked]
        drawn = random.Random(seed_of(index)).sample(pool, min(FIRST_SIZE if index == 1 else SIZE, len(pool)))
        samples.append(sorted(drawn))
        taken = set(drawn)
        rest = [f for f in rest if f not in taken]
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=int, required=True, help="which sample of the chain to write")
    parser.add_argument("--package", default=Path.cwd().name.split("-")[0])
    parser.add_argument("--config", type=Path, default=Path(__file__).resolve().parent / "corpus-config.toml")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    from sync_lint.config import load_config_file
    from sync_lint.discovery import discover

    files = sorted(glob.glob("**/*.py", recursive=True))
    settings = load_config_file(args.config)
    walked = {os.path.relpath(p) for p in discover([args.package], settings).files}
    sample = chain(files, walked, args.index)[-1]
    args.out.write_text("\n".join(sample) + "\n")
    print(f"wrote {len(sample)} files to {args.out}")


if __name__ == "__main__":
    main()
