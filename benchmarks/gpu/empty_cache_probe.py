"""Do the device-generic spellings of `empty_cache()` wait for the GPU as `torch.cuda.empty_cache()` does?

    python benchmarks/gpu/empty_cache_probe.py --out DIR

Each case queues a SLEEP_MS sleep kernel (the GPU is busy), then calls one of the
functions with or without a freed block in the caching allocator, and the host time of
the call is taken, REPEATS times; the median is reported. A call that waits for the GPU
takes about the queued time; one that does not, microseconds. It decides SL401's claim
that `torch.accelerator.empty_cache()` (the device-generic spelling vLLM's V2 model runner
uses) is the same wait as `torch.cuda.empty_cache()`: `cudaFree` of a cached block; and that
`torch.get_device_module()` (SGLang's spelling) is the module `torch.cuda` itself.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from gpu_busy import host_ms_behind_queue, probe_folder, queue_report, save_report  # noqa: E402

SLEEP_MS = 30.0
REPEATS = 5


def _cached_block() -> None:
    """Leave a freed 64 MB block in the caching allocator."""
    block = torch.empty(64 * 1024 * 1024, dtype=torch.uint8, device="cuda")
    del block


def measure() -> list[dict]:
    functions = {"torch.cuda.empty_cache()": torch.cuda.empty_cache,
                 "torch.accelerator.empty_cache()": torch.accelerator.empty_cache,
                 "torch.get_device_module().empty_cache()": torch.get_device_module().empty_cache}
    out = []
    for name, call in functions.items():
        for cached in (True, False):
            def prepare(cached: bool = cached) -> None:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
                if cached:
                    _cached_block()
                torch.cuda.synchronize()

            host = host_ms_behind_queue(call, SLEEP_MS, REPEATS, prepare)
            out.append({"case": name, "cached_block": cached, "host_ms": round(host, 3), "queued_ms": SLEEP_MS,
                        "waited": host > SLEEP_MS / 2})
    return out


def main() -> None:
    out = probe_folder(__doc__.splitlines()[0])
    rows = measure()
    report = queue_report(rows, SLEEP_MS, REPEATS,
                          # SGLang's device-generic spelling: on a CUDA machine this is the module `torch.cuda` itself.
                          get_device_module_is_torch_cuda=torch.get_device_module() is torch.cuda
                          and torch.get_device_module("cuda:0") is torch.cuda)
    table = [f"`torch.get_device_module() is torch.cuda`: {report['get_device_module_is_torch_cuda']}", "",
             "| call | a freed block cached | host ms (median of 5) | waited for the GPU |", "|---|---|---:|---|"]
    table += [f"| `{r['case']}` | {'yes' if r['cached_block'] else 'no'} | {r['host_ms']} | "
              f"{'yes' if r['waited'] else 'no'} |" for r in rows]
    save_report(out, "empty-cache", report, f"# `empty_cache()` behind a {SLEEP_MS:g} ms queue", table)


if __name__ == "__main__":
    main()
