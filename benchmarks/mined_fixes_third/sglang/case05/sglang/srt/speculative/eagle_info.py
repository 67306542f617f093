from __future__ import annotations

from dataclasses import dataclass

import torch

from sglang.srt.speculative.eagle_info_v2 import EagleVerifyInputV2Mixin


@dataclass
class EagleVerifyInput(EagleVerifyInputV2Mixin):
    draft_token: torch.Tensor
    custom_mask: torch.Tensor
    positions: torch.Tensor
    retrive_index: torch.Tensor
    retrive_next_token: torch.Tensor
    retrive_next_sibling: torch.Tensor
    retrive_cum_len: torch.Tensor
    spec_steps: int
    topk: int
    draft_token_num: int
    seq_lens_sum: int
    seq_lens_cpu: torch.Tensor
    num_tokens_per_req: int = -1
