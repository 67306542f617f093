"""Verification cases: for each rule with a fix, a before snippet and its inputs.

Each `before` is a module defining `run(**inputs)`. It is written the way the
linter must see it (tensors created with `device=`, `_cpu` mirrors named as
such) so that the real fixer rewrites it; the after code is never written here.
Inputs are seeded and cover sizes 0 and 1, several dtypes and negative indices.
"""

from __future__ import annotations

import random
from typing import Any

from sync_lint.runtime.verify import Case, InputMaker

INT_DTYPES = ("int32", "int64")
FLOAT_DTYPES = ("float16", "bfloat16", "float32")
SIZES = (0, 1, 2, 7, 1000)


def _torch() -> Any:
    import torch

    return torch


def _values(rng: random.Random, n: int, dtype_name: str, device: str, low: int = -50, high: int = 50) -> Any:
    torch = _torch()
    dtype = getattr(torch, dtype_name)
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    if dtype.is_floating_point:
        data = torch.randn(n, generator=gen) * 10
    else:
        data = torch.randint(low, high, (n,), generator=gen)
    return data.to(dtype).to(device)


# --- SL301: t[i] = v -> t[i].fill_(v) -------------------------------------------------------
# The dtype is written into the snippet: the fix is safe for integer tensors, and for
# floating tensors only with a literal in range (fill_ raises on overflow where the
# setitem stores inf), so each dtype is its own case.


def _sl301_source(dtype: str, value: str, rank: int) -> str:
    shape = "(values.shape[0],)" if rank == 1 else "(values.shape[0], values.shape[1])"
    index = "i" if rank == 1 else "i, j"
    params = "values, i: int, v: int" if rank == 1 else "values, i: int, j: int, v: int"
    return f"""\
import torch


def run({params}):
    t = torch.zeros({shape}, dtype=torch.{dtype}, device=values.device)
    t.copy_(values)
    t[{index}] = {value}
    return t
"""


