#!/usr/bin/env python3
"""Recall on real sync fixes: the syncing lines of `benchmarks/mined_fixes/`, default and --strict.

Each folder under `benchmarks/mined_fixes/vllm/` and `benchmarks/mined_fixes/sglang/` is a small
project that reproduces code from before a vLLM, SGLang or TensorRT-LLM pull request that removed
a hidden GPU<->CPU sync. `expected.json` lists the syncing lines, one object per line. This script
checks every case folder as its own project, once in default mode and once with `--strict`, each
run cold in a temporary cache dir, and counts an expected line as found when a finding of any rule
(SL601 included) lies in the statement that starts there (in a compound statement's header).

    python benchmarks/mined_fixes.py                      # this checkout
    python benchmarks/mined_fixes.py --out FILE.md        # also write the table
    python benchmarks/mined_fixes.py --linter "python /tmp/old/run.py check"
    python benchmarks/mined_fixes.py --cases benchmarks/mined_fixes_second   # the second set

These cases were used to guide changes to sync-lint (see mined_fixes/README.md): they are a
development set, not a held-out measure of recall.
"""

from __future__ import annotations

import argparse
import ast
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE / "mined_fixes"
MODES = ("default", "strict")


def run_linter(linter: str, case: Path, strict: bool) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="mined-fixes-") as cache:
        command = shlex.split(linter) + [str(case), "--cache-dir", cache, "--output-format", "json",
                                         "--exit-zero", *(["--strict"] if strict else [])]
        done = subprocess.run(command, cwd=case, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the linter failed on {case} ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def hits(findings: list[dict], case: Path) -> dict[tuple[str, int], set[str]]:
    """(path relative to the case, line) -> the codes of the findings whose range covers that line."""
    covered: dict[tuple[str, int], set[str]] = {}
    for finding in findings:
        path = Path(finding["filename"])
        relative = (path.relative_to(case) if path.is_absolute() else path).as_posix()
        first = finding["location"]["row"]
        last = max(first, (finding.get("end_location") or finding["location"])["row"])
        for row in range(first, last + 1):
            covered.setdefault((relative, row), set()).add(finding["code"])
    return covered


def expected_lines(cases_dir: Path) -> list[dict]:
    """The syncing lines: `expected.json`, or each set's `expected-SET.json` one after another."""
    files = [cases_dir / "expected.json"] if (cases_dir / "expected.json").exists() \
        else sorted(cases_dir.glob("expected-*.json"), key=lambda path: path.name != "expected-vllm.json")
    if not files:
        sys.exit(f"no expected.json or expected-*.json in {cases_dir}")
    return [entry for path in files for entry in json.loads(path.read_text(encoding="utf-8"))]


def statement_lines(path: Path, line: int) -> range:
    """The lines of the statement that starts at `line` (of a compound statement, its header: an
    `if`'s test, not its body), where a finding counts for it: a fix PR names the statement, and the
    linter reports the expression in it that syncs (`torch.cumsum(\n    x[mask], ...)`)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return range(line, line + 1)
    starting = [node for node in ast.walk(tree) if isinstance(node, ast.stmt) and node.lineno == line]
    if not starting:
        return range(line, line + 1)
    node = min(starting, key=lambda n: (n.end_lineno or n.lineno) - n.lineno)
    body = getattr(node, "body", None)
    last = body[0].lineno - 1 if isinstance(body, list) and body and body[0].lineno > line \
        else (line if isinstance(body, list) else node.end_lineno or line)
    return range(line, max(line, last) + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--linter", default=f"{sys.executable} -m sync_lint check")
    parser.add_argument("--out", type=Path, help="write the per-line table here (Markdown)")
    parser.add_argument("--cases", type=Path, default=CASES,
                        help="the folder of case sets and their expected*.json (default: %(default)s)")
    args = parser.parse_args(argv)
    cases_dir: Path = args.cases.resolve()
    expected = expected_lines(cases_dir)
    sets = list(dict.fromkeys(entry["set"] for entry in expected))  # vllm, then sglang
    cases = sorted({(entry["set"], entry["case"]) for entry in expected}
                   | {(folder.parent.name, folder.name) for folder in cases_dir.glob("*/case*") if folder.is_dir()},
                   key=lambda case: (sets.index(case[0]) if case[0] in sets else len(sets), case))
    covered: dict[tuple[str, str, str], dict[tuple[str, int], set[str]]] = {}
    for set_name, case_name in cases:
        case = cases_dir / set_name / case_name
        for mode in MODES:
            covered[set_name, case_name, mode] = hits(run_linter(args.linter, case, mode == "strict"), case)

    rows = ["| set | case | line | what | default | strict |", "|---|---|---|---|---|---|"]
    found = {(set_name, mode): 0 for set_name in sets for mode in MODES}
    total = {set_name: 0 for set_name in sets}
    for entry in expected:
        set_name, case_name = entry["set"], entry["case"]
        total[set_name] += 1
        cells = []
        for mode in MODES:
            span = statement_lines(cases_dir / set_name / case_name / entry["path"], entry["line"])
            codes = set().union(*(covered[set_name, case_name, mode].get((entry["path"], row), set())
                                  for row in span))
            found[set_name, mode] += bool(codes)
            cells.append(", ".join(sorted(codes)) or "**missed**")
        rows.append(f"| {set_name} | {case_name} | {entry['path']}:{entry['line']} | {entry['what']} | "
                    f"{cells[0]} | {cells[1]} |")
    summary = ["| set | default | --strict |", "|---|---|---|"]
    summary += [f"| {set_name} | {found[set_name, 'default']}/{count} | {found[set_name, 'strict']}/{count} |"
                for set_name, count in total.items()]
    text = "\n".join([f"Syncing lines found in {cases_dir.name} ({len(cases)} cases)", "", *summary, "",
                      *rows]) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
