from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch

from sglang.srt.mem_cache.memory_pool import ReqToTokenPool
from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int]):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.output_ids: List[int] = []


@dataclasses.dataclass
class ScheduleBatch:
    """Store all information of a batch on the scheduler."""

    reqs: List[Req]
    req_to_token_pool: ReqToTokenPool = None

    # Sampling info
    sampling_info: SamplingBatchInfo = None

    input_ids: torch.Tensor = None  # shape: [b], int64
    seq_lens: torch.Tensor = None  # shape: [b], int64
    seq_lens_cpu: torch.Tensor = None  # shape: [b], int64
    output_ids: torch.Tensor = None  # shape: [b], int64
    out_cache_loc: torch.Tensor = None

    # Enable overlap scheduler
    enable_overlap: bool = False

    # device
    device: str = "cuda"

    @classmethod
    def init_new(cls, reqs: List[Req], req_to_token_pool: ReqToTokenPool, enable_overlap: bool):
        return cls(
            reqs=reqs,
            req_to_token_pool=req_to_token_pool,
            enable_overlap=enable_overlap,
            device=req_to_token_pool.device,
        )

    def prepare_for_decode(self):
        if self.sampling_info.penalizer_orchestrator.is_required:
            if self.enable_overlap:
                # TODO: this can be slow, optimize this.
                delayed_output_ids = torch.tensor(
                    [
                        (
                            req.output_ids[-1]
                            if len(req.output_ids)
                            else req.origin_input_ids[-1]
                        )
                        for req in self.reqs
                    ],
                    dtype=torch.int64,
                    device=self.device,
                )
                self.sampling_info.penalizer_orchestrator.cumulate_output_tokens(
                    delayed_output_ids
                )
            else:
                self.sampling_info.penalizer_orchestrator.cumulate_output_tokens(
                    self.output_ids.to(torch.int64)
                )

        # Update fields
        self.input_ids = self.output_ids
        self.output_ids = None

        # Update seq_lens after allocation
        if self.enable_overlap:
            # Do not use in-place operations in the overlap mode
            self.seq_lens = self.seq_lens + 1
            self.seq_lens_cpu = self.seq_lens_cpu + 1
        else:
            # A faster in-place version
            self.seq_lens.add_(1)
            self.seq_lens_cpu.add_(1)
