"""Do legacy GPU tensor types given data make the host wait?

    python benchmarks/gpu/legacy_type_probe.py --out DIR

Each case runs behind a freshly queued SLEEP_MS sleep kernel (the GPU is busy) and
the host time of the one call is taken, REPEATS times; the median is reported. A call
that waits for the GPU takes about the queued time; one that does not, microseconds.
It decides SL304's claim for training code (DeepSpeed's `get_accelerator().FloatTensor(
[float(total_norm)])`, `ByteTensor([overflow])`): a `torch.cuda.*Tensor` given a list or
tuple of host values builds the tensor on the host and copies it with a blocking copy,
as `torch.tensor(data, device="cuda")` does, while given sizes it only allocates; and
`torch.Tensor([t0, t1])` of 0-dim GPU tensors reads each element.
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
    total, overflow, n = 3.5, False, 1024
    t0 = torch.ones((), device="cuda")
    t1 = torch.ones((), device="cuda")
    return {
        "torch.cuda.FloatTensor([float(total)])": lambda: torch.cuda.FloatTensor([float(total)]),
        "torch.cuda.ByteTensor([overflow])": lambda: torch.cuda.ByteTensor([overflow]),
        "torch.cuda.LongTensor((1, 2, 3)) (a tuple)": lambda: torch.cuda.LongTensor((1, 2, 3)),
        "torch.cuda.FloatTensor(n) (a size)": lambda: torch.cuda.FloatTensor(n),
        "torch.cuda.FloatTensor(2, 3) (sizes)": lambda: torch.cuda.FloatTensor(2, 3),
        "torch.tensor([total], device='cuda') (reference)": lambda: torch.tensor([total], device="cuda"),
        "torch.Tensor([t0, t1]) (0-dim GPU tensors)": lambda: torch.Tensor([t0, t1]),
        "torch.full((1,), total, device='cuda') (reference)": lambda: torch.full((1,), total, device="cuda"),
    }


def main() -> None:
    title = f"# Legacy GPU tensor types behind a {SLEEP_MS:g} ms queue"
    waits_probe(__doc__.splitlines()[0], "legacy-type", title, cases, SLEEP_MS, REPEATS)


if __name__ == "__main__":
    main()
