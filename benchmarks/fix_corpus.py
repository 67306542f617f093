#!/usr/bin/env python3
"""Fix the real-world corpora with every fix, and prove nothing was damaged.

For each corpus (vllm, transformers, sglang) this copies the sources to a temporary
directory (the corpus itself is never written), gives a deterministic subset of the
copies other file shapes (CRLF newlines, a UTF-8 BOM, mode bits 0755 and 0640), and
runs, each as a fresh subprocess,

    python -m sync_lint check <copy> --config benchmarks/corpus-config.toml \\
        --cache-dir <temporary folder> --no-progress --jobs 2 --output-format json --exit-zero
    ... the same with --fix --unsafe-fixes --show-fixes      (the fix run)
    ... the same again                                         (the second fix run)

The runs check the copy as a project (its project index, as a user's run would), with
the benchmark configuration (no `.gitignore`, torch 2.11) and a cache in a temporary
folder outside the copy, shared by the three runs and deleted afterwards (`--isolated`
checks each file on its own instead). The corpora are found as the other benchmark
scripts find them: `benchmarks/corpus/<name>-<version>/` as `fetch_corpus.py` unpacks
it (a missing one is fetched the same way, from its pinned wheel), or
`~/.cache/sync-lint-bench/<name>-<version>/` (sglang, unpacked from its wheel by
hand), or `--corpus-dir DIR` / `--corpus NAME=PATH`. Then it compares the trees
before and after and reports, per corpus:

- crashes: a traceback, an exit status other than 0-2, an `internal error` of the
  engine or the fixer;
- files changed; files changed without a fixable finding in the check run;
- files that compiled before and do not after (`compile()` of the bytes);
- non-local edits: a changed line outside every fix edit's rows, other than an
  inserted `import` line;
- idempotence: files the second fix run changed;
- preservation: mode bits, BOM, coding cookie, newline style (no newline kind
  that was not in the file), decoding with the file's encoding; temporary files
  left behind;
- fixes applied per rule, and the fixes refused or rolled back (with reasons).

`--concurrent` also fixes a fresh copy with two runs at once: every file must end
as its original or as the single run's result.

    python benchmarks/fix_corpus.py                          # all three corpora
    python benchmarks/fix_corpus.py sglang --concurrent
    python benchmarks/fix_corpus.py --corpus-dir ../main/benchmarks/corpus vllm transformers
    python benchmarks/fix_corpus.py --corpus sglang=/path/to/sglang-0.5.23

Writes `benchmarks/results/fix_corpus.json` and `fix_corpus.md` (corpora not run
this time keep their previous entry). Every defect figure must be zero.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(HERE))

import fetch_corpus  # noqa: E402
from fix_properties import compiles, encoding_of, non_local_lines, shape_problems  # noqa: E402

RESULTS_DIR = HERE / "results"
CONFIG = HERE / "corpus-config.toml"
TARGET_TORCH = "2.11"
# The pinned versions: fetch_corpus.py's, and sglang's (not in run_corpus.py's timings).
CORPORA: dict[str, str] = {**fetch_corpus.CORPORA, "sglang": "0.5.23"}
HAND_UNPACKED = Path.home() / ".cache" / "sync-lint-bench"
SKIP_DIRS = {".sync-lint-cache", "__pycache__", ".git"}
SOURCE_SUFFIXES = (".py", ".pyi")
BOM = b"\xef\xbb\xbf"
COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
ERROR_LINE = re.compile(r"^sync-lint: error: (?P<path>.*?): (?P<message>.*?)(?: \[rule (?P<rule>[^\]]+)\])?$")
FIXED_LINE = re.compile(r"^- (?P<path>.+): (?P<count>\d+) × (?P<code>SL\d+)")
DEFECTS = ("crashes", "changed_without_fixable_finding", "not_compiling_after", "non_local_edits",
           "changed_by_second_run", "preservation_violations", "temporary_files_left", "concurrent_corrupted")


# --- the corpora ---------------------------------------------------------------------------------
def locate(name: str, corpus_dir: Path, download: bool) -> Path:
    """Where corpus `name` lies: unpacked by fetch_corpus.py (fetched now if missing) or by hand."""
    version = CORPORA[name]
    candidates = [corpus_dir / f"{name}-{version}", HAND_UNPACKED / f"{name}-{version}"]
    for candidate in candidates:
        if (candidate / fetch_corpus.MARKER).is_file():
            return candidate
    if not download:
        raise SystemExit(f"{name} {version}: not unpacked at {' or '.join(map(str, candidates))} "
                         f"(run benchmarks/fetch_corpus.py, drop --no-download, or give --corpus {name}=PATH)")
    # The same download and unpacking as fetch_corpus.py; results/corpus.json is left to it.
    wheel = fetch_corpus.download_wheel(name, version)
    dest = corpus_dir / f"{name}-{version}"
    print(f"fix_corpus: unpacking {wheel.name} -> {dest}", file=sys.stderr)
    fetch_corpus.unpack(wheel, dest)
    (dest / fetch_corpus.MARKER).write_text(f"{wheel.name}\n", encoding="utf-8")
    return dest


# --- the trees ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileState:
    data: bytes
    mode: int


def copy_corpus(source: Path, target: Path) -> None:
    shutil.copytree(source, target, ignore=lambda _d, names: [n for n in names if n in SKIP_DIRS or n == ".complete"])


def apply_variants(tree: Path) -> dict[str, list[str]]:
    """Give a deterministic subset of the sources other shapes; {relative path: [variants]}."""
    variants: dict[str, list[str]] = {}
    for index, path in enumerate(sorted(p for p in tree.rglob("*") if p.suffix in SOURCE_SUFFIXES)):
        data = path.read_bytes()
        applied = []
        if index % 10 == 3 and b"\r" not in data:
            data = data.replace(b"\n", b"\r\n")
            applied.append("crlf")
        if index % 13 == 5 and not data.startswith(BOM) and _utf8_without_cookie(data):
            data = BOM + data
            applied.append("bom")
        path.write_bytes(data)
        if index % 7 == 1:
            path.chmod(0o755)
            applied.append("mode 0755")
        elif index % 11 == 2:
            path.chmod(0o640)
            applied.append("mode 0640")
        if applied:
            variants[str(path.relative_to(tree))] = applied
    return variants


def _utf8_without_cookie(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(COOKIE.match(line) for line in data.splitlines()[:2])


def snapshot(tree: Path) -> dict[str, FileState]:
    return {str(p.relative_to(tree)): FileState(p.read_bytes(), p.stat().st_mode & 0o7777)
            for p in tree.rglob("*") if p.is_file()}


# --- the runs -------------------------------------------------------------------------------------
@dataclass
class Run:
    command: list[str]
    returncode: int
    wall_s: float
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Options:
    jobs: int
    isolated: bool
    cache_dir: Path  # outside the tree, so that the tree's snapshots see only the sources
    second_fix_all: bool = True  # False: the second fix run checks only the files the first one changed


def command(tree: Path, options: Options, *, fix: bool, files: list[str] | None = None) -> list[str]:
    targets = [str(tree / f) for f in files] if files is not None else [str(tree)]
    cmd = [sys.executable, "-m", "sync_lint", "check", *targets, "--config", str(CONFIG)]
    if options.isolated:  # no configuration files: the target torch comes as a flag
        cmd += ["--isolated", "--target-torch-version", TARGET_TORCH]
    cmd += ["--cache-dir", str(options.cache_dir), "--no-progress", "--jobs", str(options.jobs),
            "--output-format", "json", "--exit-zero"]
    return cmd + (["--fix", "--unsafe-fixes", "--show-fixes"] if fix else [])


def run(cmd: list[str]) -> Run:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    return Run(cmd, proc.returncode, round(time.perf_counter() - start, 2), proc.stdout, proc.stderr)


def run_concurrently(cmds: list[list[str]]) -> list[Run]:
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO) for c in cmds]
    outputs = [p.communicate() for p in procs]
    wall = round(time.perf_counter() - start, 2)
    return [Run(c, p.returncode, wall, out, err) for c, p, (out, err) in zip(cmds, procs, outputs)]


def relative(path: str, tree: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(tree.resolve()))
    except ValueError:
        return path


def file_errors(stderr: str, tree: Path) -> list[dict]:
    out = []
    for line in stderr.splitlines():
        match = ERROR_LINE.match(line)
        if match:
            out.append({"path": relative(match["path"], tree), "message": match["message"], "rule": match["rule"]})
    return out


def error_kind(message: str) -> str:
    if message.startswith(("internal error:", "internal error while fixing:")):
        return "crash"
    if message.startswith("internal error in the"):
        return "fix rolled back (introduced a finding or malformed)"
    if "self-check" in message:
        return "fix refused by the self-check"
    if "does not parse" in message:
        return "fix refused: output does not parse"
    if "Python's own parser" in message:
        return "not fixed: Python's parser rejects the file"
    if "changed on disk" in message:
        return "skipped: changed on disk"
    return "other: " + re.sub(r"\d+", "N", message)[:80]


def crashed(result: Run) -> bool:
    return "Traceback (most recent call last)" in result.stderr or result.returncode not in (0, 1, 2)


# --- the comparisons ------------------------------------------------------------------------------
def fixable_rows(findings: list[dict], tree: Path) -> dict[str, list[tuple[int, int]]]:
    """{file: [(first row, last row) of every fix edit]} from the check run's JSON."""
    rows: dict[str, list[tuple[int, int]]] = {}
    for finding in findings:
        fix = finding.get("fix")
        if not fix or not fix.get("edits"):
            continue
        spans = rows.setdefault(relative(finding["filename"], tree), [])
        for edit in fix["edits"]:
            spans.append((edit["location"]["row"], edit["end_location"]["row"]))
    return rows


