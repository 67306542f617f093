"""What does per-call pinned allocation cost, cold and warm, behind a busy GPU?

    python benchmarks/gpu/pin_alloc_probe.py --out DIR [--quick] [--only VARIANT,...]

The pinned fix `x.pin_memory().cuda(non_blocking=True)` allocates pinned memory
on every call. PyTorch's caching host allocator reuses a free block of the same
rounded size; when it has none (a fresh process, a size it has not seen, or every
block of that size still waiting for its copy to run) it calls cudaHostAlloc.

Every variant runs in a FRESH process (one subprocess each), as a serving loop:
STEPS steps whose element count grows geometrically from 1 to --max-n. Each step
queues a SLEEP_MS sleep kernel (the GPU is busy), times the host call that puts
the step's data on the GPU, then waits for the PREVIOUS step's work (the host runs
one step ahead, like an engine with async scheduling). The loop runs twice in the
same process: `cold` (first pass) and `warm` (second pass, same sizes). A call
**blocked** when it took over half the sleep; `drained` counts the blocked calls
that returned after this step's sleep had finished (they waited for the queue).
`host allocs` counts cudaHostAlloc calls
(torch.cuda.host_memory_stats()["num_host_alloc"]) made during the loop.

Variants (growing, per-step data; --max-n elements, int64 and int32):
  a_tensor_device     torch.tensor(lst, dtype=dt, device="cuda")
  b_tensor_pin        torch.tensor(lst, dtype=dt, pin_memory=True).to("cuda", non_blocking=True)
  c_pin_memory        x_cpu.pin_memory().cuda(non_blocking=True)
  d_staging_single    one persistent pinned buffer of max_n: wait on the event of the copy
                      that last read it, buf[:n].copy_(x_cpu), buf[:n].to("cuda", non_blocking=True),
                      record the event (the guard vLLM's CpuGpuBuffer users need)
  d_staging_double    the same with two buffers used in turn (each with its own event)
  d_staging_list      double buffer filled from the list: buf[:n] = torch.as_tensor(lst, dtype=dt)
  f_pageable_nb       x_cpu.to("cuda", non_blocking=True) (pageable source)
Small constant tables (fixed size, same loop):
  e_literal1 / e_full1        torch.tensor([7], device=d)        / torch.full((1,), 7, device=d)
  e_scalar / e_full0          torch.tensor(0.5, device=d)        / torch.full((), 0.5, device=d)
  e_literal8 / e_arange8      torch.tensor([0..7], device=d)     / torch.arange(8, device=d)
  e_table3 / e_table3_pin     torch.tensor([0, 2, 5], device=d)  / torch.tensor([0, 2, 5], pin_memory=True).to(d, non_blocking=True)
  e_table3_stack              torch.stack([torch.full((), v, device=d) for v in (0, 2, 5)])
  e_table3_cached             the table built once (before the loop) and reused
Needs only torch and numpy (and a CUDA GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gpu_busy import Busy, cycles_per_ms, environment, median, now_ms, require_cuda  # noqa: E402

SLEEP_MS = 5.0
STEPS = 120
GROWING = ["a_tensor_device", "b_tensor_pin", "c_pin_memory", "d_staging_single", "d_staging_double",
           "d_staging_list", "f_pageable_nb"]
CONSTANT = ["e_literal1", "e_full1", "e_scalar", "e_full0", "e_literal8", "e_arange8", "e_table3", "e_table3_pin",
            "e_table3_stack", "e_table3_cached"]
DTYPES = {"int64": torch.int64, "int32": torch.int32}


def sizes(max_n: int, steps: int) -> list[int]:
    return [max(1, round(max_n ** (i / (steps - 1)))) for i in range(steps)]


def make_variant(name: str, dt: torch.dtype, max_n: int):
    """Return fn(lst, x_cpu) -> GPU tensor for one variant (state set up here, untimed)."""
    dev = torch.device("cuda")
    if name == "a_tensor_device":
        return lambda lst, x: torch.tensor(lst, dtype=dt, device="cuda")
    if name == "b_tensor_pin":
        return lambda lst, x: torch.tensor(lst, dtype=dt, pin_memory=True).to("cuda", non_blocking=True)
    if name == "c_pin_memory":
        return lambda lst, x: x.pin_memory().cuda(non_blocking=True)
    if name == "f_pageable_nb":
        return lambda lst, x: x.to("cuda", non_blocking=True)
    if name.startswith("d_staging"):
        nbuf = 1 if name == "d_staging_single" else 2
        bufs = [torch.empty(max_n, dtype=dt, pin_memory=True) for _ in range(nbuf)]
        events = [None] * nbuf
        turn = [0]

        def staged(lst, x):
            i = turn[0] % nbuf
            turn[0] += 1
            if events[i] is not None:
                events[i].synchronize()  # the copy that last read this buffer has run
            n = len(lst)
            if name == "d_staging_list":
                bufs[i][:n] = torch.as_tensor(lst, dtype=dt)
            else:
                bufs[i][:n].copy_(x)
            out = bufs[i][:n].to("cuda", non_blocking=True)
            ev = torch.cuda.Event()
            ev.record()
            events[i] = ev
            return out

        return staged
    table = {
        "e_literal1": lambda lst, x: torch.tensor([7], device=dev),
        "e_full1": lambda lst, x: torch.full((1,), 7, device=dev),
        "e_scalar": lambda lst, x: torch.tensor(0.5, device=dev),
        "e_full0": lambda lst, x: torch.full((), 0.5, device=dev),
        "e_literal8": lambda lst, x: torch.tensor([0, 1, 2, 3, 4, 5, 6, 7], device=dev),
        "e_arange8": lambda lst, x: torch.arange(8, device=dev),
        "e_table3": lambda lst, x: torch.tensor([0, 2, 5], device=dev),
        "e_table3_pin": lambda lst, x: torch.tensor([0, 2, 5], pin_memory=True).to(dev, non_blocking=True),
        "e_table3_stack": lambda lst, x: torch.stack([torch.full((), v, device=dev) for v in (0, 2, 5)]),
    }
    if name == "e_table3_cached":
        cached = torch.tensor([0, 2, 5], device=dev)  # once, at start-up (not timed)
        return lambda lst, x: cached
    return table[name]


def expected(name: str, lst, x):
    if name in ("e_literal1", "e_full1"):
        return torch.tensor([7])
    if name in ("e_scalar", "e_full0"):
        return torch.tensor(0.5)
    if name in ("e_literal8", "e_arange8"):
        return torch.arange(8)
    if name.startswith("e_table3"):
        return torch.tensor([0, 2, 5])
    return x


def host_allocs() -> tuple[int, float]:
    try:
        s = torch.cuda.host_memory_stats()
    except (AttributeError, RuntimeError):
        return -1, -1.0
    return int(s.get("num_host_alloc", -1)), float(s.get("host_alloc_time.total", -1.0))


def loop(fn, name: str, ns: list[int], dt: torch.dtype) -> dict:
    rng = np.random.default_rng(0)
    np_dt = np.int64 if dt == torch.int64 else np.int32
    arrays = [rng.integers(0, 1 << 20, size=n).astype(np_dt) for n in ns]
    uses_list = name in ("a_tensor_device", "b_tensor_pin", "d_staging_list")
    lists = [a.tolist() if uses_list else range(len(a)) for a in arrays]  # only the length is read
    xs = [torch.from_numpy(a) for a in arrays]
    torch.cuda.synchronize()
    allocs0, alloc_us0 = host_allocs()
    host_ms, blocked, waited, allocs, outs = [], [], [], [], []
    prev = None
    for lst, x in zip(lists, xs):
        a0, _ = host_allocs()
        busy = Busy(SLEEP_MS)
        t0 = now_ms()
        out = fn(lst, x)
        dt_ms = now_ms() - t0
        drained = busy.done()
        a1, _ = host_allocs()
        host_ms.append(dt_ms)
        blocked.append(dt_ms > 0.5 * SLEEP_MS)
        waited.append(dt_ms > 0.5 * SLEEP_MS and drained)
        allocs.append(a1 - a0)
        outs.append(out)
        ev = torch.cuda.Event()
        ev.record()
        if prev is not None:
            prev.synchronize()  # one step ahead: wait for the previous step's work
        prev = ev
    torch.cuda.synchronize()
    allocs1, alloc_us1 = host_allocs()
    correct = all(
        torch.equal(o.cpu(), expected(name, lst, x).to(o.dtype)) and o.device.type == "cuda"
        for o, lst, x in zip(outs, lists, xs)
    )
    return {
        "first_ms": host_ms[0],
        "median_ms": median(host_ms),
        "max_ms": max(host_ms),
        "max_at_n": ns[host_ms.index(max(host_ms))],
        "blocked_steps": sum(blocked),
        "queue_drained_steps": sum(waited),
        "over_1ms_steps": sum(h > 1.0 for h in host_ms),
        "host_allocs": allocs1 - allocs0 if allocs0 >= 0 else None,
        "host_alloc_ms": (alloc_us1 - alloc_us0) / 1e3 if alloc_us0 >= 0 else None,
        "alloc_steps": [i for i, a in enumerate(allocs) if a > 0],
        "host_ms": host_ms,
        "correct": correct,
    }


def child(name: str, dtype: str, max_n: int, steps: int) -> None:
    require_cuda()
    dt = DTYPES[dtype]
    # Warm CUDA itself (context, sleep kernel, a device allocation) without touching
    # pinned memory or host-to-device copies: the first call below is cold for those.
    cycles_per_ms()
    torch.zeros(1, device="cuda").add_(1)
    torch.cuda.synchronize()
    ns = sizes(max_n, steps) if name in GROWING else [3] * steps
    fn = make_variant(name, dt, max_n)
    cold = loop(fn, name, ns, dt)
    warm = loop(fn, name, ns, dt)
    print("RESULT " + json.dumps({"variant": name, "dtype": dtype, "max_n": max_n, "steps": steps,
                                  "cold": cold, "warm": warm}))


def run_child(name, dtype, max_n, steps, timeout):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--dtype", dtype, "--max-n", str(max_n),
           "--steps", str(steps)]
    t0 = now_ms()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"variant": name, "dtype": dtype, "max_n": max_n, "error": f"timed out after {timeout} s"}
    wall = (now_ms() - t0) / 1e3
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["process_wall_s"] = wall
            return r
    return {"variant": name, "dtype": dtype, "max_n": max_n, "error": (p.stderr or p.stdout)[-2000:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu-out")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated variants")
    ap.add_argument("--child")
    ap.add_argument("--dtype", default="int64")
    ap.add_argument("--max-n", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--large-n", type=int, default=262144, help="max_n of the large sweep (0: skip)")
    ap.add_argument("--suffix", default="", help="appended to the output file names")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.dtype, args.max_n, args.steps)
        return
    require_cuda()
    os.makedirs(args.out, exist_ok=True)
    env = environment()
    steps = 40 if args.quick else args.steps
    only = set(filter(None, args.only.split(",")))
    plan = [(v, "int64", args.max_n) for v in GROWING]
    plan += [(v, "int32", args.max_n) for v in ("b_tensor_pin", "c_pin_memory", "d_staging_double")]
    if args.large_n:
        plan += [(v, "int64", args.large_n) for v in ("a_tensor_device", "b_tensor_pin", "c_pin_memory",
                                                       "d_staging_double", "f_pageable_nb")]
    plan += [(v, "int64", 3) for v in CONSTANT]
    if only:
        plan = [p for p in plan if p[0] in only]
    ver = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    gpu = env["gpu"]
    tag = next((k.lower() for k in ("H200", "H100", "A100", "B200") if k in gpu), "gpu")
    stem = f"pin-alloc-{tag}-torch{ver}{args.suffix}"
    result = {"environment": env, "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
              "sleep_ms": SLEEP_MS, "steps": steps, "results": []}
    results = result["results"]
    for name, dtype, max_n in plan:
        r = run_child(name, dtype, max_n, steps, timeout=120)
        results.append(r)
        write(args.out, stem, result)  # after every process: a killed run keeps what it measured
        if "error" in r:
            print(f"{name} {dtype} {max_n}: ERROR {r['error']}", flush=True)
            continue
        c, w = r["cold"], r["warm"]
        print(f"{name:18s} {dtype} n<={max_n:<7d} cold first {c['first_ms']:7.3f} med {c['median_ms']:6.3f} max {c['max_ms']:7.3f} "
              f"blk {c['blocked_steps']:3d} allocs {c['host_allocs']} | warm med {w['median_ms']:6.3f} max {w['max_ms']:7.3f} "
              f"blk {w['blocked_steps']:3d} allocs {w['host_allocs']} | ok {c['correct'] and w['correct']} "
              f"({r['process_wall_s']:.1f} s)", flush=True)
    write(args.out, stem, result)


def write(out_dir: str, stem: str, result: dict) -> None:
    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(out_dir, stem + ".md"), "w") as f:
        f.write(render(result))


def render(result: dict) -> str:
    env = result["environment"]
    out = [
        f"# Per-call pinned allocation against alternatives: {env.get('gpu')}, torch {env['torch']}",
        "",
        (f"Date: {env['date_utc']}. GPU: {env.get('gpu')} (driver {env.get('driver')}), torch {env['torch']} "
        f"(CUDA {env['cuda_runtime']}), Python {env['python']}."),
        "",
        f"Command: `{result['command']}` (script: `benchmarks/gpu/pin_alloc_probe.py`; its docstring defines each variant).",
        "",
        (f"Each row is one fresh process: {result['steps']} steps, element count growing geometrically from 1 to max n "
        f"(constant tables: fixed), {result['sleep_ms']:.0f} ms of GPU work queued before each timed call, the host one "
        "step ahead. `first` is the first call of the process (cold: no pinned block cached, first copy of its kind). "
        "cold = first pass over the sizes, warm = second pass in the same process. **blocked** = calls that took over "
        "half the sleep (host time lost, whatever the cause); `drained` = blocked calls that returned only after this "
        "step's sleep had finished (they waited for the GPU queue). `allocs` = cudaHostAlloc calls during the pass "
        "(`torch.cuda.host_memory_stats()['num_host_alloc']`), `alloc ms` their total time as the allocator recorded it."),
        "",
        ("| variant | dtype | max n | first ms | cold median | cold max (at n) | cold blocked (drained) | cold allocs (alloc ms) "
        "| warm median | warm max | warm blocked | warm allocs | correct |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["results"]:
        if "error" in r:
            out.append(f"| `{r['variant']}` | {r['dtype']} | {r['max_n']} | error: {r['error'][:200]!r} |")
            continue
        c, w = r["cold"], r["warm"]
        am = "" if c["host_alloc_ms"] is None else f" ({c['host_alloc_ms']:.2f})"
        out.append(
            f"| `{r['variant']}` | {r['dtype']} | {r['max_n']} | {c['first_ms']:.3f} | {c['median_ms']:.3f} | "
            f"{c['max_ms']:.3f} ({c['max_at_n']}) | {c['blocked_steps']}/{r['steps']} ({c['queue_drained_steps']}) | {c['host_allocs']}{am} | "
            f"{w['median_ms']:.3f} | {w['max_ms']:.3f} | {w['blocked_steps']}/{r['steps']} | {w['host_allocs']} | "
            f"{c['correct'] and w['correct']} |"
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
