"""Drive the step variants against a busy GPU; check that they return the same results.

    python benchmarks/gpu/step/run_step.py [--variant a,b,c,d] [--steps 60] [--sleep-ms 8] [--out DIR]

Variants (one module each, same classes and data flow):
  a  step_a_as_written.py    as written (the LFM2-VL write-up's builder, a vLLM-style
                             metadata build, a sampler step)
  b  step_b_fixed.py         `sync-lint check --fix` applied to (a)
  c  step_c_unsafe_fixed.py  `sync-lint check --fix --unsafe-fixes` applied to (a)
  d  step_d_manual.py        the manual rewrites that `sync-lint explain` recommends

Each step: queue --sleep-ms of GPU work (the previous step's forward pass), then time
the host inside `StepRunner.step` (host-blocked ms; a step **blocked** when that is
over half the sleep), then read the PREVIOUS step's host results (`materialize`;
timed separately): the host runs one step ahead, as with async scheduling. Device
tensors a step returns are cloned (asynchronously) right after it, so later writes to
persistent buffers cannot alter them. Inputs are deterministic (seeded per step);
batch sizes vary between 1 and 64 requests, decode-only and mixed steps.

Every variant's results, step by step, are compared with (a)'s: tensors with
`torch.equal` and the same dtype, shape and device; host values with `==`.

Without CUDA this runs on the CPU (no busy queue) and only the identity check is
meaningful; `pin_memory` needs an accelerator, so it is shimmed to a no-op there.
Needs only torch and numpy.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

MODULES = {
    "a": "step_a_as_written",
    "b": "step_b_fixed",
    "c": "step_c_unsafe_fixed",
    "d": "step_d_manual",
}
MAX_NUM_REQS = 64
MAX_BLOCKS = 64
VOCAB = 8192
HIDDEN = 256


def make_inputs(seed: int) -> SimpleNamespace:
    """One step's scheduler output: decodes first, then prefills (some fresh, some continued)."""
    rng = np.random.default_rng(seed)
    num_reqs = int(rng.integers(1, MAX_NUM_REQS + 1))
    kind = seed % 4
    if kind == 0:
        num_decodes = num_reqs  # decode-only step
    else:
        num_decodes = int(rng.integers(0, num_reqs))  # at least one prefill
    sched = np.ones(num_reqs, dtype=np.int32)
    sched[num_decodes:] = rng.integers(2, 257, size=num_reqs - num_decodes)
    computed = rng.integers(1, 700, size=num_reqs).astype(np.int32)
    fresh = rng.random(num_reqs - num_decodes) < 0.5
    computed[num_decodes:][fresh] = 0
    table = rng.permutation(MAX_NUM_REQS * MAX_BLOCKS).astype(np.int32).reshape(MAX_NUM_REQS, MAX_BLOCKS)
    total = int(sched.sum())
    if seed % 8 == 0:
        temperature = np.zeros(num_reqs, dtype=np.float32)  # all greedy
    else:
        temperature = np.where(rng.random(num_reqs) < 0.5, 0.0, 0.8).astype(np.float32)
    return SimpleNamespace(
        num_scheduled_tokens=sched,
        num_computed_tokens=computed,
        block_table_cpu=torch.from_numpy(table),
        token_ids_np=rng.integers(0, VOCAB, size=total).astype(np.int64),
        temperature_cpu=torch.from_numpy(temperature),
    )


def install_cpu_shims() -> None:
    """CPU-only identity runs: pinning needs an accelerator, so make it a no-op."""
    torch.Tensor.pin_memory = lambda self, *a, **k: self  # type: ignore[method-assign]
    for name in ("tensor", "empty", "zeros", "ones", "full", "as_tensor", "empty_like", "zeros_like"):
        orig = getattr(torch, name)

        def wrapped(*args, _orig=orig, **kwargs):
            kwargs.pop("pin_memory", None)
            return _orig(*args, **kwargs)

        setattr(torch, name, wrapped)