def preservation_problems(before: FileState, after: FileState) -> list[str]:
    problems = shape_problems(before.data, after.data)
    if before.mode != after.mode:
        problems.append(f"mode {before.mode:o} -> {after.mode:o}")
    return problems


# --- one corpus -----------------------------------------------------------------------------------
@dataclass
class CorpusReport:
    name: str
    source: str
    files: int = 0
    variants: Counter = field(default_factory=Counter)
    runs: dict[str, dict] = field(default_factory=dict)
    findings: int = 0
    fixable_findings: int = 0
    files_with_fixable_findings: int = 0
    files_changed: int = 0
    fixes_applied: Counter = field(default_factory=Counter)
    findings_after: int = 0
    second_fix_files: str = "all"
    errors: Counter = field(default_factory=Counter)
    error_examples: dict[str, list[str]] = field(default_factory=dict)
    defects: dict[str, list[str]] = field(default_factory=lambda: {d: [] for d in DEFECTS})
    concurrent: dict | None = None

    def defect(self, kind: str, what: str) -> None:
        self.defects[kind].append(what)


def fix_corpus(name: str, source: Path, jobs: int, isolated: bool, variants: bool, concurrent: bool,
               second_fix_all: bool = True) -> CorpusReport:
    report = CorpusReport(name, str(source))
    with tempfile.TemporaryDirectory(prefix=f"sync-lint-fix-{name}-") as tmp:
        tree = Path(tmp) / name
        options = Options(jobs, isolated, Path(tmp) / "cache", second_fix_all)
        copy_corpus(source, tree)
        shapes = apply_variants(tree) if variants else {}
        report.variants = Counter(v for applied in shapes.values() for v in applied)
        before = snapshot(tree)
        report.files = sum(1 for p in before if p.endswith(SOURCE_SUFFIXES))

        check = run(command(tree, options, fix=False))
        findings = json.loads(check.stdout or "[]")
        rows = fixable_rows(findings, tree)
        report.findings = len(findings)
        report.fixable_findings = sum(1 for f in findings if f.get("fix") and f["fix"].get("edits"))
        report.files_with_fixable_findings = len(rows)

        first = run(command(tree, options, fix=True))
        after = snapshot(tree)
        changed = sorted(p for p in before if p in after and after[p].data != before[p].data)
        if options.second_fix_all:
            second = run(command(tree, options, fix=True))
        elif changed:  # --isolated: each file is checked on its own, so an unchanged file stays unchanged
            second = run(command(tree, options, fix=True, files=changed))
        else:
            second = Run([], 0, 0.0, "[]", "")
        report.second_fix_files = "all" if options.second_fix_all else f"the {len(changed)} changed"
        again = snapshot(tree)
        for label, result in (("check", check), ("fix", first), ("second fix", second)):
            report.runs[label] = {"wall_s": result.wall_s, "exit": result.returncode}
            if crashed(result):
                report.defect("crashes", f"{label} run: exit {result.returncode}, {result.stderr[-300:]!r}")
        report.findings_after = len(json.loads(first.stdout or "[]"))
        for line in first.stderr.splitlines():
            match = FIXED_LINE.match(line)
            if match:
                report.fixes_applied[match["code"]] += int(match["count"])
        for error in file_errors(first.stderr, tree):
            kind = error_kind(error["message"])
            report.errors[kind] += 1
            report.error_examples.setdefault(kind, [])
            if len(report.error_examples[kind]) < 5:
                report.error_examples[kind].append(f"{error['path']}: {error['message']}")
            if kind == "crash":
                report.defect("crashes", f"{error['path']}: {error['message']}")
        compare(report, before, after, rows)
        for path in sorted(set(after) | set(again)):
            if after.get(path) != again.get(path):
                report.defect("changed_by_second_run", path)
        if concurrent:
            report.concurrent = run_concurrent(report, source, name, jobs, isolated, variants, after)
    return report


