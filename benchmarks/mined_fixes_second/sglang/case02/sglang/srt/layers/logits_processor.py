import dataclasses

import torch


@dataclasses.dataclass
class LogitsProcessorOutput:
    next_token_logits: torch.Tensor