def snapshot(value, device: torch.device):
    """Clone the tensors on the run device (queued; no host wait)."""
    if isinstance(value, torch.Tensor):
        return value.clone() if value.device.type == device.type else value
    if isinstance(value, dict):
        return {k: snapshot(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not isinstance(value, str):
        return type(value)(snapshot(v, device) for v in value)
    return value


def compare(ref, got, path: str, problems: list) -> None:
    if isinstance(ref, torch.Tensor) or isinstance(got, torch.Tensor):
        if not (isinstance(ref, torch.Tensor) and isinstance(got, torch.Tensor)):
            problems.append(f"{path}: {type(ref).__name__} vs {type(got).__name__}")
        elif (ref.dtype, tuple(ref.shape), ref.device) != (got.dtype, tuple(got.shape), got.device):
            problems.append(f"{path}: {ref.dtype} {tuple(ref.shape)} {ref.device} vs {got.dtype} {tuple(got.shape)} {got.device}")
        elif not torch.equal(ref, got):
            problems.append(f"{path}: values differ")
        return
    if isinstance(ref, dict) and isinstance(got, dict):
        if set(ref) != set(got):
            problems.append(f"{path}: keys {sorted(ref)} vs {sorted(got)}")
        for k in ref:
            if k in got:
                compare(ref[k], got[k], f"{path}.{k}", problems)
        return
    if isinstance(ref, (list, tuple)) and isinstance(got, (list, tuple)) and not (
        ref and not isinstance(ref[0], (torch.Tensor, list, tuple, dict))
    ):
        if type(ref) is not type(got) or len(ref) != len(got):
            problems.append(f"{path}: {type(ref).__name__}[{len(ref)}] vs {type(got).__name__}[{len(got)}]")
            return
        for i, (r, g) in enumerate(zip(ref, got)):
            compare(r, g, f"{path}[{i}]", problems)
        return
    if type(ref) is not type(got) or ref != got:
        problems.append(f"{path}: {ref!r:.80} vs {got!r:.80}")


def run_variant(key: str, seeds: list[int], warmup: int, sleep_ms: float, device: torch.device) -> dict:
    mod = importlib.import_module(MODULES[key])
    runner = mod.StepRunner(MAX_NUM_REQS, MAX_BLOCKS, VOCAB, HIDDEN, device)
    inputs = [make_inputs(s) for s in seeds]
    cuda = device.type == "cuda"
    if cuda:
        from gpu_busy import Busy
    results, host_ms, mat_ms = [], [], []
    pending = None
    if cuda:
        torch.cuda.synchronize()
    t_start = None
    for i, (seed, inp) in enumerate(zip(seeds, inputs)):
        if i == warmup:
            if cuda:
                torch.cuda.synchronize()
            t_start = time.perf_counter()
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        if cuda:
            Busy(sleep_ms)
        t0 = time.perf_counter()
        out = runner.step(inp, generator)
        t1 = time.perf_counter()
        out = snapshot(out, device)
        if pending is not None:
            t2 = time.perf_counter()
            results.append(mod.materialize(pending))
            t3 = time.perf_counter()
            if i > warmup:
                mat_ms.append((t3 - t2) * 1e3)
        pending = out
        if i >= warmup:
            host_ms.append((t1 - t0) * 1e3)
    t2 = time.perf_counter()
    results.append(mod.materialize(pending))
    mat_ms.append((time.perf_counter() - t2) * 1e3)
    if cuda:
        torch.cuda.synchronize()
    wall = (time.perf_counter() - t_start) * 1e3
    n = len(host_ms)
    blocked = [h > 0.5 * sleep_ms for h in host_ms] if cuda else []
    s = sorted(host_ms)
    return {
        "variant": key, "module": MODULES[key], "steps": n, "warmup": warmup, "sleep_ms": sleep_ms if cuda else 0.0,
        "host_ms_median": s[n // 2], "host_ms_mean": sum(s) / n, "host_ms_max": s[-1], "host_ms_min": s[0],
        "blocked_steps": sum(blocked),
        "materialize_ms_median": sorted(mat_ms)[len(mat_ms) // 2], "materialize_ms_max": max(mat_ms),
        "wall_ms_per_step": wall / n,
        "host_ms": host_ms, "materialize_ms": mat_ms,
        "_results": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", default="a,b,c,d")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="run every variant this many times (timing spread)")
    ap.add_argument("--sleep-ms", type=float, default=8.0)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        install_cpu_shims()
        print("no CUDA: running on the CPU for the identity check only (pin_memory shimmed)", file=sys.stderr)
    from gpu_busy import environment

    env = environment()
    keys = [k for k in args.variant.split(",") if k]
    seeds = [900_000 + i for i in range(args.warmup)] + [1000 + i for i in range(args.steps)]
    runs, failures = [], {}
    for rnd in range(args.rounds):
        for key in keys:
            try:
                r = run_variant(key, seeds, args.warmup, args.sleep_ms, device)
            except Exception as exc:  # noqa: BLE001 (report and go on with the other variants)
                failures[f"{key}#{rnd}"] = f"{type(exc).__name__}: {exc}"
                print(f"variant {key}: FAILED {type(exc).__name__}: {exc}", flush=True)
                continue
            r["round"] = rnd
            runs.append(r)
            print(f"round {rnd} variant {key}: host ms/step median {r['host_ms_median']:.3f} mean {r['host_ms_mean']:.3f} "
                  f"max {r['host_ms_max']:.3f}; blocked {r['blocked_steps']}/{r['steps']}; materialize median "
                  f"{r['materialize_ms_median']:.3f}; wall/step {r['wall_ms_per_step']:.3f}", flush=True)
    # Identity: every run against the first run of (a) (or of the first variant run).
    ref = next((r for r in runs if r["variant"] == "a"), runs[0] if runs else None)
    identity = {}
    for r in runs:
        problems: list[str] = []
        for step, (x, y) in enumerate(zip(ref["_results"], r["_results"])):
            compare(x, y, f"step{step}", problems)
        if len(ref["_results"]) != len(r["_results"]):
            problems.append("different number of steps")
        identity[f"{r['variant']}#{r['round']}"] = {"identical": not problems, "problems": problems[:20],
                                                    "steps_compared": len(r["_results"])}
        print(f"identity {r['variant']}#{r['round']} vs {ref['variant']}#{ref['round']}: "
              f"{'identical' if not problems else 'DIFFERENT'} over {len(r['_results'])} steps"
              + ("" if not problems else f": {problems[:5]}"), flush=True)
    stats = summary_stats(ref["_results"]) if ref else {}
    for r in runs:
        r.pop("_results")
    result = {"environment": env, "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
              "device": str(device), "input_stats": stats, "runs": runs, "identity": identity, "failures": failures}
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        ver = ".".join(torch.__version__.split("+")[0].split(".")[:2])
        tag = "h200" if "H200" in env.get("gpu", "") else (env.get("gpu", "cpu").split()[-1].lower() if cuda else "cpu")
        stem = os.path.join(args.out, f"step-{tag}-torch{ver}")
        with open(stem + ".json", "w") as f:
            json.dump(result, f, indent=1)
        with open(stem + ".md", "w") as f:
            f.write(render(result))
    if failures or any(not v["identical"] for v in identity.values()):
        sys.exit(1)


def summary_stats(results: list[dict]) -> dict:
    reqs = [int(r["query_start_loc"].shape[0]) - 1 for r in results]
    toks = [int(r["positions"].shape[0]) for r in results]
    prefill_steps = sum(1 for r in results if r["split"][1] > 0)
    stopped = sum(0 if r["finished"] is None else int(r["finished"].shape[0]) for r in results)
    return {"steps": len(results), "num_reqs_min": min(reqs), "num_reqs_max": max(reqs), "tokens_min": min(toks),
            "tokens_max": max(toks), "steps_with_prefills": prefill_steps, "stopped_requests": stopped}


def render(result: dict) -> str:
    env = result["environment"]
    st = result["input_stats"]
    out = [
        f"# Step benchmark: as written vs fixed, {env.get('gpu', 'CPU')}, torch {env['torch']}",
        "",
        (f"Date: {env['date_utc']}. GPU: {env.get('gpu', 'none')} (driver {env.get('driver', '-')}), torch {env['torch']} "
        f"(CUDA {env['cuda_runtime']}), Python {env['python']}."),
        "",
        f"Command: `{result['command']}` (driver: `benchmarks/gpu/step/run_step.py`).",
        "",
        (f"Inputs: {st.get('steps')} steps (warm-up included) of {st.get('num_reqs_min')}-{st.get('num_reqs_max')} requests, "
        f"{st.get('tokens_min')}-{st.get('tokens_max')} tokens; {st.get('steps_with_prefills')} steps with prefills, "
        f"{st.get('stopped_requests')} stopped requests in all."),
        "",
        "| variant | round | host ms/step median | mean | max | blocked steps | materialize ms median (max) | wall ms/step | identical to (a) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["runs"]:
        ident = result["identity"].get(f"{r['variant']}#{r['round']}", {})
        out.append(
            f"| ({r['variant']}) `{r['module']}` | {r['round']} | {r['host_ms_median']:.3f} | {r['host_ms_mean']:.3f} | "
            f"{r['host_ms_max']:.3f} | {r['blocked_steps']}/{r['steps']} | {r['materialize_ms_median']:.3f} "
            f"({r['materialize_ms_max']:.3f}) | {r['wall_ms_per_step']:.3f} | {ident.get('identical')} |"
        )
    if result["failures"]:
        out += ["", "Failures:", ""] + [f"- {k}: `{v}`" for k, v in result["failures"].items()]
    for k, v in result["identity"].items():
        if not v["identical"]:
            out += ["", f"Differences for {k}:", ""] + [f"- `{p}`" for p in v["problems"]]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