def compare(report: CorpusReport, before: dict[str, FileState], after: dict[str, FileState],
            rows: dict[str, list[tuple[int, int]]]) -> None:
    for path in sorted(set(after) - set(before)):
        report.defect("temporary_files_left", path)
    for path in sorted(before):
        old, new = before[path], after.get(path)
        if new is None:
            report.defect("preservation_violations", f"{path}: file removed")
            continue
        if new.data == old.data:
            if new.mode != old.mode:
                report.defect("preservation_violations", f"{path}: mode changed on an unchanged file")
            continue
        report.files_changed += 1
        if path not in rows:
            report.defect("changed_without_fixable_finding", path)
        if compiles(old.data) and not compiles(new.data):
            report.defect("not_compiling_after", path)
        encoding = encoding_of(old.data)
        bad = non_local_lines(old.data.decode(encoding, errors="replace"), new.data.decode(encoding, errors="replace"),
                              rows.get(path, []))
        if bad:
            report.defect("non_local_edits", f"{path}: lines {bad[:5]}")
        for problem in preservation_problems(old, new):
            report.defect("preservation_violations", f"{path}: {problem}")


def run_concurrent(report: CorpusReport, source: Path, name: str, jobs: int, isolated: bool, variants: bool,
                   fixed: dict[str, FileState]) -> dict:
    """Two fix runs at once on a fresh copy: every file ends as its original or as the single run left it."""
    with tempfile.TemporaryDirectory(prefix=f"sync-lint-concurrent-{name}-") as tmp:
        tree = Path(tmp) / name
        options = Options(jobs, isolated, Path(tmp) / "cache")  # one cache, written by both runs
        copy_corpus(source, tree)
        if variants:
            apply_variants(tree)
        before = snapshot(tree)
        runs = run_concurrently([command(tree, options, fix=True), command(tree, options, fix=True)])
        after = snapshot(tree)
        for result in runs:
            if crashed(result):
                report.defect("crashes", f"concurrent run: exit {result.returncode}, {result.stderr[-300:]!r}")
        skipped = [sum(1 for e in file_errors(r.stderr, tree) if "changed on disk" in e["message"]) for r in runs]
        ended: Counter = Counter()
        for path, state in after.items():
            if path not in before:
                report.defect("temporary_files_left", f"concurrent: {path}")
            elif state.data == before[path].data:
                ended["original"] += 1
            elif state.data == fixed[path].data:
                ended["fixed"] += 1
            else:
                ended["corrupted"] += 1
                report.defect("concurrent_corrupted", path)
        return {"wall_s": runs[0].wall_s, "skipped_changed_on_disk": skipped, "files_ended": dict(ended),
                "fixed_by_single_run": sum(1 for p in before if fixed.get(p) and fixed[p].data != before[p].data)}


