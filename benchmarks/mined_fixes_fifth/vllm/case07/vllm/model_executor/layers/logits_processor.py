# SPDX-License-Identifier: Apache-2.0
"""A layer that compute logits from hidden_stats."""
# Cut down: TP gather, soft-cap, scaling and hidden-state pruning are dropped;
# the LM head is a plain nn.Linear.
from typing import Optional

import torch
import torch.nn as nn


class LogitsProcessor(nn.Module):

    def __init__(self,
                 vocab_size: int,
                 org_vocab_size: Optional[int] = None,
                 scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.vocab_size = vocab_size
        # Vocabulary size without padding.
        self.org_vocab_size = org_vocab_size or vocab_size

    def forward(
        self,
        lm_head: nn.Linear,
        hidden_states: torch.Tensor,
        sampling_metadata=None,
        embedding_bias: Optional[torch.Tensor] = None,
    ) -> Optional[torch.Tensor]:
        # Get the logits for the next tokens.
        logits = self._get_logits(hidden_states, lm_head, embedding_bias)
        return logits

    def _get_logits(
        self,
        hidden_states: torch.Tensor,
        lm_head: nn.Linear,
        embedding_bias: Optional[torch.Tensor],
    ) -> Optional[torch.Tensor]:
        # Get the logits for the next tokens.
        logits = lm_head(hidden_states)

        # Remove paddings in vocab (if any).
        if logits is not None:
            logits = logits[..., :self.org_vocab_size]
        return logits
