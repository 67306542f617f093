"""When does a `non_blocking=True` host-to-device copy block the host?

    python benchmarks/gpu/small_copy_probe.py --out DIR [--quick]

For each size (4 KB .. 16 MB) and each copy form

  pageable_to      cpu_t.to("cuda", non_blocking=True)       (pageable source)
  pageable_copy_   buf.copy_(cpu_t, non_blocking=True)       (pageable source)
  pinned_to        pinned_t.to("cuda", non_blocking=True)
  pinned_copy_     buf.copy_(pinned_t, non_blocking=True)
  blocking_to      cpu_t.to("cuda")                          (control: must block)

it times the host call in three patterns:

  burst1/8/32  queue a SLEEP_MS sleep kernel, then 1, 8 or 32 copies back to back
               (distinct sources); the burst blocked when its total host time is
               over half the sleep's measured length.
  steady       32 times: queue a 2 ms sleep, then one copy (a serving loop whose
               GPU is always ahead); a copy blocked when it took over 1 ms.
  idle         the burst with nothing queued (the pure host cost of the copies).

Needs only torch (and a CUDA GPU). Writes small-copy-<gpu>-torch<ver>.json/.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from gpu_busy import Busy, environment, median, now_ms, require_cuda  # noqa: E402

KB = 1024
SIZES = [4 * KB, 16 * KB, 64 * KB, 128 * KB, 256 * KB, 512 * KB, 1024 * KB, 2048 * KB, 4096 * KB, 16384 * KB]
MODES = ["pageable_to", "pageable_copy_", "pinned_to", "pinned_copy_", "blocking_to"]
BURSTS = [1, 8, 32]
SLEEP_MS = 50.0
STEADY_SLEEP_MS = 2.0
STEADY_STEPS = 32


def human(nbytes: int) -> str:
    if nbytes >= 1024 * 1024:
        return f"{nbytes / (1024 * 1024):g} MB"
    return f"{nbytes / 1024:g} KB"


def slug(name: str) -> str:
    for key in ("H200", "H100", "A100", "L40S", "B200"):
        if key in name:
            return key.lower()
    return "".join(c for c in name.lower() if c.isalnum())[:16]


class Case:
    """Sources and destinations for one (mode, size, burst length)."""

    def __init__(self, mode: str, nbytes: int, count: int):
        self.mode = mode
        n = nbytes // 4
        pinned = mode.startswith("pinned")
        gen = torch.Generator().manual_seed(nbytes + count)
        self.src = []
        for _ in range(count):
            t = torch.randint(0, 1 << 30, (n,), dtype=torch.int32, generator=gen)
            self.src.append(t.pin_memory() if pinned else t)
        self.dst = [torch.empty(n, dtype=torch.int32, device="cuda") for _ in range(count)] if mode.endswith("copy_") else None
        self.out = []

    def copy(self, i: int) -> None:
        if self.mode in ("pageable_to", "pinned_to"):
            self.out.append(self.src[i].to("cuda", non_blocking=True))
        elif self.mode == "blocking_to":
            self.out.append(self.src[i].to("cuda"))
        else:
            self.dst[i].copy_(self.src[i], non_blocking=True)

    def check(self) -> bool:
        torch.cuda.synchronize()
        got = self.out if self.dst is None else self.dst
        ok = all(torch.equal(g.cpu(), s) for g, s in zip(got, self.src))
        self.out = []
        return ok


def run_burst(case: Case, count: int, sleep_ms: float | None) -> dict:
    torch.cuda.synchronize()
    busy = Busy(sleep_ms) if sleep_ms else None
    t_queue = now_ms()
    per_copy, waited_at = [], None
    for i in range(count):
        t0 = now_ms()
        case.copy(i)
        t1 = now_ms()
        per_copy.append(t1 - t0)
        if busy is not None and waited_at is None:
            remaining = sleep_ms - (t0 - t_queue)
            if remaining > 1.0 and (t1 - t0) > 0.5 * remaining and busy.done():
                waited_at = i
    total = sum(per_copy)
    actual = busy.actual_ms() if busy else None
    ok = case.check()
    return {"total_ms": total, "per_copy_ms": per_copy, "sleep_actual_ms": actual, "first_wait_index": waited_at, "correct": ok}


def run_steady(case: Case, steps: int) -> dict:
    torch.cuda.synchronize()
    per_copy = []
    for i in range(steps):
        Busy(STEADY_SLEEP_MS)
        t0 = now_ms()
        case.copy(i)
        per_copy.append(now_ms() - t0)
    ok = case.check()
    return {"per_copy_ms": per_copy, "correct": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="gpu-out")
    ap.add_argument("--quick", action="store_true", help="fewer trials (smoke test)")
    ap.add_argument("--sizes", default="", help="comma-separated sizes in KB (default: 4 KB .. 16 MB)")
    ap.add_argument("--suffix", default="", help="appended to the output file names")
    args = ap.parse_args()
    require_cuda()
    os.makedirs(args.out, exist_ok=True)
    env = environment()
    trials = {1: 2, 8: 1, 32: 1} if args.quick else {1: 5, 8: 3, 32: 3}
    steady_trials = 1 if args.quick else 3
    sizes = SIZES[:3] + SIZES[-1:] if args.quick else SIZES
    if args.sizes:
        sizes = [int(float(k) * KB) for k in args.sizes.split(",")]
    rows = []
    for nbytes in sizes:
        for mode in MODES:
            for count in BURSTS:
                if mode == "blocking_to" and count != 1:
                    continue
                case = Case(mode, nbytes, count)
                run_burst(case, count, None)  # warm-up: GPU allocator, first-copy set-up
                idle = [run_burst(case, count, None) for _ in range(trials[count])]
                busy = [run_burst(case, count, SLEEP_MS) for _ in range(trials[count])]
                blocked = [b["total_ms"] > 0.5 * b["sleep_actual_ms"] for b in busy]
                copies = [c for b in busy for c in b["per_copy_ms"]]
                row = {
                    "mode": mode, "bytes": nbytes, "pattern": f"burst{count}", "copies": count,
                    "trials": len(busy),
                    "sleep_ms_actual_median": median([b["sleep_actual_ms"] for b in busy]),
                    "busy_total_ms_median": median([b["total_ms"] for b in busy]),
                    "busy_total_ms_max": max(b["total_ms"] for b in busy),
                    "busy_per_copy_ms_median": median(copies),
                    "busy_per_copy_ms_max": max(copies),
                    "idle_total_ms_median": median([b["total_ms"] for b in idle]),
                    "idle_per_copy_ms_median": median([c for b in idle for c in b["per_copy_ms"]]),
                    "blocked_trials": sum(blocked),
                    "blocked": sum(blocked) * 2 > len(blocked),
                    "first_wait_index": [b["first_wait_index"] for b in busy],
                    "correct": all(b["correct"] for b in busy + idle),
                    "raw_busy": busy,
                }
                rows.append(row)
                print(f"{mode:15s} {human(nbytes):>6s} burst{count:<3d} busy total {row['busy_total_ms_median']:8.3f} ms "
                      f"(max {row['busy_total_ms_max']:8.3f}) idle {row['idle_total_ms_median']:7.3f} ms "
                      f"blocked {row['blocked_trials']}/{row['trials']} wait@{row['first_wait_index']}", flush=True)
            if mode == "blocking_to":
                continue
            case = Case(mode, nbytes, STEADY_STEPS)
            run_steady(case, 4)
            runs = [run_steady(case, STEADY_STEPS) for _ in range(steady_trials)]
            copies = [c for r in runs for c in r["per_copy_ms"]]
            nblocked = sum(c > 0.5 * STEADY_SLEEP_MS for c in copies)
            rows.append({
                "mode": mode, "bytes": nbytes, "pattern": "steady", "copies": STEADY_STEPS, "trials": steady_trials,
                "steady_sleep_ms": STEADY_SLEEP_MS,
                "busy_per_copy_ms_median": median(copies), "busy_per_copy_ms_max": max(copies),
                "blocked_copies": nblocked, "total_copies": len(copies),
                "blocked": nblocked * 2 > len(copies),
                "correct": all(r["correct"] for r in runs),
                "raw_per_copy_ms": [r["per_copy_ms"] for r in runs],
            })
            print(f"{mode:15s} {human(nbytes):>6s} steady    per copy median {median(copies):7.3f} ms max {max(copies):7.3f} "
                  f"blocked {nblocked}/{len(copies)}", flush=True)
    ver = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    stem = f"small-copy-{slug(env['gpu'])}-torch{ver}{args.suffix}"
    result = {"environment": env, "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
              "sleep_ms": SLEEP_MS, "steady_sleep_ms": STEADY_SLEEP_MS, "rows": rows}
    with open(os.path.join(args.out, stem + ".json"), "w") as f:
        json.dump(result, f, indent=1)
    with open(os.path.join(args.out, stem + ".md"), "w") as f:
        f.write(render(result))
    print(render_summary(result))


def thresholds(rows: list[dict]) -> dict:
    """Smallest size at which each (mode, pattern) blocked in most trials."""
    out = {}
    for r in rows:
        key = (r["mode"], r["pattern"])
        if r["blocked"] and (key not in out or r["bytes"] < out[key]):
            out[key] = r["bytes"]
    return out


def render_summary(result: dict) -> str:
    rows = result["rows"]
    th = thresholds(rows)
    patterns = ["burst1", "burst8", "burst32", "steady"]
    lines = ["| copy | " + " | ".join(patterns) + " |", "|---|" + "---|" * len(patterns)]
    for mode in MODES:
        cells = []
        for p in patterns:
            present = any(r["mode"] == mode and r["pattern"] == p for r in rows)
            cells.append("-" if not present else (human(th[(mode, p)]) if (mode, p) in th else "never"))
        lines.append(f"| `{mode}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render(result: dict) -> str:
    env = result["environment"]
    rows = result["rows"]
    out = [
        f"# Host blocking of small host-to-device copies: {env.get('gpu')}, torch {env['torch']}",
        "",
        (f"Date: {env['date_utc']}. GPU: {env.get('gpu')} (driver {env.get('driver')}), torch {env['torch']} "
        f"(CUDA {env['cuda_runtime']}), Python {env['python']}."),
        "",
        f"Command: `{result['command']}` (script: `benchmarks/gpu/small_copy_probe.py`).",
        "",
        (f"burstN: a {result['sleep_ms']:.0f} ms sleep kernel is queued, then N copies of the size are issued back to back "
        "(distinct sources); host ms is the time to issue all N. The burst **blocked** when that time exceeded half the "
        "sleep's measured length in most trials. `wait@` lists, per trial, the index of the first copy that returned only "
        "after the queue drained (none: no copy waited). steady: 32 iterations of (queue a "
        f"{result['steady_sleep_ms']:.0f} ms sleep, issue one copy); a copy blocked when it took over "
        f"{result['steady_sleep_ms'] / 2:.0f} ms. idle: the same burst with nothing queued. Every copy's result was checked "
        "against its source."),
        "",
        "## Smallest size that blocked",
        "",
        render_summary(result),
        "## burst results",
        "",
        "| copy | size | N | busy host ms (median / max of trials) | per copy median / max | idle host ms | blocked trials | wait@ | correct |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if r["pattern"] == "steady":
            continue
        out.append(
            f"| `{r['mode']}` | {human(r['bytes'])} | {r['copies']} | {r['busy_total_ms_median']:.3f} / {r['busy_total_ms_max']:.3f} | "
            f"{r['busy_per_copy_ms_median']:.3f} / {r['busy_per_copy_ms_max']:.3f} | {r['idle_total_ms_median']:.3f} | "
            f"{'**' if r['blocked'] else ''}{r['blocked_trials']}/{r['trials']}{'**' if r['blocked'] else ''} | "
            f"{','.join('-' if w is None else str(w) for w in r['first_wait_index'])} | {r['correct']} |"
        )
    out += [
        "",
        "## steady results (2 ms queued before each copy)",
        "",
        "| copy | size | per copy host ms median | max | blocked copies | correct |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r["pattern"] != "steady":
            continue
        b = f"{r['blocked_copies']}/{r['total_copies']}"
        out.append(
            f"| `{r['mode']}` | {human(r['bytes'])} | {r['busy_per_copy_ms_median']:.3f} | {r['busy_per_copy_ms_max']:.3f} | "
            f"{'**' + b + '**' if r['blocked'] else b} | {r['correct']} |"
        )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
