from dataclasses import dataclass
from typing import Optional

import torch

from sglang.srt.speculative.eagle_info_v2 import EagleDraftInputV2Mixin


@dataclass
class EagleDraftInput(EagleDraftInputV2Mixin):
    # Draft-side state relayed between steps (device tensors); unused here.
    topk_p: Optional[torch.Tensor] = None
    topk_index: Optional[torch.Tensor] = None
    hidden_states: Optional[torch.Tensor] = None
    future_indices: Optional[torch.Tensor] = None
