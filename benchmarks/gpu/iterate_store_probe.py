"""Do builtins that iterate a GPU tensor, and scalar stores through integer indices, make the host wait?

    python benchmarks/gpu/iterate_store_probe.py --out DIR

Each case runs behind a freshly queued SLEEP_MS sleep kernel (the GPU is busy) and the host
time of the one call is taken, REPEATS times; the median is reported. A call that waits for
the GPU takes about the queued time; one that does not, microseconds. It decides two rules'
claims:

- SL104: `any(t)`, `all(t)` and `sorted(t)` of a 1-D GPU tensor read each element on the
  host (`Tensor.__bool__` / `__lt__`), as `max(t)` does; so do `sorted()` of tuples led by a
  GPU element and `sorted`/`list.sort`/`max` with a key returning one;
- SL302: a Python scalar stored through an integer index tensor waits whether the index is
  on the GPU (the value is copied) or on the CPU (the index is copied), while a CPU index
  that is 0-dim into a 2-D tensor selects a row and is filled without a copy.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

from gpu_busy import waits_probe  # noqa: E402

SLEEP_MS = 30.0
REPEATS = 5


def cases() -> dict:
    zeros = torch.zeros(16, device="cuda")  # `any` reads every element: none is true
    ones = torch.ones(16, device="cuda")  # `all` reads every element
    shuffled = torch.randperm(16, device="cuda").float()
    flat = torch.zeros(4096, device="cuda")
    grid = torch.zeros(64, 64, device="cuda")
    idx_gpu = torch.tensor([1, 5, 9], device="cuda")
    idx_cpu = torch.tensor([1, 5, 9])
    idx_cpu_0d = torch.tensor(3)
    rows = torch.tensor([1, 2, 3], device="cuda")
    cols = torch.tensor([4, 5, 6], device="cuda")
    return {
        "any(zeros) (1-D GPU, 16 elements)": lambda: any(zeros),
        "all(ones) (1-D GPU, 16 elements)": lambda: all(ones),
        "sorted(shuffled) (1-D GPU, 16 elements)": lambda: sorted(shuffled),
        "any(v > 0 for v in zeros)": lambda: any(v > 0 for v in zeros),
        "sorted([(w, i) for i, w in enumerate(shuffled)]) (tuples led by GPU 0-dim)":
            lambda: sorted([(w, i) for i, w in enumerate(shuffled)]),
        "sorted(range(16), key=lambda i: shuffled[i])": lambda: sorted(range(16), key=lambda i: shuffled[i]),
        "parts.sort(key=lambda p: sum(shuffled[i] for i in p))":
            lambda: [[0, 1], [2, 3], [4, 5], [6, 7]].sort(key=lambda p: sum(shuffled[i] for i in p)),
        "max(range(16), key=lambda i: shuffled[i])": lambda: max(range(16), key=lambda i: shuffled[i]),
        "sorted([(i, w) for i, w in enumerate(shuffled)]) (int first: no read)":
            lambda: sorted([(i, w) for i, w in enumerate(shuffled)]),
        "zeros.any() (no host read)": lambda: zeros.any(),
        "flat[idx_gpu] = 0 (GPU int64 index)": lambda: flat.__setitem__(idx_gpu, 0),
        "flat[idx_cpu] = 0 (CPU int64 index)": lambda: flat.__setitem__(idx_cpu, 0),
        "grid[rows, cols] = 1e9 (GPU indices)": lambda: grid.__setitem__((rows, cols), 1e9),
        "flat[idx_cpu_0d] = 0 (0-dim CPU index, 1-D)": lambda: flat.__setitem__(idx_cpu_0d, 0),
        "grid[idx_cpu_0d] = 0 (0-dim CPU index, 2-D: a row)": lambda: grid.__setitem__(idx_cpu_0d, 0),
        "flat[3] = 0 (int, 1-D)": lambda: flat.__setitem__(3, 0),
        "flat[idx_gpu] = torch.full((), 0., device=...) (the fix)":
            lambda: flat.__setitem__(idx_gpu, torch.full((), 0.0, device="cuda")),
    }


def main() -> None:
    title = f"# Iterating builtins and index stores behind a {SLEEP_MS:g} ms queue"
    waits_probe(__doc__.splitlines()[0], "iterate-store", title, cases, SLEEP_MS, REPEATS)


if __name__ == "__main__":
    main()