# --- the results ----------------------------------------------------------------------------------
def sync_lint_commit() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "sync_lint", "rules"],
                           capture_output=True, text=True).stdout.strip()
    return proc.stdout.strip() + (" (with uncommitted changes)" if dirty else "")


def as_json(report: CorpusReport) -> dict:
    data = {k: v for k, v in report.__dict__.items() if k not in ("defects",)}
    data["fixes_applied"] = dict(sorted(report.fixes_applied.items()))
    data["errors"] = dict(report.errors)
    data["variants"] = dict(report.variants)
    data["defect_counts"] = {k: len(v) for k, v in report.defects.items()}
    data["defects"] = {k: v[:50] for k, v in report.defects.items()}
    return data


def render_markdown(meta: dict, corpora: dict[str, dict]) -> str:
    names = list(corpora)
    lines = [
        "# Fixing the corpora: `check --fix --unsafe-fixes`, then a second fix",
        "",
        "Written by `benchmarks/fix_corpus.py` (the machine of each run is in the table); each corpus was fixed in a temporary copy "
        "with these commands (the check run is the same without the fix flags):",
        "",
        "```sh",
        *[f"# {n}: {corpora[n].get('invocation', 'python benchmarks/fix_corpus.py')}\n{corpora[n].get('command', meta['command'])}"
          for n in names],
        "```",
        "",
        "| | " + " | ".join(f"{n} {Path(corpora[n]['source']).name}" for n in names) + " |",
        "|---|" + "---:|" * len(names),
    ]

    def row(label: str, values: list[object]) -> None:
        lines.append(f"| {label} | " + " | ".join(str(v) for v in values) + " |")

    row("sync-lint commit", [f"`{corpora[n]['commit']}`" for n in names])
    row("date", [corpora[n]["date"] for n in names])
    row("machine", [f"Python {corpora[n].get('python', meta['python'])}, {corpora[n].get('cores', meta['cores'])} cores"
                    for n in names])
    row("source files", [corpora[n]["files"] for n in names])
    row("files given CRLF / BOM / mode 0755 / 0640", [
        " / ".join(str(corpora[n]["variants"].get(k, 0)) for k in ("crlf", "bom", "mode 0755", "mode 0640"))
        for n in names])
    row("findings (check run)", [corpora[n]["findings"] for n in names])
    row("findings with a fix / files with one", [
        f"{corpora[n]['fixable_findings']} / {corpora[n]['files_with_fixable_findings']}" for n in names])
    row("fixes applied", [sum(corpora[n]["fixes_applied"].values()) for n in names])
    row("files changed", [corpora[n]["files_changed"] for n in names])
    row("findings after the fix", [corpora[n]["findings_after"] for n in names])
    row("second fix run over", [f"{corpora[n].get('second_fix_files', 'all')} files" for n in names])
    row("wall s: check / fix / second fix", [
        " / ".join(str(corpora[n]["runs"][k]["wall_s"]) for k in ("check", "fix", "second fix")) for n in names])
    lines += ["", "**Defects (each must be 0):**", "", "| defect | " + " | ".join(names) + " |",
              "|---|" + "---:|" * len(names)]
    for defect in DEFECTS:
        row(defect.replace("_", " "), [
            corpora[n]["defect_counts"].get(defect, 0) if defect != "concurrent_corrupted" or corpora[n]["concurrent"]
            else "not run" for n in names])
    kinds = sorted({k for n in names for k in corpora[n]["errors"]})
    if kinds:
        lines += ["", "**Fixes not applied (the fixer's own refusals, not damage):**", "",
                  "| reason | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for kind in kinds:
            row(kind, [corpora[n]["errors"].get(kind, 0) for n in names])
    lines += ["", "**Fixes applied per rule:**", "", "| rule | " + " | ".join(names) + " |",
              "|---|" + "---:|" * len(names)]
    for code in sorted({c for n in names for c in corpora[n]["fixes_applied"]}):
        row(code, [corpora[n]["fixes_applied"].get(code, 0) for n in names])
    concurrent = [n for n in names if corpora[n]["concurrent"]]
    if concurrent:
        lines += ["", "**Two concurrent fix runs on a fresh copy:**", ""]
        for n in concurrent:
            c = corpora[n]["concurrent"]
            lines.append(f"- {n}: files ended {c['files_ended']} (the single run changed {c['fixed_by_single_run']}); "
                         f"files each run skipped as changed on disk: {c['skipped_changed_on_disk']}; {c['wall_s']} s")
    for n in names:
        found = {k: v for k, v in corpora[n]["defects"].items() if v}
        examples = corpora[n]["error_examples"]
        if found or examples:
            lines += ["", f"## {n}: details", ""]
            for kind, items in found.items():
                lines += [f"- defect `{kind}`:"] + [f"  - `{item}`" for item in items[:10]]
            for kind, items in examples.items():
                lines += [f"- {kind} (examples):"] + [f"  - `{item}`" for item in items]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="corpora to run (default: all)")
    parser.add_argument("--corpus", action="append", default=[], metavar="NAME=PATH", help="where a corpus lies")
    parser.add_argument("--corpus-dir", type=Path, default=fetch_corpus.CORPUS_DIR,
                        help="where fetch_corpus.py unpacks the corpora (default: benchmarks/corpus)")
    parser.add_argument("--no-download", action="store_true", help="fail on a missing corpus instead of fetching it")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--isolated", action="store_true", help="check each file on its own (no project index)")
    parser.add_argument("--second-fix-changed-only", action="store_true",
                        help="with --isolated: the second fix run checks only the files the first one changed")
    parser.add_argument("--no-variants", action="store_true", help="fix the copies as they are")
    parser.add_argument("--concurrent", action="store_true", help="also fix a fresh copy with two runs at once")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "fix_corpus")
    args = parser.parse_args()
    if args.second_fix_changed_only and not args.isolated:
        parser.error("--second-fix-changed-only needs --isolated (with a project index, a change can alter other files' findings)")
    given = {}
    for item in args.corpus:
        name, _, path = item.partition("=")
        given[name] = Path(path).expanduser()
    names = args.names or list(CORPORA)
    unknown = [n for n in names if n not in CORPORA and n not in given]
    if unknown:
        parser.error(f"unknown corpus: {', '.join(unknown)} (known: {', '.join(CORPORA)}; or --corpus NAME=PATH)")
    json_path = args.output.with_suffix(".json")
    previous = json.loads(json_path.read_text()) if json_path.is_file() else {}
    results = previous.get("corpora", {})
    shown_options = Options(args.jobs, args.isolated, Path("<temporary folder>"))
    shown = " ".join(command(Path("<copy>"), shown_options, fix=True)[1:]).replace(str(REPO) + "/", "")
    meta = {"python": platform.python_version(), "cores": len(os.sched_getaffinity(0)), "command": f"python {shown}"}
    for name in names:
        source = given.get(name) or locate(name, args.corpus_dir.resolve(), not args.no_download)
        if not source.is_dir():
            raise SystemExit(f"{source}: no such corpus")
        print(f"fixing a copy of {name} ({source}) ...", file=sys.stderr, flush=True)
        report = fix_corpus(name, source, args.jobs, args.isolated, not args.no_variants, args.concurrent,
                            second_fix_all=not args.second_fix_changed_only)
        results[name] = as_json(report)
        results[name]["commit"] = sync_lint_commit()
        results[name]["command"] = f"python {shown}"
        results[name]["invocation"] = "python benchmarks/fix_corpus.py " + " ".join(sys.argv[1:])
        results[name]["load_average_after"] = round(os.getloadavg()[0], 1)
        results[name]["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        results[name]["python"], results[name]["cores"] = meta["python"], meta["cores"]
        print(f"  {report.files_changed} files changed, defects: {results[name]['defect_counts']}",
              file=sys.stderr, flush=True)
        write_results(args.output, meta, results)  # after each corpus: a long run keeps what it did
    defects = sum(sum(c["defect_counts"].values()) for c in results.values())
    print(f"wrote {json_path} and {args.output.with_suffix('.md')}: {defects} defects", file=sys.stderr)
    return 1 if defects else 0


def write_results(output: Path, meta: dict, results: dict[str, dict]) -> None:
    ordered = {n: results[n] for n in [*CORPORA, *sorted(set(results) - set(CORPORA))] if n in results}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps({"meta": meta, "corpora": ordered}, indent=2, sort_keys=True)
                                           + "\n")
    output.with_suffix(".md").write_text(render_markdown(meta, ordered))


if __name__ == "__main__":
    sys.exit(main())
