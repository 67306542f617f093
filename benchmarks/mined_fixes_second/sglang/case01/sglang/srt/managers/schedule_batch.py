from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch

from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo
from sglang.srt.sampling.sampling_params import SamplingParams


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int], sampling_params: SamplingParams):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.sampling_params = sampling_params


@dataclasses.dataclass
class ModelConfig:
    vocab_size: int = 32000
    hidden_size: int = 4096


@dataclasses.dataclass
class ScheduleBatch:
    reqs: List[Req]
    model_config: ModelConfig = None
    device: str = "cuda"
    seq_lens: torch.Tensor = None
    sampling_info: SamplingBatchInfo = None
    spec_info: Optional[object] = None

    @classmethod
    def init_new(cls, reqs: List[Req], model_config: ModelConfig):
        return cls(reqs=reqs, model_config=model_config, device="cuda")

    def prepare_for_extend(self):
        self.seq_lens = torch.zeros(len(self.reqs), dtype=torch.int64, device=self.device)

        # Build sampling info
        self.sampling_info = SamplingBatchInfo.from_schedule_batch(
            self,
            self.model_config.vocab_size,
        )
