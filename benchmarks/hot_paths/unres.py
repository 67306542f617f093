from collections import Counter
from pathlib import Path
from sync_lint import api
from sync_lint.project.hot import CallGraph, EdgeCache, Root
corpus = Path("/work/main/benchmarks/corpus/vllm-0.33.0")
plan = api.plan([str(corpus)], config="/tmp/vllm-measure/vllm-hot.toml", project=api.ProjectOptions(cache_dir=Path("/tmp/vllm-measure/cache")))
project = next(iter(api.projects_of(plan, [str(corpus / "vllm" / "__init__.py")], jobs=1).values()))
opened = project.open(plan.settings)
graph = CallGraph(opened.index, opened.inference, EdgeCache(opened))
r = Root("vllm.v1.worker.gpu_model_runner.GPUModelRunner.execute_model", "config")
reach = graph.reach(r)
c = Counter()
heads = Counter()
for f in reach.parent:
    for u in graph.unresolved(f):
        c[u.text] += 1
        t = u.text
        heads["self." + t.split(".")[1] if t.startswith("self.") and t.count(".") >= 2 else ("self.<m>" if t.startswith("self.") else t.split(".")[0] if "." in t else "<name>")] += 1
print(c.most_common(25))
print(heads.most_common(15))
kinds = Counter(e.kind for f in reach.parent for e in graph.edges(f))
print(kinds)
print(sorted(reach.depth.values())[-1], "max depth")
