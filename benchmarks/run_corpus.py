#!/usr/bin/env python3
"""Time sync-lint on the real-world corpora and count what it finds.

For each corpus (see fetch_corpus.py) this runs, as a subprocess,

    sync-lint check <dir> --config benchmarks/corpus-config.toml \
        --output-format json --exit-zero --jobs N

`--runs` times (default 3), each a fresh process with an empty project cache
(`--cache-dir` in a temporary folder), so every run is cold; the OS file cache is warm
after the first. It records the wall time
(time.perf_counter), user+sys CPU and the max RSS of the largest process (GNU
`/usr/bin/time -v`, when present), and the summed RSS of the whole process tree
(sampled from /proc every 100 ms). From the JSON output of the last run it counts
findings in total, per rule and per 1,000 lines.

Writes `benchmarks/results/<corpus>.json`, `benchmarks/results/summary.md`, and the
raw findings to `benchmarks/results/<corpus>.raw.json` (git-ignored).

    python benchmarks/run_corpus.py                       # all corpora, 3 runs each
    python benchmarks/run_corpus.py --runs 1 vllm         # one corpus, one run
    python benchmarks/run_corpus.py --sample 40 --seed 1  # audit sample (no timing)

`--sample N --seed S` draws N findings at random (seeded) across the full corpora
from the raw findings of the last timing run (running the linter once where a corpus
has none) and writes `benchmarks/results/audit_sample.md` for a human auditor.

The config file is needed because benchmarks/corpus/ is git-ignored and sync-lint
honours .gitignore by default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_DIR = HERE / "results"
CORPUS_JSON = RESULTS_DIR / "corpus.json"
CONFIG = HERE / "corpus-config.toml"
GNU_TIME = "/usr/bin/time"

# The speed target (see README.md): lines per second of wall time, 2 cores, cold.
TARGET_LINES_PER_S = 20_000
# Peers on the transformers subset (298k lines, 2 cores); shared/research/peer-linters.md (f).
PEER_WALL_S = {"torchfix 0.7.0": 151.1, "fixit 2.2.1": 126.0, "flake8+torchfix": 82.4}

# The subset the peer timings used: transformers/ minus models/, plus
# models/__init__.py and models/[a-c]*/ (656 files, 297,686 lines).
SUBSET = "transformers-subset"


def load_corpora() -> dict[str, dict]:
    if not CORPUS_JSON.is_file():
        raise SystemExit(f"{CORPUS_JSON.relative_to(REPO)} missing: run benchmarks/fetch_corpus.py first")
    return json.loads(CORPUS_JSON.read_text(encoding="utf-8"))["corpora"]


def corpus_targets(name: str, corpora: dict[str, dict]) -> tuple[Path, list[str], str]:
    """(corpus root, paths to pass to sync-lint, version) for a corpus name."""
    if name == SUBSET:
        entry = corpora["transformers"]
        root = REPO / entry["dir"]
        pkg = root / "transformers"
        paths = [str(p) for p in sorted(pkg.iterdir()) if p.name != "models"]
        models = pkg / "models"
        paths.append(str(models / "__init__.py"))
        paths += [str(p) for p in sorted(models.iterdir()) if p.is_dir() and p.name[:1] in "abc"]
        return root, paths, entry["version"]
    entry = corpora[name]
    root = REPO / entry["dir"]
    if not root.is_dir():
        raise SystemExit(f"{entry['dir']} missing: run benchmarks/fetch_corpus.py")
    return root, [str(root)], entry["version"]


def sync_lint_command() -> list[str]:
    exe = shutil.which("sync-lint")
    return [exe] if exe else [sys.executable, "-m", "sync_lint"]


def discovered_files(paths: list[str]) -> list[str]:
    """The files sync-lint will check, found by its own discovery with the same config."""
    sys.path.insert(0, str(REPO))
    from sync_lint.config import load_config_file
    from sync_lint.discovery import discover

    return discover(paths, load_config_file(CONFIG)).files


def count_lines(files: list[str]) -> int:
    return sum(Path(f).read_bytes().count(b"\n") for f in files)


# ------------------------------------------------------------------------------------------
# One timed run
# ------------------------------------------------------------------------------------------


class TreeRss:
    """Samples the summed RSS (kB) of a process and all its descendants from /proc."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "TreeRss":
        if Path("/proc/self/stat").exists():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._sample())
            self._stop.wait(self.interval)

    def _sample(self) -> int:
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # The command name may contain spaces and parentheses: split after the last ')'.
            fields = stat[stat.rfind(")") + 2:].split()
            parents[int(entry)] = int(fields[1])
        tree = {self.pid}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in tree and pid not in tree:
                    tree.add(pid)
                    changed = True
        total = 0
        for pid in tree:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            except OSError:
                continue
        return total


