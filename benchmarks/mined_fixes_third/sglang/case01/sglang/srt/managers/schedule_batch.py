from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch

from sglang.srt.mem_cache.allocation import alloc_for_extend
from sglang.srt.mem_cache.memory_pool import ReqToTokenPool


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int]):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.output_ids: List[int] = []
        self.req_pool_idx: Optional[int] = None
        # Set by the tree cache's match_prefix: device KV indices of the
        # cached prefix (an empty device tensor when nothing matched).
        self.prefix_indices: torch.Tensor = None

    def get_fill_ids(self):
        return self.origin_input_ids + self.output_ids


@dataclasses.dataclass
class ScheduleBatch:
    """Store all information of a batch on the scheduler."""

    reqs: List[Req]

    # Memory pool and cache
    req_to_token_pool: ReqToTokenPool = None
    token_to_kv_pool_allocator: object = None
    tree_cache: object = None

    # Device
    device: str = "cuda"

    input_ids: Optional[torch.Tensor] = None
    seq_lens: Optional[torch.Tensor] = None
    seq_lens_cpu: Optional[torch.Tensor] = None
    out_cache_loc: Optional[torch.Tensor] = None
    req_pool_indices: Optional[torch.Tensor] = None
    prefix_lens: Optional[List[int]] = None
    extend_lens: Optional[List[int]] = None
    extend_num_tokens: Optional[int] = None

    @classmethod
    def init_new(
        cls,
        reqs: List[Req],
        req_to_token_pool: ReqToTokenPool,
        token_to_kv_pool_allocator,
        tree_cache,
    ):
        batch = cls(
            reqs=reqs,
            req_to_token_pool=req_to_token_pool,
            token_to_kv_pool_allocator=token_to_kv_pool_allocator,
            tree_cache=tree_cache,
            device=req_to_token_pool.device,
        )
        return batch

    def prepare_for_extend(self):
        # Init tensors
        reqs = self.reqs
        input_ids = [r.get_fill_ids()[len(r.prefix_indices) :] for r in reqs]
        extend_num_tokens = sum(len(ids) for ids in input_ids)
        seq_lens = [len(r.get_fill_ids()) for r in reqs]
        prefix_lens = [len(r.prefix_indices) for r in reqs]
        extend_lens = [len(ids) for ids in input_ids]

        seq_lens_tensor = torch.tensor(seq_lens, dtype=torch.int64, pin_memory=True).to(
            self.device, non_blocking=True
        )
        seq_lens_cpu = torch.tensor(seq_lens, dtype=torch.int64)

        # Set batch fields needed by alloc_for_extend
        self.prefix_lens = prefix_lens
        self.extend_lens = extend_lens
        self.seq_lens = seq_lens_tensor
        self.seq_lens_cpu = seq_lens_cpu
        self.extend_num_tokens = extend_num_tokens

        # Allocate memory
        out_cache_loc, req_pool_indices_tensor, req_pool_indices_cpu = alloc_for_extend(
            self
        )

        self.out_cache_loc = out_cache_loc
        self.req_pool_indices = req_pool_indices_tensor
