#!/usr/bin/env python3
"""Speed of this checkout against the frozen 0.1.0 and the parse floors, measured in one run.

    python benchmarks/speed.py                                  # 150 files per corpus, 3 rounds
    python benchmarks/speed.py --files 300 --rounds 5 --base-bin /work/venv-base/bin/sync-lint \\
        --base-config /tmp/base-config.toml --compare-pythonpath /tmp/main-export

The machine this was written on has two cores shared with other jobs, so absolute times
mean little: every number reported is a ratio between commands run *interleaved* in
the same rounds (each round runs every command once, in a shuffled order), and the
median over rounds is kept. Sections of `benchmarks/results/speed.md`:

1. **Phases** (in-process, one core, this checkout): the share of a lint spent in
   `libcst` parsing, in positions (`Positions.range` / `span` / `line_of`, including
   evidence lines) and in everything else, on seeded random subsets of the corpora.
   With `--compare-pythonpath`, the same phases for another build (e.g. an export of
   main) in the same rounds.
2. **Runs** (subprocesses, `-j 2`): 0.1.0 with its benchmark configuration; this
   checkout with `--isolated --target-torch-version 2.11 --no-cache` (the same rules and
   target, each file on its own, as 0.1.0 checks it); optionally the compared build with
   the same flags; and the floors: `ast.parse` and `libcst.parse_module` of the same
   files in two processes.
3. **Start-up**: `--version`, `rules --output-format json` and a one-file check, wall
   time, median of the rounds, for this checkout and 0.1.0; and whether each imports
   libcst (`python -X importtime`).

The corpora (`benchmarks/corpus/`, see `fetch_corpus.py`) are not part of the repository.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
CORPORA = {
    "vllm-0.33.0": HERE / "corpus" / "vllm-0.33.0",
    "transformers-5.23.0": HERE / "corpus" / "transformers-5.23.0",
}


# --- helpers ---------------------------------------------------------------------------------


def subset(root: Path, count: int, seed: int) -> list[str]:
    files = sorted(str(p) for p in root.rglob("*.py") if ".sync-lint-cache" not in p.parts)
    return sorted(random.Random(seed).sample(files, min(count, len(files))))


def cwd_for(env: dict[str, str] | None) -> str:
    """Where a command runs: `python -m` and `-c` put the working folder first on sys.path, so a
    build given by PYTHONPATH runs from its own folder (this checkout's would shadow it otherwise),
    and everything else from a neutral one."""
    if env is not None and env.get("PYTHONPATH"):
        return env["PYTHONPATH"]
    return tempfile.gettempdir()


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
                          cwd=cwd_for(env))
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"failed ({done.returncode}): {' '.join(command[:6])} ...\n{done.stderr[-2000:]}")
    return elapsed


def env_with(pythonpath: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def interleave(commands: dict[str, tuple[list[str], dict[str, str] | None]], rounds: int, seed: int,
               log: list[str]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in commands}
    rng = random.Random(seed)
    for round_no in range(rounds):
        order = list(commands)
        rng.shuffle(order)
        for name in order:
            command, env = commands[name]
            times[name].append(timed(command, env))
        log.append(f"round {round_no + 1}: " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in commands))
        print(log[-1], file=sys.stderr, flush=True)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- 1. phases, in a child process per build ---------------------------------------------------

PHASES_CHILD = r'''
import json, sys, time
import libcst
from pathlib import Path
from sync_lint import api
from sync_lint.engine import positions as positions_module
from sync_lint.engine.lint import lint_source

files = json.loads(sys.argv[1])
plan = api.plan([], isolated=True, target_torch_version="2.11")
clock = time.perf_counter
spent = {"parse": 0.0, "positions": 0.0}
depth = [0]

def timing(bucket, function):
    def wrapper(*args, **kwargs):
        if depth[0]:
            return function(*args, **kwargs)
        depth[0] += 1
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            spent[bucket] += clock() - start
            depth[0] -= 1
    return wrapper

libcst.parse_module = timing("parse", libcst.parse_module)
for name in ("range", "span", "line_of"):
    setattr(positions_module.Positions, name, timing("positions", getattr(positions_module.Positions, name)))
texts = [(f, Path(f).read_text(encoding="utf-8", errors="replace")) for f in files]
total = 0.0
findings = 0
for path, text in texts:
    start = clock()
    result = lint_source(text, path, plan.rules, plan.settings)
    total += clock() - start
    findings += len(result.diagnostics)
print(json.dumps({"total": total, "findings": findings, **spent}))
'''


def phases(files: list[str], pythonpath: str | None) -> dict[str, float]:
    env = env_with(pythonpath)
    done = subprocess.run([sys.executable, "-c", PHASES_CHILD, json.dumps(files)], capture_output=True, text=True,
                          env=env, cwd=cwd_for(env), check=True)
    return json.loads(done.stdout)


# --- 2. floors -----------------------------------------------------------------------------------

FLOOR_CHILD = r'''
import sys, json
from pathlib import Path
files = json.loads(Path(sys.argv[2]).read_text())
if sys.argv[1] == "ast":
    import ast
    parse = ast.parse
else:
    import libcst
    parse = libcst.parse_module
for f in files:
    try:
        parse(Path(f).read_text(encoding="utf-8", errors="replace"))
    except Exception:
        pass
'''

FLOOR_PARENT = r'''
import json, subprocess, sys
from pathlib import Path
files = json.loads(Path(sys.argv[2]).read_text())
halves = [files[0::2], files[1::2]]
import tempfile
children = []
for half in halves:
    handle = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(half, handle)
    handle.close()
    children.append(subprocess.Popen([sys.executable, "-c", sys.argv[3], sys.argv[1], handle.name]))
sys.exit(max(c.wait() for c in children))
'''


def floor_command(kind: str, list_file: str) -> list[str]:
    """`kind` ("ast" or "libcst") parse of the files in two processes (two halves), like `-j 2`."""
    return [sys.executable, "-c", FLOOR_PARENT, kind, list_file, FLOOR_CHILD]


# --- 3. start-up -----------------------------------------------------------------------------------


def imports_libcst(command: list[str], env: dict[str, str] | None) -> bool:
    done = subprocess.run([command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, env=env,
                          cwd=cwd_for(env))
    return any(line.rstrip().endswith(" libcst") for line in done.stderr.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=150, help="files per corpus subset")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phase-rounds", type=int, default=1, help="rounds of the in-process phase timing")
    parser.add_argument("--startup-rounds", type=int, default=5)
    parser.add_argument("--base-bin", default="/work/venv-base/bin/sync-lint", help="the frozen 0.1.0 executable")
    parser.add_argument("--base-config", default="/tmp/base-config.toml")
    parser.add_argument("--compare-pythonpath", default=None,
                        help="a folder holding another build's sync_lint package (with sync_lint/rules) to compare")
    parser.add_argument("--compare-name", default="main")
    parser.add_argument("--corpus", action="append", choices=sorted(CORPORA), help="default: all")
    parser.add_argument("--skip", action="append", default=[], choices=["phases", "runs", "startup"])
    parser.add_argument("--output", default=str(RESULTS / "speed.md"))
    args = parser.parse_args(argv)

    python = sys.executable
    here_env = env_with(str(REPO))
    compare_env = env_with(args.compare_pythonpath) if args.compare_pythonpath else None
    log: list[str] = []
    out: list[str] = ["# Speed: this checkout against 0.1.0 and the parse floors", "",
                      f"Command: `python benchmarks/speed.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
                      f"Machine: {os.cpu_count()} cores (shared with other jobs: read the ratios, not the seconds); "
                      f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]

    subsets = {name: subset(CORPORA[name], args.files, args.seed) for name in (args.corpus or sorted(CORPORA))}

    if "phases" not in args.skip:
        out += ["## 1. Where a lint goes (in-process, one core, each file on its own)", "",
                "| corpus | build | files | findings | lint s | parse % | positions % | rest % |",
                "|---|---|---|---|---|---|---|---|"]
        builds = {"this checkout": str(REPO)}
        if args.compare_pythonpath:
            builds[args.compare_name] = args.compare_pythonpath
        for corpus, files in subsets.items():
            collected: dict[str, list[dict[str, float]]] = {b: [] for b in builds}
            for _ in range(args.phase_rounds):
                for build, path in random.sample(list(builds.items()), len(builds)):
                    collected[build].append(phases(files, path))
            for build, samples in collected.items():
                best = min(samples, key=lambda s: s["total"])  # the least disturbed round
                share = {k: 100 * best[k] / best["total"] for k in ("parse", "positions")}
                out.append(f"| {corpus} | {build} | {len(files)} | {best['findings']} | {best['total']:.2f} | "
                           f"{share['parse']:.1f} | {share['positions']:.2f} | "
                           f"{100 - share['parse'] - share['positions']:.1f} |")
        out += ["", "Each row is the round with the least total time; the shares are of that round's lint time "
                "(parse: `libcst.parse_module`; positions: every `Positions.range`/`span`/`line_of` call, "
                "finding positions, evidence lines and fix offsets).", ""]

    if "runs" not in args.skip:
        out += ["## 2. Runs on the same files, interleaved (`-j 2`)", ""]
        for corpus, files in subsets.items():
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
                json.dump(files, handle)
            flags = ["--output-format", "json", "--exit-zero", "-j", "2"]
            mine = ["--isolated", "--target-torch-version", "2.11", "--no-cache"]
            commands: dict[str, tuple[list[str], dict[str, str] | None]] = {
                "0.1.0": ([args.base_bin, "check", *files, "--config", args.base_config, *flags], env_with(None)),
                "this checkout": ([python, "-m", "sync_lint", "check", *files, *mine, *flags], here_env),
                "ast.parse floor": (floor_command("ast", handle.name), None),
                "libcst floor": (floor_command("libcst", handle.name), None),
            }
            if compare_env is not None:
                commands[args.compare_name] = ([python, "-m", "sync_lint", "check", *files, *mine, *flags],
                                               compare_env)
            log.append(f"{corpus}:")
            times = interleave(commands, args.rounds, args.seed, log)
            base = median(times["0.1.0"])
            floor = median(times["ast.parse floor"])
            out += [f"### {corpus} ({len(files)} files, seed {args.seed}, {args.rounds} rounds)", "",
                    "| command | median s | / 0.1.0 | / ast.parse floor |", "|---|---|---|---|"]
            for name, values in times.items():
                m = median(values)
                out.append(f"| {name} | {m:.2f} | {m / base:.2f} | {m / floor:.1f} |")
            ratios = [a / b for a, b in zip(times["this checkout"], times["0.1.0"])]
            out += ["", f"Per-round ratio this checkout / 0.1.0: {', '.join(f'{r:.2f}' for r in ratios)}.", ""]
            os.unlink(handle.name)

    if "startup" not in args.skip:
        one = next(iter(subsets.values()))[0]
        cases = {
            "--version": ["--version"],
            "rules": ["rules", "--output-format", "json"],
            "check one file": ["check", one, "--isolated", "--target-torch-version", "2.11", "--exit-zero",
                               "--output-format", "json"],
        }
        commands = {}
        for case, arguments in cases.items():
            commands[f"{case} (this checkout)"] = ([python, "-m", "sync_lint", *arguments], here_env)
            if compare_env is not None:
                commands[f"{case} ({args.compare_name})"] = ([python, "-m", "sync_lint", *arguments], compare_env)
            base_arguments = [a for a in arguments if a != "--isolated"]
            if case == "check one file":
                base_arguments += ["--config", args.base_config]
            commands[f"{case} (0.1.0)"] = ([args.base_bin, *base_arguments], env_with(None))
        commands["python -c pass"] = ([python, "-c", "pass"], None)
        log.append("start-up:")
        times = interleave(commands, args.startup_rounds, args.seed, log)
        out += ["## 3. Start-up (wall, median)", "", "| command | median s | imports libcst |", "|---|---|---|"]
        for name, (command, env) in commands.items():
            loads = imports_libcst(command, env) if command[0] == python and "-m" in command else None
            if loads is None and command[0] == args.base_bin:
                loads = imports_libcst([str(Path(args.base_bin).with_name("python")), "-m", "sync_lint", *command[1:]],
                                       env)
            out.append(f"| {name} | {median(times[name]):.3f} | {'' if loads is None else ('yes' if loads else 'no')} |")
        out.append("")

    out += ["## Raw rounds", "", "```", *log, "```", ""]
    Path(args.output).write_text("\n".join(out), encoding="utf-8")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
