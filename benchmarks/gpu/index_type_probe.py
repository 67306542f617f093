"""Do legacy tensor-type conversions and list indexes of a GPU tensor make the host wait?

    python benchmarks/gpu/index_type_probe.py --out DIR

Each case runs behind a freshly queued SLEEP_MS sleep kernel (the GPU is busy) and
the host time of the one call is taken, REPEATS times; the median is reported. A call
that waits for the GPU takes about the queued time; one that does not, microseconds.
It decides two rules' claims:

- SL103: `gpu_t.type(torch.BoolTensor)` (a legacy CPU type) is a copy to the host, and
  `gpu_t.type(torch.cuda.BoolTensor)` / `gpu_t.type(torch.bool)` are not;
- SL302: `gpu_t[ids]` with `ids` a Python list of ints copies the index to the GPU
  with a blocking copy, while a list that holds GPU tensors is read as a tuple of
  indices (no host data, no wait).
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
    x = torch.arange(4096, device="cuda", dtype=torch.float32)
    grid = torch.arange(64 * 64, device="cuda", dtype=torch.float32).reshape(64, 64)
    mask = x > 100
    ids = [0, 5, 7, 11]
    rows = torch.tensor([1, 2, 3], device="cuda")
    cols = torch.tensor([4, 5, 6], device="cuda")
    return {
        "mask.type(torch.BoolTensor)": lambda: mask.type(torch.BoolTensor),
        "x.type(torch.LongTensor)": lambda: x.type(torch.LongTensor),
        "x.type('torch.FloatTensor')": lambda: x.type("torch.FloatTensor"),
        "mask.type(torch.cuda.BoolTensor)": lambda: mask.type(torch.cuda.BoolTensor),
        "x.type(torch.float16)": lambda: x.type(torch.float16),
        "x[ids] (list of ints)": lambda: x[ids],
        "x[[0, 5, 7]] (literal)": lambda: x[[0, 5, 7]],
        "grid[[rows, cols]] (list of GPU tensors)": lambda: grid[[rows, cols]],
        "x[[rows]] (list of one GPU tensor)": lambda: x[[rows]],
        "x[rows] (GPU tensor)": lambda: x[rows],
    }


def main() -> None:
    title = f"# Legacy types and list indexes behind a {SLEEP_MS:g} ms queue"
    waits_probe(__doc__.splitlines()[0], "index-type", title, cases, SLEEP_MS, REPEATS)


if __name__ == "__main__":
    main()
