from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch

from sglang.srt.mem_cache.memory_pool import ReqToTokenPool


@dataclasses.dataclass
class ScheduleBatch:
    """Store all information of a batch on the scheduler."""

    reqs: List["Req"]
    req_to_token_pool: ReqToTokenPool = None

    seq_lens: torch.Tensor = None  # shape: [b], int64
    req_pool_indices: torch.Tensor = None  # shape: [b], int64
    # For mamba radix cache tracking
    mamba_track_indices: torch.Tensor = None  # shape: [b], int64
    mamba_track_mask: torch.Tensor = None  # shape: [b], bool
    mamba_track_seqlens: torch.Tensor = None  # shape: [b], int64

    device: str = "cuda"

    def prepare_for_extend(self):
        reqs = self.reqs
        mamba_track_mask_cpu = [r.mamba_track_this_chunk for r in reqs]
        mamba_track_indices_cpu = [r.mamba_ping_pong_track_slot for r in reqs]
        mamba_track_seqlens_cpu = [r.mamba_track_seqlen for r in reqs]
        self.mamba_track_indices = torch.tensor(
            mamba_track_indices_cpu, dtype=torch.int64
        ).to(self.device, non_blocking=True)
        self.mamba_track_mask = torch.tensor(
            mamba_track_mask_cpu, dtype=torch.bool
        ).to(self.device, non_blocking=True)
        self.mamba_track_seqlens = torch.tensor(
            mamba_track_seqlens_cpu, dtype=torch.int64
        ).to(self.device, non_blocking=True)
