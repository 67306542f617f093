from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class DFlashDraftInput:
    # Current token to start the next DFlash block (one per request).
    verified_id: torch.Tensor
    # Flattened context features for tokens that need to be appended into the draft cache.
    target_hidden: torch.Tensor
    # Context lengths on CPU, one per request.
    ctx_lens: torch.Tensor
    # How many committed tokens are visible to the draft worker per request.
    draft_seq_lens: torch.Tensor
    reserved_seq_lens_cpu: Optional[torch.Tensor] = None
