# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
# Cut down to model loading, the input_ids buffer and the embedding step of
# execute_model for a multimodal model (encoder outputs come from the
# encoder cache; the encoder run itself is dropped).
from typing import Union

import numpy as np
import torch

from vllm.config import VllmConfig
from vllm.model_executor.model_loader import get_model
from vllm.v1.utils import CpuGpuBuffer


class GPUModelRunner:

    def __init__(
        self,
        vllm_config: VllmConfig,
        device: torch.device,
    ):
        self.vllm_config = vllm_config
        self.model_config = vllm_config.model_config
        self.scheduler_config = vllm_config.scheduler_config
        self.device = device
        self.pin_memory = True
        self.dtype = torch.bfloat16
        self.max_num_tokens = self.scheduler_config.max_num_batched_tokens
        self.hidden_size = (
            self.model_config.hf_config.text_config.hidden_size)
        self.supports_mm_inputs = True

        # mm_hash ->  encoder_output
        self.encoder_cache: dict[str, torch.Tensor] = {}

        # Persistent buffers for CUDA graphs.
        self.input_ids = self._make_buffer(self.max_num_tokens,
                                           dtype=torch.int32)
        self.inputs_embeds = torch.zeros(
            (self.max_num_tokens, self.hidden_size),
            dtype=self.dtype,
            device=self.device)

    def _make_buffer(self,
                     *size: Union[int, torch.SymInt],
                     dtype: torch.dtype,
                     numpy: bool = True) -> CpuGpuBuffer:
        return CpuGpuBuffer(*size,
                            dtype=dtype,
                            device=self.device,
                            pin_memory=self.pin_memory,
                            with_numpy=numpy)

    def load_model(self) -> None:
        self.model = get_model(vllm_config=self.vllm_config)

    def _gather_mm_embeddings(self, mm_hashes: list[str]) -> list[torch.Tensor]:
        mm_embeds: list[torch.Tensor] = []
        for mm_hash in mm_hashes:
            encoder_output = self.encoder_cache.get(mm_hash, None)
            assert encoder_output is not None,\
                f"Encoder cache miss for {mm_hash}."
            mm_embeds.append(encoder_output)
        return mm_embeds

    def execute_model(self, token_ids: np.ndarray, mm_hashes: list[str]):
        num_scheduled_tokens = len(token_ids)
        self.input_ids.np[:num_scheduled_tokens] = token_ids
        self.input_ids.copy_to_gpu(num_scheduled_tokens)

        if self.supports_mm_inputs:
            mm_embeds = self._gather_mm_embeddings(mm_hashes)
        else:
            mm_embeds = []

        if self.supports_mm_inputs:
            # NOTE(woosuk): To unify token ids and soft tokens (vision
            # embeddings), we always use embeddings (rather than token ids)
            # as input to the multimodal model, even when the input is text.
            inputs_embeds_scheduled = self.model.get_input_embeddings(
                input_ids=self.input_ids.gpu[:num_scheduled_tokens],
                multimodal_embeddings=mm_embeds or None,
            )

            # TODO(woosuk): Avoid the copy. Optimize.
            self.inputs_embeds[:num_scheduled_tokens].copy_(
                inputs_embeds_scheduled)
        return self.inputs_embeds[:num_scheduled_tokens]