def parse_gnu_time(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("User time (seconds):"):
            out["user_s"] = float(line.rsplit(":", 1)[1])
        elif line.startswith("System time (seconds):"):
            out["sys_s"] = float(line.rsplit(":", 1)[1])
        elif line.startswith("Maximum resident set size (kbytes):"):
            out["max_rss_largest_mb"] = round(int(line.rsplit(":", 1)[1]) / 1024, 1)
    return out


def timed_run(paths: list[str], jobs: int, out_path: Path) -> dict:
    command = [*sync_lint_command(), "check", *paths, "--config", str(CONFIG), "--output-format", "json",
               "--exit-zero", "--no-progress", "--jobs", str(jobs)]
    use_gnu_time = os.access(GNU_TIME, os.X_OK)
    with tempfile.TemporaryDirectory() as tmp:
        # A cold run: the project cache goes to a fresh folder (a cache left at the corpus root
        # by an earlier run would make every run after the first a warm one).
        command += ["--cache-dir", str(Path(tmp) / "cache")]
        time_file = Path(tmp) / "time.txt"
        err_file = Path(tmp) / "stderr.txt"
        full = [GNU_TIME, "-v", "-o", str(time_file), *command] if use_gnu_time else command
        import resource

        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy_before = busy_cpu_s()
        with out_path.open("wb") as stdout, err_file.open("wb") as stderr:
            start = time.perf_counter()
            proc = subprocess.Popen(full, stdout=stdout, stderr=stderr, cwd=REPO)
            with TreeRss(proc.pid) as tree:
                code = proc.wait()
            wall = time.perf_counter() - start
        busy_after = busy_cpu_s()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        run: dict = {"wall_s": round(wall, 3), "exit_code": code, "tree_rss_peak_mb": round(tree.peak_kb / 1024, 1)}
        if use_gnu_time and time_file.is_file():
            run.update(parse_gnu_time(time_file.read_text(errors="replace")))
        else:
            run["user_s"] = round(after.ru_utime - before.ru_utime, 2)
            run["sys_s"] = round(after.ru_stime - before.ru_stime, 2)
            # Cumulative over all children of this script: an upper bound after the first run.
            run["max_rss_largest_mb"] = round(after.ru_maxrss / 1024, 1)
        if busy_before is not None and busy_after is not None:
            # CPU time the whole machine spent during the run minus our own: other work on
            # the machine (or hypervisor steal) that skews the timing.
            run["other_cpu_s"] = round(max(0.0, busy_after - busy_before - run["user_s"] - run["sys_s"]), 2)
        run["stderr"] = err_file.read_text(encoding="utf-8", errors="replace")
    return run


def busy_cpu_s() -> float | None:
    """Non-idle CPU seconds of the whole machine since boot (from /proc/stat), or None."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except (OSError, IndexError):
        return None
    ticks = [int(x) for x in fields[:8]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    return busy / os.sysconf("SC_CLK_TCK")


ERROR_RE = re.compile(r"error|traceback|exception|internal", re.IGNORECASE)


def lint_corpus(name: str, corpora: dict[str, dict], runs: int, jobs: int) -> dict:
    root, paths, version = corpus_targets(name, corpora)
    files = discovered_files(paths)
    lines = count_lines(files)
    raw_path = RESULTS_DIR / f"{name}.raw.json"
    print(f"run: {name} {version}: {len(files)} files, {lines} lines, {runs} run(s), --jobs {jobs}", file=sys.stderr)
    info = sync_lint_info()
    timings = []
    for index in range(runs):
        run = timed_run(paths, jobs, raw_path)
        timings.append(run)
        print(f"run:   #{index + 1}: {run['wall_s']:.2f} s wall, exit {run['exit_code']}", file=sys.stderr)
    last_stderr = timings[-1]["stderr"]
    stderr_lines = [line for line in last_stderr.splitlines() if line.strip()]
    error_lines = [line for line in stderr_lines if ERROR_RE.search(line)]
    try:
        findings = json.loads(raw_path.read_text(encoding="utf-8") or "[]")
    except json.JSONDecodeError as exc:
        findings = []
        error_lines.append(f"run_corpus: stdout is not JSON: {exc}")
    per_rule = Counter(f["code"] for f in findings)
    names = {f["code"]: f.get("name") for f in findings}
    per_confidence = Counter(str(f.get("confidence")) for f in findings)
    files_with = len({f["filename"] for f in findings})
    walls = [r["wall_s"] for r in timings]
    median_wall = statistics.median(walls)
    cpu = [r.get("user_s", 0) + r.get("sys_s", 0) for r in timings]
    result = {
        "corpus": name,
        "version": version,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sync_lint": info,
        "rules_changed_during_run": info["rules"] != sync_lint_info()["rules"],
        "machine": {"cpu_count": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "jobs": jobs,
        "command": "sync-lint check " + (" ".join(str(Path(p).relative_to(REPO)) for p in paths) if len(paths) == 1
                                         else f"<{len(paths)} paths under {root.relative_to(REPO)}>")
                   + f" --config {CONFIG.relative_to(REPO)} --output-format json --exit-zero --jobs {jobs}",
        "files_checked": len(files),
        "lines": lines,
        "runs": [{k: v for k, v in r.items() if k != "stderr"} for r in timings],
        "wall_median_s": round(median_wall, 3),
        "cpu_median_s": round(statistics.median(cpu), 2),
        "cores_used": round(statistics.median(cpu) / median_wall, 2) if median_wall else None,
        "lines_per_s": round(lines / median_wall) if median_wall else None,
        # Less sensitive to other load on the machine than wall time.
        "lines_per_cpu_s": round(lines / statistics.median(cpu)) if statistics.median(cpu) else None,
        "max_rss_largest_mb": max((r.get("max_rss_largest_mb", 0) for r in timings), default=None),
        "tree_rss_peak_mb": max(r["tree_rss_peak_mb"] for r in timings),
        "findings_total": len(findings),
        "findings_per_kloc": round(len(findings) * 1000 / lines, 3) if lines else None,
        "files_with_findings": files_with,
        "findings_per_rule": {code: {"name": names[code], "count": n, "per_kloc": round(n * 1000 / lines, 3)}
                              for code, n in sorted(per_rule.items())},
        "findings_per_confidence": dict(sorted(per_confidence.items())),
        "stderr_line_count": len(stderr_lines),
        "stderr_error_lines": error_lines[:200],
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    for line in error_lines[:50]:
        print(f"run:   stderr: {line}", file=sys.stderr)
    if len(error_lines) > 50:
        print(f"run:   ... {len(error_lines) - 50} more stderr error lines in results/{name}.json", file=sys.stderr)
    print(f"run:   median {median_wall:.2f} s, {result['lines_per_s']} lines/s, {len(findings)} findings "
          f"{dict(sorted(per_rule.items()))}", file=sys.stderr)
    return result


def sync_lint_info() -> dict:
    """Version, commit and active rules now (read afresh: the rule set changes during development)."""
    base = sync_lint_command()
    version = subprocess.run([*base, "--version"], capture_output=True, text=True, cwd=REPO).stdout.strip()
    # The torch version the corpora are linted for comes from the benchmark config.
    target = re.search(r'target-torch-version\s*=\s*"([^"]+)"', CONFIG.read_text(encoding="utf-8"))
    rules = subprocess.run([*base, "rules", "--output-format", "json",
                            *(["--target-torch-version", target.group(1)] if target else [])],
                           capture_output=True, text=True, cwd=REPO)
    try:
        active = [r["code"] for r in json.loads(rules.stdout) if r.get("active", True)]
    except json.JSONDecodeError:
        active = None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True, cwd=REPO)
    return {"version": version, "commit": commit.stdout.strip() or None,
            "dirty": bool(dirty.stdout.strip()), "rules": active}


# ------------------------------------------------------------------------------------------
# Summary
# ------------------------------------------------------------------------------------------


def write_summary(names: list[str]) -> None:
    results = []
    for name in names:
        path = RESULTS_DIR / f"{name}.json"
        if path.is_file():
            results.append(json.loads(path.read_text(encoding="utf-8")))
    if not results:
        return
    info = results[0]["sync_lint"]
    out = ["# sync-lint on real-world corpora", ""]
    out.append(f"sync-lint `{info['version']}` at commit `{info['commit']}`{' (dirty tree)' if info['dirty'] else ''}; "
               f"{len(info['rules'] or [])} active rules: {', '.join(info['rules'] or [])}.")
    for r in results:
        if r["sync_lint"]["rules"] != info["rules"] or r.get("rules_changed_during_run"):
            out.append(f"**Note:** `{r['corpus']}` ran with a different rule set (commit `{r['sync_lint']['commit']}`: "
                       f"{', '.join(r['sync_lint']['rules'] or [])}"
                       f"{'; rules changed during the run' if r.get('rules_changed_during_run') else ''}).")
    out.append(f"Machine: {results[0]['machine']['cpu_count']} cores, Python {results[0]['machine']['python']}. "
               "Each run is a fresh process (cold: sync-lint keeps no cache); median of the runs listed.")
    busy = [(run.get("other_cpu_s") or 0) / max(run["wall_s"], 1e-9) for r in results for run in r["runs"]]
    if busy and max(busy) > 0.1:
        out.append(f"**Caution:** other processes were using the machine during some runs (up to {max(busy):.2f} "
                   "of a core on average; `other_cpu_s` in the JSON), so these times are inflated. "
                   "Re-run on an idle machine for the real numbers.")
    out.append("")
    out.append("| corpus | files | lines | runs | wall s (median) | lines/s | target 20k lines/s | CPU s | lines/CPU-s | cores used "
               "| other CPU s | RSS largest / tree MB | findings | per 1k lines | files w/ findings |")
    out.append("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ok = "met" if (r["lines_per_s"] or 0) >= TARGET_LINES_PER_S else "**missed**"
        out.append(f"| {r['corpus']} {r['version']} | {r['files_checked']:,} | {r['lines']:,} | {len(r['runs'])} "
                   f"| {r['wall_median_s']:.2f} | {r['lines_per_s']:,} | {ok} | {r['cpu_median_s']:.1f} | {r.get('lines_per_cpu_s') or round(r['lines'] / max(r['cpu_median_s'], 1e-9)):,} "
                   f"| {r['cores_used']} | {statistics.median(run.get('other_cpu_s') or 0 for run in r['runs']):.1f} "
                   f"| {r['max_rss_largest_mb']} / {r['tree_rss_peak_mb']} "
                   f"| {r['findings_total']:,} | {r['findings_per_kloc']} | {r['files_with_findings']:,} |")
    codes = sorted({c for r in results for c in r["findings_per_rule"]})
    if codes:
        out += ["", "## Findings per rule", ""]
        out.append("| code | name | " + " | ".join(r["corpus"] for r in results) + " |")
        out.append("|---|---|" + "---:|" * len(results))
        for code in codes:
            name = next(r["findings_per_rule"][code]["name"] for r in results if code in r["findings_per_rule"])
            cells = [str(r["findings_per_rule"].get(code, {}).get("count", 0)) for r in results]
            out.append(f"| {code} | {name} | " + " | ".join(cells) + " |")
    subset = next((r for r in results if r["corpus"] == SUBSET), None)
    if subset:
        out += ["", "## Against the peers (transformers subset, 2 cores)", ""]
        out.append("| tool | median wall s | vs sync-lint |")
        out.append("|---|---:|---:|")
        out.append(f"| sync-lint | {subset['wall_median_s']:.2f} | 1.0x |")
        for tool, wall in PEER_WALL_S.items():
            out.append(f"| {tool} | {wall} | {wall / subset['wall_median_s']:.1f}x slower |")
        out.append("")
        out.append("Peer timings from shared/research/peer-linters.md (f), same subset and machine size.")
    errors = [(r["corpus"], line) for r in results for line in r["stderr_error_lines"]]
    out += ["", "## Errors on stderr", ""]
    if errors:
        out.append(f"{len(errors)} line(s); first ones verbatim:")
        out.append("")
        out.append("```")
        out += [f"[{c}] {line}" for c, line in errors[:40]]
        out.append("```")
    else:
        out.append("None.")
    out.append("")
    (RESULTS_DIR / "summary.md").write_text("\n".join(out), encoding="utf-8")


# ------------------------------------------------------------------------------------------
# Audit sample
# ------------------------------------------------------------------------------------------


def md_cell(text: object) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def write_sample(n: int, seed: int, corpora: dict[str, dict], jobs: int) -> None:
    names = [name for name in corpora]  # the full corpora only; the subset duplicates transformers
    pool = []
    for name in names:
        raw = RESULTS_DIR / f"{name}.raw.json"
        if not raw.is_file():
            lint_corpus(name, corpora, 1, jobs)
        root = (REPO / corpora[name]["dir"]).resolve()
        for f in json.loads(raw.read_text(encoding="utf-8") or "[]"):
            pool.append((name, root, f))
    pool.sort(key=lambda item: (item[0], item[2]["filename"], item[2]["location"]["row"],
                                item[2]["location"]["column"], item[2]["code"]))
    picked = random.Random(seed).sample(pool, min(n, len(pool)))
    info = sync_lint_info()
    out = [f"# Audit sample: {len(picked)} of {len(pool)} findings (seed {seed})", ""]
    out.append(f"Drawn with `python benchmarks/run_corpus.py --sample {n} --seed {seed}` from the last run's findings "
               f"on {', '.join(k + ' ' + corpora[k]['version'] for k in names)}; sync-lint `{info['version']}` "
               f"at `{info['commit']}`{' (dirty tree)' if info['dirty'] else ''}, rules {', '.join(info['rules'] or [])}.")
    out.append("")
    out.append("Verdicts: **TP** (a real hidden sync), **TP-intended** (a real sync that the code clearly means), "
               "**FP** (no sync happens), **?** (cannot tell). Fill in the `verdict` column and, below, the notes.")
    out.append("")
    out.append("| # | code | file:line | message | verdict |")
    out.append("|---:|---|---|---|---|")
    details = []
    for index, (name, root, f) in enumerate(picked, 1):
        path = Path(f["filename"])
        try:
            shown = f"{root.name}/{path.resolve().relative_to(root).as_posix()}"
        except ValueError:
            shown = str(path)
        row = f["location"]["row"]
        where = f"{shown}:{row}"
        out.append(f"| {index} | {f['code']} | `{where}` | {md_cell(f['message'])} |  |")
        try:
            source = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            source = []
        lo, hi = max(1, row - 3), min(len(source), row + 3)
        width = len(str(hi))
        context = [f"{'>' if i == row else ' '} {i:>{width}} | {source[i - 1]}" for i in range(lo, hi + 1)]
        details += [f"### {index}. {f['code']} `{where}`", ""]
        details.append(f"- message: {f['message']}")
        details.append(f"- evidence: {f.get('evidence') or '(none)'}")
        if f.get("confidence") is not None:
            details.append(f"- confidence: {f['confidence']}")
        details.append("- verdict: ")
        details += ["", "```python", *context, "```", ""]
    out += ["", "## Findings", "", *details]
    path = RESULTS_DIR / "audit_sample.md"
    path.write_text("\n".join(out), encoding="utf-8")
    print(f"sample: wrote {path.relative_to(REPO)} ({len(picked)} of {len(pool)} findings)", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpora", nargs="*", help=f"corpora to run (default: all fetched ones, then {SUBSET})")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per corpus (default 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="--jobs for sync-lint (default: cores)")
    parser.add_argument("--sample", type=int, metavar="N", help="write an audit sample of N findings instead of timing")
    parser.add_argument("--seed", type=int, default=1, help="seed for --sample (default 1)")
    args = parser.parse_args(argv)
    corpora = load_corpora()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if args.sample is not None:
        write_sample(args.sample, args.seed, corpora, args.jobs)
        return 0
    known = [*corpora, SUBSET]
    names = args.corpora or known
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown corpus: {', '.join(unknown)} (known: {', '.join(known)})")
    for name in names:
        lint_corpus(name, corpora, args.runs, args.jobs)
    write_summary([n for n in known if (RESULTS_DIR / f"{n}.json").is_file()])
    print(f"run: wrote {(RESULTS_DIR / 'summary.md').relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
