from __future__ import annotations

import dataclasses
from typing import List, Optional

import torch

from sglang.srt.model_executor.forward_batch_info import ForwardMode


class Req:
    def __init__(self, rid: str, origin_input_ids: List[int], grammar=None):
        self.rid = rid
        self.origin_input_ids = origin_input_ids
        self.output_ids: List[int] = []
        self.grammar = grammar


@dataclasses.dataclass
class SamplingBatchInfo:
    vocab_size: int = 32000
    vocab_mask: Optional[torch.Tensor] = None


@dataclasses.dataclass
class ScheduleBatch:
    reqs: List[Req]
    req_to_token_pool: object = None
    forward_mode: ForwardMode = None
    device: str = "cuda"
    input_ids: Optional[torch.Tensor] = None
    req_pool_indices: Optional[torch.Tensor] = None
    seq_lens: Optional[torch.Tensor] = None
    seq_lens_cpu: Optional[torch.Tensor] = None
    out_cache_loc: Optional[torch.Tensor] = None
    has_grammar: bool = False
    sampling_info: SamplingBatchInfo = None
    spec_info: object = None

    def prepare_for_decode(self):
        self.forward_mode = ForwardMode.DECODE
