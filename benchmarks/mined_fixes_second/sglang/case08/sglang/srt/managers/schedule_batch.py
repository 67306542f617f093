from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch


@dataclasses.dataclass
class MultimodalInputs:
    mrope_positions: Optional[torch.Tensor] = None
    mrope_position_delta: Optional[torch.Tensor] = None


@dataclasses.dataclass
class ModelWorkerBatch:
    forward_mode: object
    input_ids: torch.Tensor
    req_pool_indices: torch.Tensor
    seq_lens: torch.Tensor
    out_cache_loc: torch.Tensor
    seq_lens_cpu: Optional[torch.Tensor]
    seq_lens_sum: int
    multimodal_inputs: Optional[List[MultimodalInputs]]
    extend_seq_lens: Optional[List[int]] = None
    extend_prefix_lens: Optional[List[int]] = None


@dataclasses.dataclass
class ScheduleBatch:
    forward_mode: object
    input_ids: torch.Tensor
    req_pool_indices: torch.Tensor
    seq_lens: torch.Tensor
    seq_lens_cpu: torch.Tensor
    out_cache_loc: torch.Tensor
    seq_lens_sum: int
    multimodal_inputs: Optional[List[MultimodalInputs]] = None

    def get_model_worker_batch(self) -> ModelWorkerBatch:
        return ModelWorkerBatch(
            forward_mode=self.forward_mode,
            input_ids=self.input_ids,
            req_pool_indices=self.req_pool_indices,
            seq_lens=self.seq_lens,
            out_cache_loc=self.out_cache_loc,
            seq_lens_cpu=self.seq_lens_cpu,
            seq_lens_sum=self.seq_lens_sum,
            multimodal_inputs=self.multimodal_inputs,
        )
