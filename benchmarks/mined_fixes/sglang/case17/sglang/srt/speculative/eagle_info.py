from dataclasses import dataclass
from typing import Optional

import torch

from sglang.srt.speculative.eagle_info_v2 import EagleDraftInputV2Mixin


@dataclass
class EagleDraftInput(EagleDraftInputV2Mixin):
    # shape: (b, topk)
    topk_p: torch.Tensor = None
    topk_index: torch.Tensor = None
    # shape: (b, hidden_size)
    hidden_states: torch.Tensor = None
    verified_id: Optional[torch.Tensor] = None
