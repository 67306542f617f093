from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch

from sglang.srt.model_executor.forward_batch_info import ForwardMode


@dataclasses.dataclass
class ModelWorkerBatch:
    forward_mode: ForwardMode
    input_ids: torch.Tensor
    req_pool_indices: torch.Tensor
    seq_lens: torch.Tensor
    out_cache_loc: torch.Tensor
    seq_lens_sum: int
    seq_lens_cpu: Optional[torch.Tensor]
    spec_info: object = None


@dataclasses.dataclass
class ScheduleBatch:
    reqs: List
    req_to_token_pool: object = None
    forward_mode: ForwardMode = None
    device: str = "cuda"
    input_ids: Optional[torch.Tensor] = None
    req_pool_indices: Optional[torch.Tensor] = None
    seq_lens: Optional[torch.Tensor] = None
    seq_lens_cpu: Optional[torch.Tensor] = None
    seq_lens_sum: Optional[int] = None
    out_cache_loc: Optional[torch.Tensor] = None
    spec_info: object = None

    @classmethod
    def init_new(cls, reqs, req_to_token_pool):
        return cls(
            reqs=reqs,
            req_to_token_pool=req_to_token_pool,
            device=req_to_token_pool.device,
        )

    def prepare_for_decode(self, seq_lens: List[int], req_pool_indices: List[int]):
        # Reduced: the scheduler keeps seq_lens on the device and a host
        # mirror in seq_lens_cpu.
        self.forward_mode = ForwardMode.DECODE
        self.seq_lens_cpu = torch.tensor(seq_lens, dtype=torch.int64)
        self.seq_lens = self.seq_lens_cpu.pin_memory().to(self.device, non_blocking=True)
        self.seq_lens_sum = sum(seq_lens)
        self.req_pool_indices = torch.tensor(
            req_pool_indices, dtype=torch.int64, pin_memory=True
        ).to(self.device, non_blocking=True)

    def get_model_worker_batch(self) -> ModelWorkerBatch:
        return ModelWorkerBatch(
            forward_mode=self.forward_mode,
            input_ids=self.input_ids,
            req_pool_indices=self.req_pool_indices,
            seq_lens=self.seq_lens,
            out_cache_loc=self.out_cache_loc,
            seq_lens_sum=self.seq_lens_sum,
            seq_lens_cpu=self.seq_lens_cpu,
            spec_info=self.spec_info,
        )
