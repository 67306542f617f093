#!/usr/bin/env python3
"""Recall and precision on files of a serving engine read line by line for host syncs.

    python benchmarks/hand_read.py [--set NAME] [--linter CMD] [--strict] [--out FILE]

Each set is a `sites.json` listing the files read, the host syncs the readers found in them
(`sites`), syncs the project itself marks as accepted (`marked`, inside vLLM's
`with gpu_sync_allowed():`; default mode leaves those out by design, so they are listed
apart and not counted), and the lines they judged to make no host wait (`not_syncs`):

- `sglang-second` (`sglang_second_read/sites.json`): six SGLang 0.5.23 hot-path files, read
  after the shared five-file benchmark (`shared/benchmarks/sglang-hotpath`) had guided the
  analysis; a development set since.
- `vllm-third` (`vllm_third_read/sites.json`): ten files of vLLM 0.33's V1 engine that no
  earlier reading or change of the analysis had looked at, read blind (held out when read).
- `sglang-fourth` (`sglang_fourth_read/sites.json`): nine SGLang 0.5.23 files (the sampler, the
  speculative-decoding helpers and workers, two MLA attention backends), read blind the same way.

The linter checks the files with the whole unpacked wheel as its project, cold, in a
temporary cache. A site counts as found when a finding's span covers its line. Every
finding in the files is listed, marked as a site, a judged no-sync, or unread (a finding on
a line nobody judged: read it before counting it either way).

The wheel is found as `fix_corpus.py` finds it (`benchmarks/corpus/<name>-<version>` or
`~/.cache/sync-lint-bench/<name>-<version>`), and fetched when missing.
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
sys.path.insert(0, str(HERE))

import fix_corpus  # noqa: E402  (a sibling script: where the corpora lie)

# set name -> (corpus, its sites file)
SETS = {"sglang-second": ("sglang", HERE / "sglang_second_read" / "sites.json"),
        "vllm-third": ("vllm", HERE / "vllm_third_read" / "sites.json"),
        "sglang-fourth": ("sglang", HERE / "sglang_fourth_read" / "sites.json")}


def run_linter(linter: str, corpus: Path, files: list[str], strict: bool) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "hand-read.toml"
        config.write_text("respect-gitignore = false\n" + ("strict = true\n" if strict else ""), encoding="utf-8")
        command = shlex.split(linter) + ["--config", str(config), "--cache-dir", str(Path(folder) / "cache"),
                                         "--output-format", "json", "--exit-zero", *files]
        done = subprocess.run(command, cwd=corpus, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"linter failed ({done.returncode}): {done.stderr[-800:]}")
    return json.loads(done.stdout)


def relative(filename: str, corpus: Path) -> str:
    path = Path(filename)
    return (path.resolve().relative_to(corpus) if path.is_absolute() else path).as_posix()


def score(doc: dict, findings: list[dict], corpus: Path) -> tuple[list[tuple[dict, list[str]]], list[tuple[dict, str]]]:
    """Each site with the codes of the findings covering it; each finding with what its line is."""
    spans: dict[str, list[tuple[int, int, str]]] = {}
    for d in findings:
        spans.setdefault(relative(d["filename"], corpus), []).append(
            (d["location"]["row"], d["end_location"]["row"], d["code"]))
    sites = [(site, sorted({code for start, end, code in spans.get(site["file"], []) if start <= site["line"] <= end}))
             for site in doc["sites"]]
    judged_sync = {(s["file"], s["line"]) for s in [*doc["sites"], *doc.get("marked", [])]}
    judged_not = {(s["file"], row) for s in doc["not_syncs"] for row in range(s["line"], s.get("end_line", s["line"]) + 1)}
    verdicts = []
    for d in findings:
        name = relative(d["filename"], corpus)
        rows = range(d["location"]["row"], d["end_location"]["row"] + 1)
        if any((name, row) in judged_sync for row in rows):
            verdicts.append((d, "site"))
        elif any((name, row) in judged_not for row in rows):
            verdicts.append((d, "no sync"))
        else:
            verdicts.append((d, "unread"))
    return sites, verdicts


def render(sites: list[tuple[dict, list[str]]], verdicts: list[tuple[dict, str]], corpus: Path, mode: str) -> str:
    found = sum(1 for _, codes in sites if codes)
    counts = {kind: sum(1 for _, v in verdicts if v == kind) for kind in ("site", "no sync", "unread")}
    lines = [f"{mode}: {found} of {len(sites)} hand-read syncs found; {len(verdicts)} findings in the files "
             f"({counts['site']} on a site, {counts['no sync']} on a line judged no sync, {counts['unread']} unread)", "",
             "| site | found | code |", "|---|---|---|"]
    for site, codes in sites:
        lines.append(f"| {site['file']}:{site['line']} | {', '.join(codes) or '**missed**'} | `{site['code'][:60]}` |")
    lines += ["", "| finding | line is |", "|---|---|"]
    for d, verdict in verdicts:
        lines.append(f"| {relative(d['filename'], corpus)}:{d['location']['row']} {d['code']} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=sorted(SETS), default="sglang-second")
    parser.add_argument("--linter", default=f"{sys.executable} -m sync_lint check")
    parser.add_argument("--strict", action="store_true")
    parser.add_argument("--corpus-dir", type=Path, default=HERE / "corpus")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    name, sites_file = SETS[args.set]
    doc = json.loads(sites_file.read_text(encoding="utf-8"))
    corpus = fix_corpus.locate(name, args.corpus_dir, download=True).resolve()
    findings = run_linter(args.linter, corpus, doc["files"], args.strict)
    sites, verdicts = score(doc, findings, corpus)
    text = render(sites, verdicts, corpus, "--strict" if args.strict else "default mode")
    print(text, end="")
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
