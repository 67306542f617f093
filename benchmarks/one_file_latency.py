#!/usr/bin/env python3
"""One-file latency of two builds, interleaved: `check FILE` in a warm project, after an edit and
unchanged.

    python benchmarks/one_file_latency.py --build base=/venv-a/bin/sync-lint --build head=/venv-b/bin/sync-lint \\
        [--corpus vllm-0.33.0] [--file vllm/v1/worker/gpu_input_batch.py] [--rounds 7] [--edit insert] \\
        [--daemon head]

The corpus's Python files are copied to a temporary folder (the edits never touch
`benchmarks/corpus/`), each build gets its own cache folder there, and each is warmed with two
checks first. Then, per round: a comment line is appended to FILE (`--edit insert`: inserted at
its top, which moves every line; `--edit code`: a small function is appended, which changes the
file's summary as most real edits do), each build checks it (the first check after the edit: the
file's summary, facts and result are redone), and each checks it
again (nothing changed: everything comes from the cache). The builds take turns within a round,
so the shared machine's load hits them alike. Prints the medians and every run, in wall seconds,
with whether the builds printed the same findings, and `--version` for each.

Give each build its own installed environment. A tree run from `PYTHONPATH` in an environment that
has an editable install of another checkout loads `sync_lint.rules` from that checkout (the
install maps the package there): where the rules differ, the build's rule catalogue does not match,
and its warm checks import every rule (stop 77 measured a base build's warm check at 0.50 s so,
against 0.23 s before the checkout's rules changed).

`--daemon NAME`: that build checks through a daemon (`NAME-EXECUTABLE daemon start`, before the
warm-up; stopped at the end). The same executable may be given twice, once with `--daemon`: the
other builds run with `SYNC_LINT_NO_DAEMON=1`, and every daemon lives in the run's temporary folder,
so a daemon the user started is never used.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = 'respect-gitignore = false\ntarget-torch-version = "2.11"\n'


def copy_corpus(source: Path, target: Path) -> None:
    """The corpus's Python files under `target`, as a project with the benchmark's configuration."""
    for path in source.rglob("*.py"):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
    (target / "pyproject.toml").write_text("")
    (target / "sync-lint-bench.toml").write_text(CONFIG)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="append", required=True, metavar="NAME=EXECUTABLE")
    parser.add_argument("--corpus", default="vllm-0.33.0")
    parser.add_argument("--file", default="vllm/v1/worker/gpu_input_batch.py")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--edit", choices=("append", "insert", "code", "body"), default="append",
                        help="append a comment line at the end (nothing moves), insert one at the top "
                             "(every line moves: what cited them is redone), append a new function "
                             "(code: the file's summary changes), or insert a statement at the top of "
                             "the body of the function in the middle of the file (body: that function "
                             "changes, a call added, and every line below it moves)")
    parser.add_argument("--daemon", action="append", default=[], metavar="NAME",
                        help="this build checks through a daemon it starts first")
    args = parser.parse_args(argv)
    builds = dict(item.split("=", 1) for item in args.build)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as users run it
    with tempfile.TemporaryDirectory(prefix="one-file-latency-") as folder:
        root = Path(folder) / "corpus"
        copy_corpus(HERE / "corpus" / args.corpus, root)
        daemons = Path(folder) / "daemons"
        daemons.mkdir(mode=0o700)
        envs = {name: dict(env, SYNC_LINT_DAEMON_DIR=str(daemons),
                           **({} if name in args.daemon else {"SYNC_LINT_NO_DAEMON": "1"})) for name in builds}
        for name in args.daemon:
            subprocess.run([builds[name], "daemon", "start"], check=True, env=envs[name])
        try:
            results = _measure(args, builds, envs, root, Path(folder))
        finally:
            for name in args.daemon:
                subprocess.run([builds[name], "daemon", "stop"], env=envs[name])
    _print(args, builds, env, *results)
    return 0


def edit_body(text: str, round_: int) -> str:
    """`text` with `_latency_probe(N)` inserted as the first statement of the function whose `def`
    (on one line) is nearest the middle of the file."""
    lines = text.splitlines(keepends=True)
    defs = [i for i, line in enumerate(lines[:-1]) if re.match(r"\s*(async\s+)?def .*\)( -> .*)?:\s*$", line)
            and len(lines[i + 1]) - len(lines[i + 1].lstrip()) > len(line) - len(line.lstrip())]
    if not defs:
        raise SystemExit("--edit body: no one-line `def` with an indented body in the file")
    at = min(defs, key=lambda i: abs(i - len(lines) // 2))
    indent = lines[at + 1][:len(lines[at + 1]) - len(lines[at + 1].lstrip())]
    # A call of a name the project may define: the summary records it (an unused local, or `print`,
    # would not change the summary, only move lines).
    lines.insert(at + 1, f"{indent}_latency_probe({round_})\n")
    return "".join(lines)


def _measure(args: argparse.Namespace, builds: dict[str, str], envs: dict[str, dict[str, str]], root: Path,
             folder: Path) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, str]]:
    def check(name: str) -> tuple[float, str]:
        command = [builds[name], "check", args.file, "--config", str(root / "sync-lint-bench.toml"),
                   "--exit-zero", "--cache-dir", str(folder / f"cache-{name}")]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=envs[name], cwd=root)
        return time.perf_counter() - start, done.stdout

    for name in builds:
        check(name)
        check(name)
    edited: dict[str, list[float]] = {name: [] for name in builds}
    warm: dict[str, list[float]] = {name: [] for name in builds}
    printed: dict[str, str] = {}
    for round_ in range(args.rounds):
        edited_file = root / args.file
        if args.edit == "append":
            with open(edited_file, "a", encoding="utf-8") as handle:
                handle.write(f"# latency round {round_}\n")
        elif args.edit == "code":
            with open(edited_file, "a", encoding="utf-8") as handle:
                handle.write(f"\n\ndef _latency_round_{round_}():\n    return {round_}\n")
        elif args.edit == "body":
            edited_file.write_text(edit_body(edited_file.read_text(encoding="utf-8"), round_), encoding="utf-8")
        else:
            edited_file.write_text(f"# latency round {round_}\n" + edited_file.read_text(encoding="utf-8"),
                                   encoding="utf-8")
        for name in builds:
            edited[name].append(check(name)[0])
        for name in builds:
            seconds, printed[name] = check(name)
            warm[name].append(seconds)
    return edited, warm, printed


def _print(args: argparse.Namespace, builds: dict[str, str], env: dict[str, str], edited: dict[str, list[float]],
           warm: dict[str, list[float]], printed: dict[str, str]) -> None:
    for label, table in ((f"after an edit ({args.edit})", edited), ("warm, unchanged", warm)):
        for name, times in table.items():
            runs = " ".join(f"{t:.3f}" for t in times)
            print(f"| {label} | {name} | {statistics.median(times):.3f} | {runs} |")
    print("same findings printed:", len(set(printed.values())) == 1)
    for name, executable in builds.items():
        times = []
        for _ in range(5):
            start = time.perf_counter()
            subprocess.run([executable, "--version"], capture_output=True, env=env)
            times.append(time.perf_counter() - start)
        print(f"| `--version` | {name} | {statistics.median(times):.3f} | |")


if __name__ == "__main__":
    sys.exit(main())