def _sl301_inputs(dtype: str, rank: int) -> InputMaker:
    def make(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
        if rank == 1:
            n = SIZES[trial % len(SIZES)]
            values = _values(rng, n, dtype, device)
            i = rng.randrange(-n, n) if n else rng.choice([0, -1])  # n == 0: IndexError both ways
            return {"values": values, "i": i, "v": rng.randrange(-1000, 1000)}
        rows, cols = rng.choice([(1, 1), (3, 4), (0, 2), (64, 3)])
        values = _values(rng, rows * cols, dtype, device).reshape(rows, cols)
        i = rng.randrange(-rows, rows) if rows else 0
        return {"values": values, "i": i, "j": rng.randrange(-cols, cols), "v": rng.randrange(-1000, 1000)}

    return make


SL301_HALF_UNSAFE = """\
import torch


def run(values, i: int, v: float):
    t = torch.zeros((values.shape[0],), dtype=torch.float16, device=values.device)
    t.copy_(values)
    t[i] = v
    return t
"""


def _half_in_range(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    n = SIZES[1:][trial % 4]
    return {"values": _values(rng, n, "float16", device), "i": rng.randrange(-n, n),
            "v": rng.choice([rng.uniform(-65504, 65504), 0.5, -0.0, 65504.0])}


def _half_overflow(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    return {"values": _values(rng, 4, "float16", device), "i": 1, "v": 1e6}


# --- SL302: t[idx] = v with a GPU index ----------------------------------------------------------

SL302_BEFORE = """\
import torch


def run(values, idx_gpu, v: int):
    t = torch.zeros((values.shape[0],), dtype=torch.int64, device=values.device)
    t.copy_(values)
    index = idx_gpu.long()
    t[index] = v
    return t
"""


def _sl302(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    n = rng.choice([1, 2, 7, 1000])
    k = rng.choice([0, 1, 3, n])
    idx = torch.tensor([rng.randrange(-n, n) for _ in range(k)], dtype=torch.int64, device=device)
    return {"values": _values(rng, n, "int64", device), "idx_gpu": idx, "v": rng.randrange(-1000, 1000)}


# --- SL303: pageable host-to-device copies ----------------------------------------------------------

SL303_CUDA = """\
import torch


def run(host_cpu):
    return host_cpu.cuda()
"""

SL303_COPY = """\
import torch


def run(host_cpu):
    buf = torch.empty((host_cpu.shape[0],), dtype=host_cpu.dtype, device="cuda")
    buf.copy_(host_cpu)
    return buf
"""


def _host_tensor(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    n = rng.choice([1, 7, 1000, 65536])
    dtype = (INT_DTYPES + FLOAT_DTYPES)[trial % 5]
    return {"host_cpu": _values(rng, n, dtype, "cpu")}


# --- SL304: torch.tensor(list, device=...) ------------------------------------------------------------

SL304_LIST = """\
import torch


def run(data):
    return torch.tensor(data, dtype=torch.int32, device="cuda")
"""


def _host_list(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    n = rng.choice([0, 1, 5, 300])
    return {"data": [rng.randrange(-(2**31), 2**31) for _ in range(n)]}


# --- SL204: bincount(x, minlength=n) -> scatter_add_ ---------------------------------------------------

SL204_BEFORE = """\
import torch


def run(values, n):
    x = torch.zeros((values.shape[0],), dtype=torch.int64, device=values.device)
    x.copy_(values)
    return torch.bincount(x, minlength=n)
"""


def _sl204(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    n_bins = rng.choice([1, 4, 64])
    size = SIZES[trial % len(SIZES)]
    return {"values": _values(rng, size, "int64", device, 0, n_bins), "n": n_bins}


def _sl204_broken(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    return {"values": _values(rng, 8, "int64", device, 0, 10), "n": 4}  # values reach past n


# --- SL207: torch.linalg.inv -> inv_ex(...)[0] ------------------------------------------------------------

SL207_BEFORE = """\
import torch


def run(values):
    a = torch.zeros((values.shape[0], values.shape[1]), dtype=values.dtype, device=values.device)
    a.copy_(values)
    return torch.linalg.inv(a)
"""


def _invertible(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    n = rng.choice([1, 2, 5, 32])
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    matrix = torch.eye(n) * n + torch.randn(n, n, generator=gen) * 0.1
    return {"values": matrix.to(device)}


def _singular(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    return {"values": torch.zeros(3, 3, device=device)}


# --- SL201: nonzero -> nonzero_static with a hinted bound ----------------------------------------------------

SL201_BEFORE = """\
import torch


def run(values, k):
    x = torch.zeros((values.shape[0],), dtype=values.dtype, device=values.device)
    x.copy_(values)
    return torch.nonzero(x)  # sync-lint: nonzero-size=k
"""


def _exactly_k_nonzero(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    n = rng.choice([1, 8, 500])
    k = rng.randrange(0, n + 1)
    values = torch.zeros(n, dtype=torch.int64)
    values[torch.randperm(n, generator=torch.Generator().manual_seed(rng.randrange(2**31)))[:k]] = 1
    return {"values": values.to(device), "k": k}


def _fewer_than_k(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    return {"values": torch.tensor([0, 1, 0, 1], device=device), "k": 3}


# --- SL206: one_hot with a hinted num_classes ---------------------------------------------------------------

SL206_BEFORE = """\
import torch
import torch.nn.functional as F


def run(values, num_labels):
    labels = torch.zeros((values.shape[0],), dtype=torch.int64, device=values.device)
    labels.copy_(values)
    return F.one_hot(labels)  # sync-lint: num-classes=num_labels
"""


def _labels_reaching_max(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    c = rng.choice([1, 3, 50])
    n = rng.choice([1, 9, 200])
    values = torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(rng.randrange(2**31)))
    values[rng.randrange(n)] = c - 1  # precondition: the hinted count equals max + 1
    return {"values": values.to(device), "num_labels": c}


def _labels_below_max(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    return {"values": torch.tensor([0, 1, 1], device=device), "num_labels": 5}


# --- SL205: repeat_interleave with a host mirror of the repeats ------------------------------------------------

SL205_BEFORE = """\
import torch


def run(values, repeats, reps_cpu):
    x = torch.zeros((values.shape[0],), dtype=values.dtype, device=values.device)
    x.copy_(values)
    reps = torch.zeros((repeats.shape[0],), dtype=torch.int64, device=values.device)
    reps.copy_(repeats)
    return torch.repeat_interleave(x, reps)
"""


def _repeats(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    n = rng.choice([1, 4, 100])
    dtype = (INT_DTYPES + FLOAT_DTYPES)[trial % 5]
    reps = torch.tensor([rng.randrange(0, 4) for _ in range(n)], dtype=torch.int64)
    return {"values": _values(rng, n, dtype, device), "repeats": reps.to(device), "reps_cpu": reps}


def _stale_repeats(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    reps = torch.tensor([1, 2, 3])
    return {"values": _values(rng, 3, "float32", device), "repeats": reps.to(device), "reps_cpu": reps + 1}


# --- SL501: num_computed_tokens_cpu -> derived on the device ------------------------------------------------------

SL501_BEFORE = """\
import torch


class Metadata:
    def __init__(self, seq_lens, query_start_loc):
        self.seq_lens = seq_lens
        self.query_start_loc = query_start_loc

    @property
    def num_computed_tokens_cpu(self):
        return (self.seq_lens - (self.query_start_loc[1:] - self.query_start_loc[:-1])).cpu()


def run(seq_lens, query_start_loc):
    m = Metadata(seq_lens, query_start_loc)
    return (m.num_computed_tokens_cpu > 0).to(seq_lens.device)
"""


def _metadata(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    reqs = rng.choice([1, 3, 64])
    query = [rng.randrange(1, 9) for _ in range(reqs)]
    computed = [rng.choice([0, rng.randrange(0, 100)]) for _ in range(reqs)]
    starts = [0]
    for q in query:
        starts.append(starts[-1] + q)
    seq_lens = torch.tensor([q + c for q, c in zip(query, computed)], dtype=torch.int32, device=device)
    return {"seq_lens": seq_lens, "query_start_loc": torch.tensor(starts, dtype=torch.int32, device=device)}


# --- SL101: read a host mirror instead of .item() ----------------------------------------------------------------

SL101_BEFORE = """\
import torch


def run(values, lens_cpu):
    lens = torch.zeros((values.shape[0],), dtype=values.dtype, device=values.device)
    lens.copy_(values)
    return lens.max().item()
"""


def _mirrored(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    n = rng.choice([1, 5, 300])
    values = _values(rng, n, "int32", "cpu", 0, 4096)
    return {"values": values.to(device), "lens_cpu": values.clone()}


def _stale_mirror(rng: random.Random, device: str, trial: int) -> dict[str, Any]:
    torch = _torch()
    return {"values": torch.tensor([1, 9], dtype=torch.int32, device=device),
            "lens_cpu": torch.tensor([1, 2], dtype=torch.int32)}


def all_cases() -> list[Case]:
    return [
        Case("SL101", "max-item-from-mirror", SL101_BEFORE, _mirrored, unsafe=True,
             precondition="the `_cpu` mirror holds the same values as the device tensor", broken=_stale_mirror),
        Case("SL201", "nonzero-static-hinted", SL201_BEFORE, _exactly_k_nonzero, unsafe=True,
             precondition="the tensor has exactly `size` nonzeros", broken=_fewer_than_k),
        Case("SL204", "bincount-minlength", SL204_BEFORE, _sl204, unsafe=True,
             precondition="every value is in [0, minlength)", broken=_sl204_broken, broken_asserts_on_cuda=True),
        Case("SL205", "repeat-interleave-mirror", SL205_BEFORE, _repeats, unsafe=True,
             precondition="the `_cpu` mirror holds the same repeats", broken=_stale_repeats,
             broken_asserts_on_cuda=True),
        Case("SL206", "one-hot-hinted", SL206_BEFORE, _labels_reaching_max, unsafe=True,
             precondition="the hinted num_classes equals max(labels) + 1", broken=_labels_below_max),
        Case("SL207", "linalg-inv", SL207_BEFORE, _invertible, unsafe=True,
             precondition="the matrix is invertible (errors are no longer raised)", broken=_singular),
        *[Case("SL301", f"index-assign-1d-{dtype}", _sl301_source(dtype, "v", 1), _sl301_inputs(dtype, 1))
          for dtype in INT_DTYPES],
        Case("SL301", "index-assign-2d-int64", _sl301_source("int64", "v", 2), _sl301_inputs("int64", 2)),
        *[Case("SL301", f"index-assign-literal-{dtype}", _sl301_source(dtype, "-3", 1), _sl301_inputs(dtype, 1))
          for dtype in FLOAT_DTYPES],
        Case("SL301", "index-assign-float16-variable", SL301_HALF_UNSAFE, _half_in_range, unsafe=True,
             precondition="the value fits the tensor's dtype (fill_ raises on overflow; setitem stores inf)",
             broken=_half_overflow, broken_shows_only_on_cuda=True),
        Case("SL302", "index-put-gpu-index", SL302_BEFORE, _sl302),
        Case("SL303", "cuda-from-pageable", SL303_CUDA, _host_tensor, needs_cuda=True),
        Case("SL303", "copy-from-pageable", SL303_COPY, _host_tensor, needs_cuda=True),
        Case("SL304", "tensor-from-list", SL304_LIST, _host_list, needs_cuda=True),
        Case("SL501", "num-computed-tokens", SL501_BEFORE, _metadata, unsafe=True,
             precondition="`seq_lens` and `query_start_loc` are the device tensors the mirror was derived from"),
    ]
