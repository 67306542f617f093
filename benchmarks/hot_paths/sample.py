import json, random, linecache
from pathlib import Path
corpus = Path("/work/main/benchmarks/corpus/vllm-0.33.0")
findings = json.loads(Path("/tmp/vllm-measure/findings.json").read_text())
trans = [f for f in findings if f["code"] == "SL601"]
sample = random.Random(11).sample(trans, min(30, len(trans)))
for i, f in enumerate(sample):
    rel = Path(f["filename"]).relative_to(corpus)
    print(f"[{i}] {rel}:{f['location']['row']}: {linecache.getline(f['filename'], f['location']['row']).strip()[:110]}")
    for s in f["evidence_steps"]:
        print(f"      {s['message'][:160]}  @{Path(s['filename']).name}:{s['row']}")
