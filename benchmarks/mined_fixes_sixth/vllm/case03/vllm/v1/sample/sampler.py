# SPDX-License-Identifier: Apache-2.0
"""A layer that samples the next tokens from the model's outputs."""
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

# (benchmark stub: greedy sampling only; temperature, top-k/top-p, penalties
# and logprobs are cut)


@dataclass
class SamplerOutput:

    # [num_reqs, max_num_generated_tokens]
    # Different requests can have different number of generated tokens.
    # All requests are padded to max_num_generated_tokens.
    # PLACEHOLDER_TOKEN_ID (-1 by default) is used for padding.
    sampled_token_ids: torch.Tensor
    logprobs_tensors: Optional[object]


class Sampler(nn.Module):

    def forward(self, logits: torch.Tensor, sampling_metadata) -> SamplerOutput:
        sampled = logits.argmax(dim=-1).to(torch.int32)
        return SamplerOutput(sampled_token_ids=sampled.unsqueeze(-1),
                             logprobs_tensors=None)
