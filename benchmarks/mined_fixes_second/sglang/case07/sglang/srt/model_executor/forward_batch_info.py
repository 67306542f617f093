from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch


@dataclass
class ForwardBatch:
    batch_size: int
    input_ids: torch.Tensor
    seq_lens: torch.Tensor
    out_cache_loc: torch.Tensor

    # For DP attention
    global_num_tokens_cpu: Optional[List[int]] = None
    global_num_tokens_gpu: Optional[torch.Tensor] = None
    dp_local_start_pos: Optional[torch.Tensor] = None  # cached info at runtime
    dp_local_num_tokens: Optional[torch.Tensor] = None  # cached info at runtime

    @classmethod
    def init_new(cls, batch, model_runner):
        device = model_runner.device
        ret = cls(
            batch_size=len(batch.seq_lens),
            input_ids=batch.input_ids,
            seq_lens=batch.seq_lens,
            out_cache_loc=batch.out_cache_loc,
        )

        # For DP attention
        if batch.global_num_tokens is not None:
            global_num_tokens = batch.global_num_tokens
            ret.global_num_tokens_cpu = global_num_tokens
            ret.global_num_tokens_gpu = torch.tensor(
                global_num_tokens, dtype=torch.int64
            ).to(device, non_blocking=True)
        return ret
