from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int], sampling_params, custom_logit_processor: Optional[str] = None):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.output_ids: List[int] = []
        self.sampling_params = sampling_params
        self.custom_logit_processor = custom_logit_processor


@dataclasses.dataclass
class ScheduleBatch:
    reqs: List[Req]
    device: str = "cuda"
    seq_lens: torch.Tensor = None
    sampling_info: "SamplingBatchInfo" = None

    def batch_size(self):
        return len(self.reqs)
