from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int]):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.req_pool_idx: Optional[int] = None
        # Mamba state slots: device tensors handed out by MambaPool.alloc
        self.mamba_pool_idx: Optional[torch.Tensor] = None
        self.mamba_ping_pong_track_buffer: Optional[torch.Tensor] = None
        self.mamba_next_track_idx: Optional[int] = None


@dataclasses.dataclass
class MultimodalInputs:
    mm_items: list
    # Computed on the CPU by the multimodal processor
    mrope_position_delta: Optional[torch.Tensor] = None


@dataclasses.dataclass
class ModelWorkerBatch:
    forward_mode: object
    input_ids: torch.Tensor
    req_pool_indices: torch.Tensor
    seq_lens: torch.Tensor
    seq_lens_cpu: torch.Tensor
    out_cache_loc: torch.Tensor
    reqs: List[Req]
    multimodal_inputs: Optional[List[MultimodalInputs]]
    spec_info: object = None
    capture_hidden_mode: object = None
    extend_seq_lens: Optional[List[int]] = None
    mamba_track_indices: Optional[torch.Tensor] = None
    mamba_track_mask: Optional[torch.Tensor] = None
    mamba_track_seqlens: Optional[torch.Tensor] = None
