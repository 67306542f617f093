import dataclasses
from typing import Optional

import torch


@dataclasses.dataclass
class GenerationBatchResult:
    logits_output: Optional["LogitsProcessorOutput"] = None
    next_token_ids: Optional[torch.Tensor] = None
    accept_lens: Optional[torch.Tensor] = None
    new_seq_lens: Optional[torch.Tensor] = None
    next_draft_input: Optional[object] = None
    can_run_cuda_graph: bool = False
