import dataclasses
from typing import List, Optional, Union

import torch


@dataclasses.dataclass
class LogitsMetadata:
    top_logprobs_nums: Optional[List[int]] = None
    token_ids_logprobs: Optional[List[List[int]]] = None
    extend_logprob_pruned_lens_cpu: Optional[List[int]] = None


@dataclasses.dataclass
class LogitsProcessorOutput:
    # The logits of the next tokens.       shape: [#seq, vocab_size]
    next_token_logits: Optional[torch.Tensor]
    hidden_states: Optional[torch.Tensor] = None
    next_token_logprobs: Optional[torch.Tensor] = None
    next_token_top_logprobs_val: Optional[List] = None
    next_token_top_logprobs_idx: Optional[List] = None
    next_token_token_ids_logprobs_val: Optional[
        List[Union[List[float], torch.Tensor]]
    ] = None
    next_token_token_ids_logprobs_idx: Optional[List] = None


class LogitsProcessor(torch.nn.Module):
    def forward(self, hidden_states: torch.Tensor, lm_head: torch.nn.Module):
        # Decode: one hidden state per request -> CUDA logits.
        logits = torch.matmul(hidden_states, lm_head.weight.T)
        return LogitsProcessorOutput(next_token_logits=logits)
