# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to the buffers and the draft-proposal call (no spec-decode
# metadata path: the first draft step after a plain target step).
import torch

from vllm.config import VllmConfig
from vllm.v1.spec_decode.eagle import EagleProposer
from vllm.v1.utils import CpuGpuBuffer


class GPUModelRunner:
    def __init__(self, vllm_config: VllmConfig, device: torch.device):
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.speculative_config = vllm_config.speculative_config
        self.device = device
        self.pin_memory = True
        self.max_num_reqs = vllm_config.scheduler_config.max_num_seqs
        self.max_num_tokens = vllm_config.scheduler_config.max_num_batched_tokens
        self.uses_mrope = self.model_config.uses_mrope

        if self.speculative_config:
            if self.speculative_config.use_eagle():
                self.drafter = EagleProposer(self.vllm_config, self.device, self)  # type: ignore

        self.input_ids = self._make_buffer(self.max_num_tokens, dtype=torch.int32)
        self.positions = self._make_buffer(self.max_num_tokens, dtype=torch.int64)

    def _make_buffer(
        self, *size: int | torch.SymInt, dtype: torch.dtype, numpy: bool = True
    ) -> CpuGpuBuffer:
        return CpuGpuBuffer(
            *size,
            dtype=dtype,
            device=self.device,
            pin_memory=self.pin_memory,
            with_numpy=numpy,
        )

    def _get_positions(self, num_tokens):
        if isinstance(num_tokens, int):
            return self.positions.gpu[:num_tokens]
        else:
            return self.positions.gpu[num_tokens]

    def _prepare_inputs(self, positions_np) -> int:
        num_scheduled_tokens = len(positions_np)
        self.positions.np[:num_scheduled_tokens] = positions_np
        self.positions.copy_to_gpu(num_scheduled_tokens)
        return num_scheduled_tokens

    def propose_draft_token_ids(
        self,
        num_scheduled_tokens: int,
        hidden_states: torch.Tensor,
        next_token_ids: torch.Tensor,
        common_attn_metadata,
        sampling_metadata,
    ) -> torch.Tensor:
        token_indices_to_sample = None
        # input_ids can be None for multimodal models.
        target_token_ids = self.input_ids.gpu[:num_scheduled_tokens]
        target_positions = self._get_positions(num_scheduled_tokens)
        target_hidden_states = hidden_states[:num_scheduled_tokens]
        mm_embed_inputs = None

        draft_token_ids = self.drafter.propose(
            target_token_ids=target_token_ids,
            target_positions=target_positions,
            target_hidden_states=target_hidden_states,
            next_token_ids=next_token_ids,
            last_token_indices=token_indices_to_sample,
            sampling_metadata=sampling_metadata,
            common_attn_metadata=common_attn_metadata,
            mm_embed_inputs=mm_embed_inputs,
        )
        return draft_token_ids
