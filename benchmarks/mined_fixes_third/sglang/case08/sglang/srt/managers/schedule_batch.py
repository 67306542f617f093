from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch


@dataclasses.dataclass
class ModelWorkerBatch:
    forward_mode: object
    input_ids: torch.Tensor
    req_pool_indices: torch.Tensor
    seq_lens: torch.Tensor
    out_cache_loc: torch.Tensor
    seq_lens_cpu: Optional[torch.Tensor]
    seq_lens_sum: int
    orig_seq_lens: Optional[torch.Tensor]
    # For DP attention
    global_num_tokens: Optional[List[int]]
    global_num_tokens_for_logprob: Optional[List[int]]
    is_extend_in_batch: bool
    can_run_dp_cuda_graph: bool
    spec_info: object = None
