"""Per-root counts (exclusive and inclusive) and a ranking of hot findings, from the measured run."""
import json, sys, time
from pathlib import Path
from sync_lint import api
from sync_lint.project.hot import CallGraph, EdgeCache, Root
from sync_lint.hotpaths import _innermost, _module_of

corpus = Path("/work/main/benchmarks/corpus/vllm-0.33.0")
out = Path("/tmp/vllm-measure")
findings = json.loads((out / "findings.json").read_text())
plan = api.plan([str(corpus)], config="/tmp/vllm-measure/vllm-hot.toml", project=api.ProjectOptions(cache_dir=out / "cache"))
projects = api.projects_of(plan, [str(corpus / "vllm" / "__init__.py")])
project = next(iter(projects.values()))
opened = project.open(plan.settings)
graph = CallGraph(opened.index, opened.inference, EdgeCache(opened))
roots = [Root(f"vllm.v1.worker.gpu_model_runner.GPUModelRunner.{m}", "config") for m in ("execute_model", "sample_tokens")]
index = opened.index
def function_of(item):
    module = _module_of(item["filename"], corpus)
    s = index.summary(module)
    if s is None: return None
    info = _innermost(s, item["location"]["row"])
    return s.qualified(info.qualname) if info else None
direct = [f for f in findings if f["code"] != "SL601"]
trans = [f for f in findings if f["code"] == "SL601"]
result = {"findings": len(direct), "hot": sum(1 for f in direct if f["hot"]), "sl601": len(trans)}
for r in roots:
    t = time.perf_counter()
    reach = graph.reach(r)
    inc = [f for f in direct if function_of(f) in reach.parent]
    result[r.function] = {"functions_reached": len(reach.parent), "syncs_inclusive": len(inc),
                          "syncs_exclusive": sum(1 for f in direct if f["hot"] and f["hot"]["root"] == r.function),
                          "sl601_exclusive": sum(1 for f in trans if f["hot"] and f["hot"]["root"] == r.function),
                          "unresolved": sum(len(graph.unresolved(fn)) for fn in reach.parent)}
print(json.dumps(result, indent=1))
def rank(f):
    h = f["hot"]
    return (not h["per_layer"], -h["loop_depth"], f["confidence"] != "high", len(h["chain"]), f["filename"], f["location"]["row"])
hot = sorted([f for f in direct if f["hot"]], key=rank)
lines = []
for f in hot[:25]:
    h = f["hot"]
    chain = " → ".join(s["function"].rsplit(".", 2)[-1] if s["function"].split(".")[-2][:1].islower() else ".".join(s["function"].split(".")[-2:]) for s in h["chain"])
    rel = Path(f["filename"]).relative_to(corpus)
    lines.append(f"{f['code']} {rel}:{f['location']['row']} loop={h['loop_depth']} per_layer={h['per_layer']} conf={f['confidence']} | {chain} | {f['message'][:100]}")
(out / "ranked.txt").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
