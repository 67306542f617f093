import json, time
from pathlib import Path
from sync_lint import api
from sync_lint.project.hot import CallGraph, EdgeCache, Root
corpus = Path("/work/main/benchmarks/corpus/vllm-0.33.0")
plan = api.plan([str(corpus)], config="/tmp/vllm-measure/vllm-hot.toml", project=api.ProjectOptions(cache_dir=Path("/tmp/vllm-measure/cache")))
t0 = time.perf_counter()
projects = api.projects_of(plan, [str(corpus / "vllm" / "__init__.py")], jobs=2)
project = next(iter(projects.values()))
opened = project.open(plan.settings)
cache = EdgeCache(opened)
graph = CallGraph(opened.index, opened.inference, cache)
roots, missing = graph.roots(plan.settings.hot_paths, (), modules=())
print("roots", roots, "missing", missing)
files = set()
out = {}
for r in roots:
    reach = graph.reach(r)
    fs = {str(corpus / graph.function(f)[0].path) for f in reach.parent if graph.function(f)}
    out[r.function] = {"functions": len(reach.parent), "files": len(fs),
                       "unresolved": sum(len(graph.unresolved(f)) for f in reach.parent),
                       "edges": sum(len(graph.edges(f)) for f in reach.parent)}
    files |= fs
cache.save(); opened.save_facts()
t1 = time.perf_counter()
out["graph_s"] = t1 - t0
print(json.dumps(out, indent=1))
Path("/tmp/vllm-measure/reached_files.txt").write_text("\n".join(sorted(files)) + "\n")
print(len(files), "files")
