#!/usr/bin/env python3
"""Builds of sync-lint side by side, each on its own cores and its own copy of a corpus.

On a machine with cores to spare (a lent 16-core machine), the builds run at the same time,
so a noisy neighbour slows them alike. Each build is a wheel installed into its own folder;
the dependencies' wheels go into one shared folder (the machine needs no index). Per build,
in order: a cold project run (empty cache), warm re-checks, one file of a warm project, one
file after an edit of it (a comment appended, each run a new one) and `--version`. A build
named `base` is 0.1.0, which has no cache and no `-q`: it gets the cold run and the one-file
runs only. Times are wall seconds of one process each; the table goes to stdout and
`--out`.

    python benchmarks/side_by_side.py --corpus vllm.tar.xz --deps wheels/ \\
        --build new=new/:2,3 --build prev=prev/:0,1 --build base=base/:4,5 --out results.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

HUB = "vllm/v1/attention/backends/utils.py"  # a module much of vLLM's attention code imports
CONFIG = '[tool.sync-lint]\nrespect-gitignore = false\ntarget-torch-version = "2.11"\n'


def install(wheels: Path, target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    *map(str, sorted(wheels.glob("*.whl")))], check=True)


def run_build(name: str, wheels: Path, cores: str, corpus: Path, deps: Path, work: Path, hub: str,
              rows: dict[str, dict[str, list[float]]]) -> None:
    install(wheels, work / f"b-{name}")
    copy = work / name
    if corpus.is_dir():
        shutil.copytree(corpus, copy, ignore=shutil.ignore_patterns(".sync-lint-cache"))
    else:
        copy.mkdir(parents=True)
        with tarfile.open(corpus) as tar:
            tar.extractall(copy)
    (copy / "pyproject.toml").write_text(CONFIG)
    env = dict(os.environ, PYTHONPATH=f"{work / f'b-{name}'}{os.pathsep}{deps}")
    command = ["taskset", "-c", cores, sys.executable, "-m", "sync_lint"] if shutil.which("taskset") and cores \
        else [sys.executable, "-m", "sync_lint"]
    quiet = [] if name == "base" else ["-q"]
    times = rows.setdefault(name, {})

    def timed(label: str, args: list[str]) -> None:
        start = time.perf_counter()
        done = subprocess.run(command + args, cwd=copy, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"{name}: {' '.join(args)} failed ({done.returncode}): {done.stderr[-400:]}")
        times.setdefault(label, []).append(time.perf_counter() - start)

    check = ["check", "--exit-zero", *quiet]
    timed("cold", [*check, ".", "--jobs", "2"])
    if name != "base":
        for _ in range(3):
            timed("warm, nothing changed", [*check, ".", "--jobs", "2"])
    for _ in range(5):
        timed("one file, warm project", [*check, hub])
    if name != "base":
        original = (copy / hub).read_text()
        for i in range(3):
            (copy / hub).write_text(f"{original}\n# an edit, {i}\n")
            timed("one file after an edit", [*check, hub])
        (copy / hub).write_text(original)
    for _ in range(3):
        timed("--version", ["--version"])


def table(rows: dict[str, dict[str, list[float]]]) -> str:
    names = list(rows)
    labels = list(dict.fromkeys(label for times in rows.values() for label in times))
    lines = ["| run | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label in labels:
        cells = []
        for name in names:
            found = rows[name].get(label)
            if not found:
                cells.append("")
            elif len(found) == 1:
                cells.append(f"{found[0]:.2f}")
            else:
                cells.append(" / ".join(f"{t:.2f}" for t in found) + f", median {statistics.median(found):.2f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a corpus folder, or a tarball of one")
    parser.add_argument("--deps", type=Path, required=True, help="a folder of the dependencies' wheels")
    parser.add_argument("--build", action="append", required=True, metavar="NAME=WHEELS:CORES",
                        help="a build: a name, a folder holding its wheel, the cores it runs on")
    parser.add_argument("--hub", default=HUB, help="the file checked alone and edited")
    parser.add_argument("--work", type=Path, default=Path("/tmp/side-by-side"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    install(args.deps, args.work / "deps")
    rows: dict[str, dict[str, list[float]]] = {}
    errors: list[str] = []

    def build(name: str, wheels: Path, cores: str) -> None:
        try:
            run_build(name, wheels, cores, args.corpus.resolve(), args.work / "deps", args.work, args.hub, rows)
        except Exception as exc:  # reported with the table
            errors.append(f"{name}: {exc}")

    threads = []
    for spec in args.build:
        name, rest = spec.split("=", 1)
        wheels, _, cores = rest.rpartition(":")
        rows[name] = {}
        threads.append(threading.Thread(target=build, args=(name, Path(wheels), cores)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = table(rows) + "".join(f"\nfailed: {error}\n" for error in errors)
    sys.stdout.write(text)
    if args.out:
        args.out.write_text(text)
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
