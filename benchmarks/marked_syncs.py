#!/usr/bin/env python3
"""Recall on the syncs a project has marked itself: vLLM's `with gpu_sync_allowed():` blocks.

vLLM 0.33 wraps the host syncs it knows and accepts in `with gpu_sync_allowed():`, the
context manager of its runtime sync checker (`vllm/utils/gpu_sync_debug.py`): each block
is a place where that checker saw, or the authors knew of, a sync. sync-lint stays quiet
inside such blocks by default (`allowed-sync-contexts`), so this script turns that off and
asks, block by block, whether sync-lint reports anything inside it. A block counts as found
when one finding of any rule (SL601 included: the sync may be in a callee) lies on its
lines.

The files holding a block are checked with the whole corpus as their project (the index
covers every file), cold, in a temporary cache. Blocks under `tests/` are left out, and so is
the checker's own module.

    python benchmarks/marked_syncs.py                          # this checkout, default mode
    python benchmarks/marked_syncs.py --strict --out FILE.md   # also write the table
    python benchmarks/marked_syncs.py --linter "python /tmp/old/run.py check"

Not every block must sync on every call (a block may guard a call that syncs only on some
paths), so 100% is not the ceiling this measures against; the misses are listed so that
each can be read.
"""

from __future__ import annotations

import argparse
import ast
import json
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE / "corpus" / "vllm-0.33.0"
CONTEXT = "gpu_sync_allowed"
SKIPPED = ("vllm/utils/gpu_sync_debug.py",)


@dataclass(frozen=True)
class Block:
    path: str  # relative to the corpus
    start: int  # the `with` line
    end: int  # the block's last line


def _names_context(node: ast.expr, name: str) -> bool:
    """Whether a `with` item's expression calls `name` (also `a if c else name()`)."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            spelled = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if spelled == name:
                return True
    return False


def find_blocks(corpus: Path, name: str = CONTEXT) -> list[Block]:
    blocks: list[Block] = []
    for path in sorted(corpus.rglob("*.py")):
        relative = path.relative_to(corpus).as_posix()
        if "/tests/" in f"/{relative}" or relative in SKIPPED:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if name not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.With, ast.AsyncWith)) and any(
                    _names_context(item.context_expr, name) for item in node.items):
                blocks.append(Block(relative, node.lineno, node.end_lineno or node.lineno))
    return blocks


def run_linter(linter: str, corpus: Path, files: list[str], strict: bool, cache: Path) -> list[dict]:
    config = cache / "marked-syncs.toml"
    config.write_text(
        "respect-gitignore = false\n"
        'target-torch-version = "2.11"\n'
        "allowed-sync-contexts = []\n"
        f"project-roots = [{json.dumps(str(corpus))}]\n", encoding="utf-8")
    command = shlex.split(linter) + ["--config", str(config), "--cache-dir", str(cache / "cache"),
                                     "--output-format", "json", "--exit-zero", *(["--strict"] if strict else []),
                                     *files]
    done = subprocess.run(command, cwd=corpus, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"the linter failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def score(blocks: list[Block], findings: list[dict], corpus: Path) -> list[tuple[Block, list[str]]]:
    by_file: dict[str, list[tuple[int, str]]] = {}
    for finding in findings:
        path = Path(finding["filename"])
        relative = (path if not path.is_absolute() else path.relative_to(corpus)).as_posix()
        by_file.setdefault(relative, []).append((finding["location"]["row"], finding["code"]))
    return [(block, sorted({f"{code}@{row}" for row, code in by_file.get(block.path, ())
                            if block.start <= row <= block.end}))
            for block in blocks]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--linter", default=f"{sys.executable} -m sync_lint check")
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--out", type=Path, help="write the per-block table here (Markdown)")
    args = parser.parse_args(argv)
    corpus = args.corpus.resolve()
    blocks = find_blocks(corpus)
    if not blocks:
        sys.exit(f"no `with {CONTEXT}():` block under {corpus}")
    files = sorted({block.path for block in blocks})
    with tempfile.TemporaryDirectory(prefix="marked-syncs-") as temporary:
        findings = run_linter(args.linter, corpus, files, args.strict, Path(temporary))
    scored = score(blocks, findings, corpus)
    found = sum(1 for _block, hits in scored if hits)
    mode = "--strict" if args.strict else "default mode"
    lines = [f"{found} of {len(blocks)} `with {CONTEXT}():` blocks hold a finding ({mode}; "
             f"{len(files)} files, {corpus.name})", "", "| block | found |", "|---|---|"]
    lines += [f"| {block.path}:{block.start}-{block.end} | {', '.join(hits) or '**missed**'} |"
              for block, hits in scored]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
