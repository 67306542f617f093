# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import torch
import torch.nn as nn

from vllm.v1.sample.metadata import SamplingMetadata
from vllm.v1.spec_decode.medusa import MedusaProposer


class GPUModelRunner:
    def __init__(self, model: nn.Module, hidden_size: int, device: torch.device):
        self.device = device
        self.model = model
        self.drafter = MedusaProposer(hidden_size, device)
        self.drafter.load_model(model)

    def propose_draft_token_ids(
        self,
        sampled_token_ids: torch.Tensor | list[list[int]],
        sampling_metadata: SamplingMetadata,
        hidden_states: torch.Tensor,
        sample_hidden_states: torch.Tensor,
    ) -> list[list[int]] | torch.Tensor:
        assert isinstance(sampled_token_ids, list)
        assert isinstance(self.drafter, MedusaProposer)

        # The input to the target model does not include draft tokens.
        hidden_states = sample_hidden_states

        draft_token_ids = self.drafter.propose(
            target_hidden_states=hidden_states,
            sampling_metadata=sampling_metadata,
        )
        return draft_token_ids

    @torch.inference_mode()
    def execute_model(
        self,
        input_ids: torch.Tensor,
        logits_indices: torch.Tensor,
        sampling_metadata: SamplingMetadata,
        valid_sampled_token_ids: list[list[int]],
    ) -> list[list[int]] | torch.Tensor:
        hidden_states = self.model(input_ids)
        sample_hidden_states = hidden_states[logits_indices]
        return self.propose_draft_token_ids(
            valid_sampled_token_ids,
            sampling_metadata,
            hidden_states,
            sample_hidden_states,
        )
