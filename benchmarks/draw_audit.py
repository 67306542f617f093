#!/usr/bin/env python3
"""Draw a seeded random sample of findings for a precision audit, with what a reader needs.

    python benchmarks/draw_audit.py --seed 20261130 --per-file 30 --out sample.md \\
        vllm.default.json transformers.default.json

Each input is a `--output-format json` report. From each, `--per-file` findings are drawn
(`random.Random(seed)`, in the report's order), and written with their rule, location,
confidence (`high`: the device is proven; `convention`: it rests on a naming convention the
repository shows), evidence steps, and the lines around the finding, for a verdict column
filled in by hand: **real** (a host sync happens), **intended** (real, and the code clearly
means it), **false** (no sync), **?** (cannot tell), each with a reason.

Paths are rewritten with `--map OLD=NEW` (a report made on another machine).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def _context(path: Path, row: int, around: int = 3) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(file not found)"
    low, high = max(1, row - around), min(len(lines), row + around)
    return "\n".join(f"{'>' if n == row else ' '}{n:5d}  {lines[n - 1]}" for n in range(low, high + 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--per-file", type=int, default=30)
    parser.add_argument("--map", action="append", default=[], metavar="OLD=NEW")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    mapping = [tuple(item.split("=", 1)) for item in args.map]

    out = [f"# Audit sample (seed {args.seed}, {args.per_file} per report)\n"]
    number = 0
    for report in args.reports:
        findings = [f for f in json.loads(report.read_text()) if f["code"] not in ("SL000", "SL900")]
        drawn = random.Random(args.seed).sample(findings, min(args.per_file, len(findings)))
        out.append(f"## {report.name}: {len(drawn)} of {len(findings)} findings\n")
        for item in drawn:
            number += 1
            filename = item["filename"]
            for old, new in mapping:
                filename = filename.replace(old, new)
            row = item["location"]["row"]
            out.append(f"### {number}. {item['code']} `{filename}:{row}` (confidence: {item.get('confidence')})\n")
            out.append(f"{item['message']}\n")
            steps = item.get("evidence_steps") or []
            if steps:
                out.append("Evidence:\n")
                for step in steps:
                    where = step["filename"]
                    for old, new in mapping:
                        where = where.replace(old, new)
                    out.append(f"- {step['message']} ({where}:{step['row']})" if step.get("row") else
                               f"- {step['message']} ({where})")
                out.append("")
            out.append("```\n" + _context(Path(filename), row) + "\n```\n")
            out.append("Verdict: \nReason: \n")
    args.out.write_text("\n".join(out))
    print(f"wrote {number} findings to {args.out}")


if __name__ == "__main__":
    main()
