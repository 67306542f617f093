#!/usr/bin/env python3
"""A CI job that restores the cache an earlier job saved: is it used, and what does it save?

    python benchmarks/restored_cache.py --build base=<git rev> --build head=<git rev> \\
        [--corpus vllm-0.33.0] [--file vllm/v1/worker/gpu_input_batch.py] [--jobs 2]

Each CI job installs sync-lint afresh (`pip install` stamps every file with the time of the
install) into a fresh checkout (every project file gets a new modification time). Per build:

1. job 1: the build's code, laid out as `pip install` leaves it (`git archive` of `sync_lint/` and
   `rules/`, the rule pack inside the package), all files stamped with one time; the corpus's
   Python files copied to a folder; a cold check with an empty `--cache-dir`. The cache folder is
   then saved (copied), as `actions/cache` saves it.
2. job 2: the same code installed again in another folder with another time; the corpus copied
   again to the same path (same contents, new times) with one change, a line inserted at the top
   of a function of `--file` (a pull request's edit); the saved cache restored; the same check.

Prints both wall times and whether job 2 printed job 1's findings (those of `--file` below the
inserted line moved down by one). The corpus under `benchmarks/corpus/` is never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from one_file_latency import copy_corpus

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _checkout(source: Path, target: Path) -> None:
    """A fresh checkout: the corpus copied anew, every file with a new modification time."""
    shutil.rmtree(target, ignore_errors=True)
    copy_corpus(source, target)


def _install(rev: str, target: Path, stamp: float) -> Path:
    """The build's code as `pip install` lays it out, every file stamped `stamp`."""
    target.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev, "sync_lint", "rules"], cwd=REPO, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    shutil.copytree(target / "rules", target / "sync_lint" / "rules", dirs_exist_ok=True)
    shutil.rmtree(target / "rules")
    for path in target.rglob("*"):
        os.utime(path, (stamp, stamp))
    return target


def _edit(path: Path) -> int:
    """Insert a statement at the top of the file's first method body; the line it now holds."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    for number, line in enumerate(lines):
        match = re.match(r"(\s+)def \w+\(self[^)]*\)[^:]*:\s*$", line)
        if match and number + 1 < len(lines) and not lines[number + 1].lstrip().startswith(('"""', "'''")):
            indent = match.group(1) + "    "
            lines.insert(number + 1, f"{indent}_pull_request_probe = None\n")
            path.write_text("".join(lines), encoding="utf-8")
            return number + 2
    raise SystemExit(f"{path}: no method to edit")


def _check(install: Path, root: Path, cache: Path, jobs: int) -> tuple[float, list[dict]]:
    env = {**os.environ, "PYTHONPATH": str(install), "SYNC_LINT_NO_DAEMON": "1"}
    command = [sys.executable, "-m", "sync_lint", "check", ".", "--config", "sync-lint-bench.toml",
               "--cache-dir", str(cache), "--jobs", str(jobs), "--output-format", "json", "--exit-zero"]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"check failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def _keys(findings: list[dict], root: Path) -> set[tuple]:
    return {(os.path.relpath(d["filename"], root), d["location"]["row"], d["location"]["column"], d["code"])
            for d in findings}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", required=True, metavar="NAME=REV")
    parser.add_argument("--corpus", default="vllm-0.33.0")
    parser.add_argument("--file", default="vllm/v1/worker/gpu_input_batch.py")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    source = HERE / "corpus" / args.corpus
    rows = []
    with tempfile.TemporaryDirectory(prefix="restored-cache-") as folder:
        work = Path(folder)
        root = work / "checkout"
        for number, item in enumerate(args.build):
            name, rev = item.split("=", 1)
            cache, saved = work / f"cache-{name}", work / f"saved-{name}"
            _checkout(source, root)
            cold, first = _check(_install(rev, work / f"{name}-job1", 1_600_000_000 + number), root, cache, args.jobs)
            shutil.copytree(cache, saved)
            shutil.rmtree(cache)
            _checkout(source, root)
            inserted = _edit(root / args.file)
            shutil.copytree(saved, cache)
            restored, second = _check(_install(rev, work / f"{name}-job2", 1_700_000_000 + number), root, cache,
                                      args.jobs)
            expected = {(path, row + 1 if path == args.file and row >= inserted else row, column, code)
                        for path, row, column, code in _keys(first, root)}
            size = sum(p.stat().st_size for p in saved.rglob("*") if p.is_file())
            rows.append((name, rev, cold, restored, len(first), expected == _keys(second, root), size))
            shutil.rmtree(saved)
            shutil.rmtree(cache)
    print("| build | job 1: cold | job 2: cache restored, fresh install, one file edited | findings | "
          "job 2 printed job 1's | saved cache |")
    print("|---|---:|---:|---:|---|---:|")
    for name, rev, cold, restored, count, same, size in rows:
        print(f"| {name} (`{rev}`) | {cold:.1f} s | {restored:.1f} s | {count:,} | {same} | {size / 1e6:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
