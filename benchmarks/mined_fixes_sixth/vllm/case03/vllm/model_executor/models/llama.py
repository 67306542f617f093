# SPDX-License-Identifier: Apache-2.0
# (benchmark stub: the decoder layers of LlamaForCausalLM are cut; the model
# keeps an embedding, a norm and the LM head)
from typing import Optional

import torch
import torch.nn as nn


class LlamaForCausalLM(nn.Module):

    def __init__(self, *, vllm_config, prefix: str = ""):
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size)
        self.lm_head = nn.Linear(config.hidden_size,
                                 config.vocab_size,
                                 bias=False)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        intermediate_tensors=None,
        inputs_embeds: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        hidden_states = self.embed_tokens(input_ids)
        return self.norm(hidden_states)

    def compute_logits(self, hidden_states: torch.Tensor,
                       sampling_metadata) -> Optional[torch.Tensor]:
        return self.lm_head(hidden_states)
