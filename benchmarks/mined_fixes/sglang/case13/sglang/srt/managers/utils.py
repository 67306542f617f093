import dataclasses
from typing import Any, List, Optional, Union

import torch

from sglang.srt.layers.logits_processor import LogitsProcessorOutput


@dataclasses.dataclass
class GenerationBatchResult:
    logits_output: Optional[LogitsProcessorOutput] = None
    next_token_ids: Optional[
        Union[torch.Tensor, List[torch.Tensor], List[List[int]]]
    ] = None
    num_correct_drafts: int = 0  # no bonus included
    accept_lens: Optional[torch.Tensor] = None
    new_seq_lens: Optional[torch.Tensor] = None
    next_draft_input: Optional[Any] = None
    can_run_cuda_graph: bool = False
