#!/usr/bin/env python3
"""Recall on real sync fixes: the syncing lines of `benchmarks/mined_fixes/`, default and --strict.

Each folder under `benchmarks/mined_fixes/vllm/` and `benchmarks/mined_fixes/sglang/` is a small
project that reproduces code from before a vLLM, SGLang or TensorRT-LLM pull request that removed
a hidden GPU<->CPU sync. `expected.json` lists the syncing lines, one object per line. This script
checks every case folder as its own project, once in default mode and once with `--strict`, each
run cold in a temporary cache dir, and counts an expected line as found when a finding of any rule
(SL601 included) starts on that line or its range covers it.

    python benchmarks/mined_fixes.py                      # this checkout
    python benchmarks/mined_fixes.py --out FILE.md        # also write the table
    python benchmarks/mined_fixes.py --linter "python /tmp/old/run.py check"

These cases were used to guide changes to sync-lint (see mined_fixes/README.md): they are a
development set, not a held-out measure of recall.
"""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--linter", default=f"{sys.executable} -m sync_lint check")
    parser.add_argument("--out", type=Path, help="write the per-line table here (Markdown)")
    args = parser.parse_args(argv)
    expected: list[dict] = json.loads((CASES / "expected.json").read_text(encoding="utf-8"))
    sets = list(dict.fromkeys(entry["set"] for entry in expected))  # vllm, then sglang
    cases = sorted({(entry["set"], entry["case"]) for entry in expected}
                   | {(folder.parent.name, folder.name) for folder in CASES.glob("*/case*") if folder.is_dir()},
                   key=lambda case: (sets.index(case[0]) if case[0] in sets else len(sets), case))
    covered: dict[tuple[str, str, str], dict[tuple[str, int], set[str]]] = {}
    for set_name, case_name in cases:
        case = CASES / set_name / case_name
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
            codes = covered[set_name, case_name, mode].get((entry["path"], entry["line"]), set())
            found[set_name, mode] += bool(codes)
            cells.append(", ".join(sorted(codes)) or "**missed**")
        rows.append(f"| {set_name} | {case_name} | {entry['path']}:{entry['line']} | {entry['what']} | "
                    f"{cells[0]} | {cells[1]} |")
    summary = ["| set | default | --strict |", "|---|---|---|"]
    summary += [f"| {set_name} | {found[set_name, 'default']}/{count} | {found[set_name, 'strict']}/{count} |"
                for set_name, count in total.items()]
    text = "\n".join([f"Syncing lines found in benchmarks/mined_fixes ({len(cases)} cases)", "", *summary, "",
                      *rows]) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
