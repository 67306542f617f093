"""Check vLLM with the hot-path config, then time the hot-path pass on top.

    python measure.py CACHE_DIR OUT_DIR [FILES_LIST]

FILES_LIST (one path per line, as written by reached.py) checks only those files, the
project still being the whole corpus; without it the whole corpus is checked. Paths are
those of the run recorded in results/hot-paths.md.
"""
import json
import sys
import time
from pathlib import Path

from sync_lint import api
from sync_lint.reporters import render

corpus = "/work/main/benchmarks/corpus/vllm-0.33.0"
cache = Path(sys.argv[1])
out = Path(sys.argv[2])
files = Path(sys.argv[3]).read_text().split() if len(sys.argv) > 3 else [corpus]
plan = api.plan([corpus], config="/tmp/vllm-measure/vllm-hot.toml", project=api.ProjectOptions(cache_dir=cache))
t0 = time.perf_counter()
report = api.run(plan, files, hot_paths=False, jobs=2)
t1 = time.perf_counter()
hot = api.apply_hot_paths(plan, report)
t2 = time.perf_counter()
diags = [d for r in report.results for d in r.diagnostics]
timing = {"check_s": t1 - t0, "hot_pass_s": t2 - t1, "files": len(report.results), "findings": len(diags)}
print(json.dumps(timing))
(out / "timing.json").write_text(json.dumps(timing))
(out / "summary.txt").write_text("\n".join(hot.lines(diags)) + "\n")
(out / "findings.json").write_text(render("json", report.results, plan.registry))
(out / "unresolved.txt").write_text("\n".join(f"{u.path}:{u.line}: {u.text} (in {u.function})" for u in hot.unresolved))
print("\n".join(hot.lines(diags)))
