from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch

from sglang.srt.mem_cache.memory_pool import ReqToTokenPool


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int]):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.output_ids: List[int] = []
        self.prefix_indices = []
        self.fill_ids = origin_input_ids


@dataclasses.dataclass
class ScheduleBatch:
    """Store all information of a batch on the scheduler."""

    # Request, memory pool, and cache
    reqs: List[Req]
    req_to_token_pool: ReqToTokenPool = None

    # Batched arguments to model runner
    input_ids: torch.Tensor = None  # shape: [b], int64
    req_pool_indices: torch.Tensor = None  # shape: [b], int64
    seq_lens: torch.Tensor = None  # shape: [b], int64
    out_cache_loc: torch.Tensor = None  # shape: [b], int64
    output_ids: torch.Tensor = None  # shape: [b], int64

    # The sum of all sequence lengths
    seq_lens_sum: int = None
    # The CPU mirror of seq_lens
    seq_lens_cpu: torch.Tensor = None  # shape: [b], int64

    return_hidden_states: bool = False
    spec_info: Optional[object] = None

    # device
    device: str = "cuda"

    @classmethod
    def init_new(cls, reqs: List[Req], req_to_token_pool: ReqToTokenPool):
        return cls(
            reqs=reqs,
            req_to_token_pool=req_to_token_pool,
            device=req_to_token_pool.device,
        )

    def batch_size(self):
        return len(self.reqs)

    def prepare_for_extend(self):
        bs = len(self.reqs)
        reqs = self.reqs
        input_ids = [r.fill_ids[len(r.prefix_indices) :] for r in reqs]
        seq_lens = [len(r.fill_ids) for r in reqs]
        req_pool_indices = [self.req_to_token_pool.free_slots.pop() for _ in range(bs)]

        self.input_ids = torch.tensor(sum(input_ids, []), dtype=torch.int64).to(
            self.device, non_blocking=True
        )
        self.req_pool_indices = torch.tensor(req_pool_indices, dtype=torch.int64).to(
            self.device, non_blocking=True
        )
        self.seq_lens = torch.tensor(seq_lens, dtype=torch.int64).to(
            self.device, non_blocking=True
        )
        self.seq_lens_cpu = torch.tensor(seq_lens, dtype=torch.int64)
        self.seq_lens_sum = sum(seq_lens)

    def prepare_for_decode(self):
        self.input_ids = self.output_ids
        self.output_ids = None
        # A faster in-place version
        self.seq_lens.add_(1)
        self.seq_lens_cpu.add_(1)
        self.seq_lens_sum += len(self.reqs)
