#!/usr/bin/env python3
"""What the project index costs: cold, warm and one-file runs against sync-lint 0.1.0.

0.1.0 analysed each file alone; the current version first summarises every file of the
project and answers cross-file questions from a cache (`.sync-lint-cache/`). This script
measures, in one run and interleaved so that the shared machine's load hits both alike:

- cold: 0.1.0 on the whole corpus / this version with an empty cache directory
- warm: this version again, nothing changed (every file's result comes from the cache)
- one file: `check FILE` on a hub module, 0.1.0 / this version with a warm cache
- after an edit of that file that only touches a comment (its summary is unchanged) and
  after one that adds a function (its summary changes; the answers that read it are
  re-solved): `check FILE`, then the whole corpus again

Times are wall seconds and CPU seconds (user+sys of the child process tree, from
`resource.getrusage(RUSAGE_CHILDREN)`); on a loaded machine CPU seconds are the steadier
figure. The corpus's Python files are copied to a temporary folder first, so the edits
never touch benchmarks/corpus/.

    python benchmarks/project_speed.py vllm-0.33.0 --base /work/venv-base/bin/sync-lint \\
        --rounds 2 --out benchmarks/results/project-speed.md
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPORA = HERE / "corpus"
# A module that many others import: the worst case for per-module invalidation.
HUB_FILES = {
    "vllm-0.33.0": "vllm/v1/attention/backends/utils.py",
    "transformers-5.23.0": "transformers/modeling_utils.py",
}


def _copy_python_tree(src: Path, dst: Path) -> None:
    for path in src.rglob("*.py"):
        if ".sync-lint-cache" in path.parts:
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _config(root: Path, with_project: bool) -> Path:
    lines = ['respect-gitignore = false', 'target-torch-version = "2.11"']
    if with_project:
        lines.append(f'project-roots = ["{root.name}"]')
    path = root.parent / ("new.toml" if with_project else "base.toml")
    path.write_text("\n".join(lines) + "\n")
    return path


def _timed(argv: list[str], cwd: Path, output: Path | None = None) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(output or os.devnull, "w") as sink:
        proc = subprocess.run(argv, cwd=cwd, stdout=sink, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", choices=sorted(HUB_FILES))
    parser.add_argument("--base", required=True, help="the sync-lint 0.1.0 executable")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="append a Markdown table here")
    parser.add_argument("--save-json", type=Path, help="keep the cold runs' JSON findings in this folder")
    parser.add_argument("--subset", help="check only this folder of the corpus (the project is still all of it), "
                                         "e.g. vllm/v1 when the whole corpus takes too long")
    args = parser.parse_args()
    if args.save_json:
        args.save_json.mkdir(parents=True, exist_ok=True)

    work = Path(tempfile.mkdtemp(prefix="sync-lint-speed-"))
    try:
        root = work / "corpus"
        _copy_python_tree(CORPORA / args.corpus, root)
        hub = root / HUB_FILES[args.corpus]
        base_cfg, new_cfg = _config(root, False), _config(root, True)
        base = [args.base, "check", "--output-format", "json", "--exit-zero", "-j", str(args.jobs)]
        new = [sys.executable, "-m", "sync_lint", "check", "--output-format", "json", "--exit-zero",
               "-j", str(args.jobs)]
        original = hub.read_text()
        target = root / args.subset if args.subset else root
        scope = f"`{args.subset}`" if args.subset else "whole corpus"
        rows: dict[str, list[tuple[float, float]]] = {}

        def record(name: str, argv: list[str], save_as: str | None = None) -> None:
            output = args.save_json / f"{args.corpus}.{save_as}.json" if args.save_json and save_as else None
            rows.setdefault(name, []).append(_timed(argv, work, output))
            wall, cpu = rows[name][-1]
            print(f"{name:<40} {wall:8.2f} s wall {cpu:8.2f} s CPU", flush=True)

        for round_no in range(args.rounds):
            cache = work / f"cache-{round_no}"
            hub.write_text(original)
            record(f"0.1.0 cold, {scope}", [*base, "--config", str(base_cfg), str(target)], "base")
            record(f"new cold, {scope}", [*new, "--config", str(new_cfg), "--cache-dir", str(cache), str(target)],
                   "new")
            record(f"new warm, {scope}", [*new, "--config", str(new_cfg), "--cache-dir", str(cache), str(target)])
            record("0.1.0 one file", [*base, "--config", str(base_cfg), str(hub)])
            record("new one file, warm", [*new, "--config", str(new_cfg), "--cache-dir", str(cache), str(hub)])
            hub.write_text(original + "\n# an edit that changes no summary\n")
            record("new one file, after a comment edit",
                   [*new, "--config", str(new_cfg), "--cache-dir", str(cache), str(hub)])
            hub.write_text(original + "\n\ndef _sync_lint_speed_probe(x):\n    return x\n")
            record("new one file, after a new function",
                   [*new, "--config", str(new_cfg), "--cache-dir", str(cache), str(hub)])
            record(f"new {scope}, after a new function",
                   [*new, "--config", str(new_cfg), "--cache-dir", str(cache), str(target)])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def base_cpu(name: str) -> float:
        ref = "0.1.0 one file" if "one file" in name else next(n for n in rows if n.startswith("0.1.0 cold"))
        return statistics.median(cpu for _, cpu in rows[ref])

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [f"\n### {args.corpus}: {args.rounds} round(s), -j {args.jobs}, {cores} cores "
             f"(load average at the end {os.getloadavg()[0]:.1f})\n",
             "| run | wall s (median) | CPU s (median) | CPU vs 0.1.0 (same scope) |", "|---|---|---|---|"]
    for name, values in rows.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        lines.append(f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / base_cpu(name):.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with args.out.open("a") as out:
            out.write(text)


if __name__ == "__main__":
    main()
